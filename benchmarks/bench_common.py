"""Timing and reporting helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROBE = HERE / "probe.py"


class BenchError(RuntimeError):
    pass


def timed_run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    expect: Sequence[int] = (0,),
) -> float:
    """Wall time of one process (start-up included)."""
    started = time.perf_counter()
    proc = subprocess.run(
        [os.fspath(a) for a in argv], cwd=cwd, env=env, capture_output=True, check=False
    )
    elapsed = time.perf_counter() - started
    if proc.returncode not in expect:
        raise BenchError(
            f"{' '.join(map(str, argv))[:200]} exited {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace')[-800:]}"
        )
    return elapsed


def probe(tool: str, path: Path) -> float:
    """Seconds one library call takes, measured inside a fresh process (imports excluded)."""
    proc = subprocess.run(
        [sys.executable, str(PROBE), tool, str(path)], capture_output=True, check=False, text=True
    )
    if proc.returncode != 0:
        raise BenchError(f"probe {tool} {path}: {proc.stderr[-800:]}")
    return float(proc.stdout.split()[0])


def byte_compile(package: Path) -> int:
    """Write the bytecode of every module of ``package`` (what ``pip install`` does).

    An editable install has none, and with ``PYTHONDONTWRITEBYTECODE`` set nothing
    writes it: every process would then compile the package from source (about 100 ms
    of a 0.35 s ``verify``), while the peers in site-packages load theirs. Returns
    the number of modules compiled."""
    import compileall

    files = list(package.rglob("*.py"))
    compileall.compile_dir(str(package), quiet=2)
    return len(files)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _first_line(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> list[tuple[str, str]]:
    cpu = platform.processor() or "?"
    flags = ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
        cpu = found.group(1).strip() if found else cpu
        flags = " (SHA-NI)" if re.search(r"\bsha_ni\b", info) else " (no SHA-NI)"
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f"{kb / (1 << 20):.1f} GiB"
    except (OSError, AttributeError):
        pass
    import ssl

    return [
        ("CPU", f"{cpu}{flags}, {os.cpu_count()} logical cores"),
        ("Memory", mem),
        ("OS", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("OpenSSL (hashlib)", ssl.OPENSSL_VERSION),
        ("openssl CLI", _first_line(["openssl", "version"])),
        ("b3sum", _first_line(["b3sum", "--version"])),
        ("blake3 (Python)", _version("blake3")),
        ("model-signing", _version("model-signing")),
        ("in-toto", _version("in-toto")),
        ("securesystemslib", _version("securesystemslib")),
        ("mlspec-attest", _version("mlspec-attest")),
        (
            "hyperfine",
            _first_line(["hyperfine", "--version"])
            if shutil.which("hyperfine")
            else "not installed",
        ),
    ]


def fmt_seconds(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.0f} ms"
    return f"{s:.2f} s"


def fmt_rate(nbytes: int, s: float) -> str:
    return f"{nbytes / s / 1e9:.2f} GB/s"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)
