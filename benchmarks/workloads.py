"""The data the benchmarks hash: one big file, many medium files, very many small ones.

Random bytes (incompressible, no deduplication anywhere), written once per run
under a temporary directory and removed afterwards.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    path: Path
    files: int
    size: int

    def file_list(self) -> Path:
        """NUL-separated relative paths (for xargs -0), written next to the data."""
        out = self.path.parent / f"{self.name}.list"
        if not out.exists():
            if self.path.is_file():
                names = [self.path.name]
            else:
                names = []
                for dirpath, _dirs, files in os.walk(self.path):
                    rel = os.path.relpath(dirpath, self.path.parent)
                    names.extend(os.path.join(rel, f) for f in files)
                names.sort()
            out.write_bytes(b"\0".join(os.fsencode(n) for n in names) + b"\0")
        return out


def _random_file(path: Path, size: int) -> None:
    block = 16 * MiB
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(block, left)
            fh.write(os.urandom(n))
            left -= n


def big_file(root: Path, size: int) -> Workload:
    path = root / "big.bin"
    if not path.exists() or path.stat().st_size != size:
        _random_file(path, size)
    # Two halves for "openssl dgst in two processes" (it cannot hash a byte range).
    for i, (start, length) in enumerate(((0, size // 2), (size // 2, size - size // 2))):
        half = root / f"big.half{i}"
        if not half.exists() or half.stat().st_size != length:
            with open(path, "rb") as src, open(half, "wb") as dst:
                src.seek(start)
                shutil.copyfileobj(src, dst, 16 * MiB)
                dst.truncate(length)
    gib = size / (1 << 30)
    return Workload("big", f"one {gib:g} GiB file", path, 1, size)


def many_files(root: Path, name: str, count: int, size: int, per_dir: int) -> Workload:
    path = root / name
    marker = root / f".{name}.done"
    if not marker.exists():
        shutil.rmtree(path, ignore_errors=True)
        block = os.urandom(size * min(count, 64))
        for i in range(count):
            directory = path / f"d{i // per_dir:04d}"
            if i % per_dir == 0:
                directory.mkdir(parents=True)
            # Distinct content per file: a random block slice plus the index.
            start = (i % 64) * size
            data = bytearray(block[start : start + size])
            data[:8] = i.to_bytes(8, "little")
            (directory / f"f{i:07d}.bin").write_bytes(data)
        marker.write_text("ok")
    label = f"{size // MiB} MiB" if size >= MiB else f"{size // 1024} KiB"
    return Workload(name, f"{count:,} × {label} files", path, count, count * size)


def drop_from_cache(workload: Workload) -> None:
    """Evict the workload's pages (posix_fadvise DONTNEED): no root, other files untouched."""
    paths = [workload.path] if workload.path.is_file() else None
    if paths is None:
        paths = [Path(d) / f for d, _, files in os.walk(workload.path) for f in files]
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    if workload.path.is_file():
        for half in workload.path.parent.glob("big.half*"):
            fd = os.open(half, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)


def warm(workload: Workload) -> None:
    """Read everything once so the page cache holds it."""
    buf = bytearray(4 * MiB)
    paths = [workload.path] if workload.path.is_file() else None
    if paths is None:
        paths = [Path(d) / f for d, _, files in os.walk(workload.path) for f in files]
    else:
        paths += list(workload.path.parent.glob("big.half*"))
    for p in paths:
        with open(p, "rb", buffering=0) as fh:
            while fh.readinto(buf):
                pass
