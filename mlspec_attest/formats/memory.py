"""How much memory this process may still take: for a reader that must hold what it reads
(the serving gate keeps the bytes it verified for the loader), so that input larger than
the machine can hold is refused with its reason before it is read, not by the kernel's
out-of-memory killer or an allocation failing half way.

The smaller of the kernel's estimate of available memory (``MemAvailable`` in
``/proc/meminfo``) and what the process's memory cgroup still allows (v2 ``memory.max``
less ``memory.current``, or v1 ``memory.limit_in_bytes`` less ``memory.usage_in_bytes``)
and an address-space limit (``ulimit -v``) less what is mapped;
None where neither can be read (not Linux), and the caller then relies on the allocation
failing cleanly.
"""

from __future__ import annotations

import resource
from pathlib import Path

_PROC = Path("/proc")
_CGROUP = Path("/sys/fs/cgroup")


def memory_available() -> int | None:
    """Bytes of memory this process may still take, as far as the system tells; None if
    it does not."""
    found = [
        n
        for n in (_meminfo_available(), _cgroup_headroom(), _address_space_left())
        if n is not None
    ]
    return min(found) if found else None


def _number(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isascii() and text.isdigit() else None  # "max": no limit


def _meminfo_available() -> int | None:
    try:
        lines = (_PROC / "meminfo").read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name == "MemAvailable" and fields and fields[0].isdigit():
            return int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
    return None


def _address_space_left() -> int | None:
    """What an address-space limit (``ulimit -v``) leaves beyond what is mapped already."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        status = (_PROC / "self" / "status").read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in status:
        fields = line.split()
        if fields[:1] == ["VmSize:"] and len(fields) > 1 and fields[1].isdigit():
            return max(0, soft - int(fields[1]) * 1024)
    return None


def _cgroup_headroom() -> int | None:
    """What the memory cgroup still allows, or None (no cgroup, or no limit)."""
    try:
        lines = (_PROC / "self" / "cgroup").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        relative = path.lstrip("/")
        if controllers == "":  # v2: one unified hierarchy
            where, limit, usage = _CGROUP / relative, "memory.max", "memory.current"
        elif "memory" in controllers.split(","):
            where = _CGROUP / "memory" / relative
            limit, usage = "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        bound, used = _number(where / limit), _number(where / usage)
        if bound is not None and used is not None and bound < 1 << 60:  # v1 "no limit": ~2**63
            return max(0, bound - used)
    return None


__all__ = ["memory_available"]
