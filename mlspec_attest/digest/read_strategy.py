"""How the engine reads large files on this machine: chosen by measurement (``mlspec-attest tune``).

The bytes hashed never depend on the strategy, only the speed does: a memory
map or ``read`` calls of some size, from which file size on to map, and how many
threads hash the shards of one file. What is fastest differs between CPUs,
kernels and OpenSSL builds (a copy out of the page cache costs more on one
machine than a page fault on another), so :mod:`mlspec_attest.digest.tuning`
measures the candidates with the engine's own reader and this module remembers
the winner, like FFTW's "wisdom":

* in ``$MLSPEC_ATTEST_READ_STRATEGY`` if set (``default`` ignores any saved
  file), else ``$XDG_CACHE_HOME/mlspec-attest/read-strategy.json`` (or
  ``~/.cache/...``);
* kept only for the machine it was measured on (CPU model, cores, kernel,
  Python): a file from another machine, or one that does not parse or names a
  value out of range, is ignored and the defaults apply. The file is read with a
  64 KiB bound and only speed can depend on it.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from mlspec_attest.errors import MlspecError
from mlspec_attest.formats.limits import KiB, MiB

SCHEMA = "https://mlspec-attest.dev/read-strategy/v1"
MAX_FILE_BYTES = 64 * KiB
ENV = "MLSPEC_ATTEST_READ_STRATEGY"

SIZES = tuple(1 << k for k in range(16, 27))  # 64 KiB ... 64 MiB: a read or a mapped step
MMAP_SIZES = tuple(1 << k for k in range(20, 31))  # 1 MiB ... 1 GiB: map from this size on
MAX_WORKERS = 64
DEFAULT_MMAP_MIN = 16 * MiB


class ReadStrategy(NamedTuple):
    """The engine's reading choices for files over its small-file size (a named tuple:
    every hashing command loads this module, and a dataclass costs more to create)."""

    mmap_min: int | None = DEFAULT_MMAP_MIN
    """sha256/blake2b files and shards of at least this size are memory-mapped; None: never."""
    chunk: int = 4 * MiB
    """Bytes per ``read`` into the reusable buffer."""
    mapped_step: int = 16 * MiB
    """Bytes of a memory map handed to the hash per update."""
    shard_workers: int | None = None
    """Threads hashing the shards of a file; None: one per core."""

    def describe(self) -> str:
        mapped = (
            f"memory-map from {_size(self.mmap_min)} on, {_size(self.mapped_step)} per update"
            if self.mmap_min is not None
            else "never memory-map"
        )
        threads = self.shard_workers or "one per core"
        return f"{mapped}; reads of {_size(self.chunk)}; shard threads: {threads}"


DEFAULT = ReadStrategy()


class Loaded(NamedTuple):
    """The strategy in force and where it came from (for ``tune --show`` and ``make bench``)."""

    strategy: ReadStrategy
    source: str


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB else f"{n // KiB} KiB"


def fingerprint() -> dict[str, Any]:
    """What a measurement holds for: the machine, its kernel and this Python."""
    uname = os.uname()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 1,
        "kernel": uname.release,
        "machine": uname.machine,
        "python": sys.version.split()[0],
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle.read(256 * KiB).splitlines():
                if line.startswith(("model name", "Model", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def default_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlspec-attest" / "read-strategy.json"


def configured_path() -> Path | None:
    """The file consulted, or None when ``$MLSPEC_ATTEST_READ_STRATEGY`` is ``default``."""
    value = os.environ.get(ENV, "").strip()
    if value == "default":
        return None
    return Path(value) if value else default_path()


@cache
def current() -> Loaded:
    """The strategy for this process (read once); MLSPEC_ATTEST_NO_MMAP=1 forbids mapping."""
    loaded = load(configured_path())
    if os.environ.get("MLSPEC_ATTEST_NO_MMAP"):
        return Loaded(
            loaded.strategy._replace(mmap_min=None), loaded.source + "; MLSPEC_ATTEST_NO_MMAP"
        )
    return loaded


def load(path: Path | None) -> Loaded:
    """The strategy saved in ``path`` if it is valid and for this machine, else the defaults."""
    if path is None:
        return Loaded(DEFAULT, f"defaults (${ENV}=default)")
    if not path.exists():
        return Loaded(DEFAULT, f"defaults (not measured on this machine: no {path})")
    from mlspec_attest.formats.jsonio import load_file

    try:
        doc = load_file(path, max_bytes=MAX_FILE_BYTES, kind="a read-strategy file")
        strategy = parse(doc)
    except (MlspecError, ValueError) as exc:
        return Loaded(DEFAULT, f"defaults ({path} ignored: {exc})")
    if doc.get("machine") != fingerprint():
        return Loaded(DEFAULT, f"defaults ({path} was measured on another machine or Python)")
    return Loaded(strategy, f"measured {doc.get('measured', '?')} ({path})")


def parse(doc: Any) -> ReadStrategy:
    """The strategy in a saved document; ValueError names the first value out of range."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} document")
    body = doc.get("strategy")
    if not isinstance(body, dict) or set(body) != set(DEFAULT._fields):
        raise ValueError(f"'strategy' must have exactly {sorted(DEFAULT._fields)}")
    mmap_min, workers = body["mmap_min"], body["shard_workers"]
    _check("mmap_min", mmap_min, MMAP_SIZES, none_ok=True)
    _check("chunk", body["chunk"], SIZES)
    _check("mapped_step", body["mapped_step"], SIZES)
    _check("shard_workers", workers, range(1, MAX_WORKERS + 1), none_ok=True)
    return ReadStrategy(mmap_min, body["chunk"], body["mapped_step"], workers)


def _check(name: str, value: Any, allowed: Any, *, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if type(value) is not int or value not in allowed:
        raise ValueError(f"'{name}' is {value!r}, not one of the values the engine measures")


def document(
    strategy: ReadStrategy, measured: str, timings: list[dict[str, Any]]
) -> dict[str, Any]:
    """The saved form of a measurement."""
    return {
        "schema": SCHEMA,
        "measured": measured,
        "machine": fingerprint(),
        "strategy": strategy._asdict(),
        "timings": timings,
    }
