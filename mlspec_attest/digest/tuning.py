"""Measuring the read strategy (``mlspec-attest tune``): the engine's own reader, each candidate timed.

Three questions, each answered by timing the engine's
:class:`~mlspec_attest.digest._reader.FileReader` on a scratch file held in the
page cache (so the CPU side of reading is what differs, not the disk):

1. **How to read a large file**: ``read`` into a reused buffer of 256 KiB to
   16 MiB, or a memory map handed to the hash 4 to 64 MiB at a time.
2. **From which size on to map** (if a map won): byte ranges of 1 to 64 MiB
   hashed both ways; mapping starts at the smallest size from which it wins at
   every larger size too.
3. **How many threads hash shards**: 1, one per core and two per core over
   eight byte ranges.

Every candidate must produce the same digest (checked); each is timed as the
fastest of ``reps`` rounds (candidates in rotating order within a round). A
candidate within :data:`TIE` of the fastest counts as tied, and of tied ones the
simplest wins: the engine's default, fewer threads, no map, so that noise does
not pick a strategy. Results are saved by :mod:`mlspec_attest.digest.read_strategy`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from msgspec import Struct, field

from mlspec_attest.digest._reader import FileReader, open_regular
from mlspec_attest.digest._schedule import run_workers
from mlspec_attest.digest.engine import default_workers
from mlspec_attest.digest.read_strategy import ReadStrategy, document
from mlspec_attest.errors import StoreError, UsageError
from mlspec_attest.formats.limits import MiB

READ_CHUNKS = (256 * 1024, 1 * MiB, 4 * MiB, 16 * MiB)
MAP_STEPS = (4 * MiB, 16 * MiB, 64 * MiB)
RANGE_SIZES = (1 * MiB, 4 * MiB, 16 * MiB, 64 * MiB)
MIN_SIZE = 64 * MiB
TIE = 0.02
"""Candidates within 2 % of the fastest are tied (timer and scheduler noise on a busy machine)."""
Report = Callable[[str], None]


class Measurement(Struct):
    strategy: ReadStrategy
    timings: list[dict[str, Any]] = field(default_factory=list)
    measured: str = ""

    def document(self) -> dict[str, Any]:
        return document(self.strategy, self.measured, self.timings)


def measure(
    directory: Path | None = None,
    size: int = 256 * MiB,
    reps: int = 3,
    report: Report | None = None,
) -> Measurement:
    """Time the candidates on a ``size``-byte scratch file in ``directory`` (default: temp)."""
    if size < MIN_SIZE or reps < 1:
        raise UsageError(f"tune needs a scratch file of at least {MIN_SIZE // MiB} MiB and 1 rep")
    say = report or (lambda _line: None)
    with _scratch(directory, size) as path:
        result = Measurement(ReadStrategy())
        whole, read = _whole_file(path, size, reps, result, say)
        mmap_min = _map_threshold(path, whole, read, reps, result, say)
        chosen = whole._replace(mmap_min=mmap_min)
        workers = _threads(path, size, chosen, reps, result, say)
        result.strategy = chosen._replace(shard_workers=workers)
    result.measured = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return result


@contextmanager
def _scratch(directory: Path | None, size: int) -> Iterator[str]:
    """A file of ``size`` bytes in a private directory, read once into the page cache."""
    try:
        where = tempfile.mkdtemp(prefix="mlspec-tune-", dir=directory)
    except OSError as exc:
        raise StoreError(f"{directory}: cannot make a scratch directory ({exc.strerror})") from exc
    try:
        path = os.path.join(where, "scratch.bin")
        _fill(path, size)
        yield path
    finally:
        shutil.rmtree(where, ignore_errors=True)


def _fill(path: str, size: int) -> None:
    block = os.urandom(16 * MiB)
    try:
        with open(path, "wb") as handle:
            for offset in range(0, size, len(block)):
                handle.write(block[: size - offset])
        with open(path, "rb") as handle:
            while handle.read(16 * MiB):
                pass
    except OSError as exc:
        raise StoreError(f"{path}: cannot write the scratch file ({exc.strerror})") from exc


def _whole_file(
    path: str, size: int, reps: int, out: Measurement, say: Report
) -> tuple[ReadStrategy, ReadStrategy]:
    """Question 1: the fastest way to hash one large file; and the fastest that reads."""
    reads = {f"read {c // 1024} KiB": ReadStrategy(None, c, MAP_STEPS[0]) for c in READ_CHUNKS}
    maps = {f"map, {s // MiB} MiB steps": ReadStrategy(1 * MiB, 4 * MiB, s) for s in MAP_STEPS}
    candidates = reads | maps
    runs = {name: _hash_ranges(path, [(0, size)], s) for name, s in candidates.items()}
    default = ("map, 16 MiB steps", "read 4096 KiB")
    best, times = _fastest(runs, reps, "large file", out, say, prefer=default)
    return candidates[best], reads[min(reads, key=times.__getitem__)]


def _map_threshold(
    path: str, whole: ReadStrategy, read: ReadStrategy, reps: int, out: Measurement, say: Report
) -> int | None:
    """Question 2: the smallest range size from which mapping wins at every larger size."""
    if whole.mmap_min is None:
        return None
    threshold: int | None = None
    for rsize in reversed(RANGE_SIZES):
        ranges = [(k * rsize, (k + 1) * rsize) for k in range(MIN_SIZE // rsize)]
        runs = {
            "map": _hash_ranges(path, ranges, whole._replace(mmap_min=1 * MiB)),
            "read": _hash_ranges(path, ranges, read),
        }
        question = f"ranges of {rsize // MiB} MiB"
        if _fastest(runs, reps, question, out, say, prefer=("read",))[0] != "map":
            break
        threshold = rsize
    return threshold if threshold is not None else 2 * RANGE_SIZES[-1]


def _threads(
    path: str, size: int, strategy: ReadStrategy, reps: int, out: Measurement, say: Report
) -> int:
    """Question 3: threads hashing eight shards of the file."""
    step = size // 8
    ranges = [(k * step, (k + 1) * step) for k in range(8)]
    cores = default_workers()
    counts = {f"{n} thread(s)": n for n in sorted({1, cores, 2 * cores})}
    runs = {name: _hash_ranges(path, ranges, strategy, n) for name, n in counts.items()}
    return counts[_fastest(runs, reps, "shard threads", out, say, prefer=tuple(runs))[0]]


def _hash_ranges(
    path: str, ranges: list[tuple[int, int]], strategy: ReadStrategy, workers: int = 1
) -> Callable[[], bytes]:
    """A run: hash every range with ``strategy`` on ``workers`` threads; returns the digests."""

    def run() -> bytes:
        out = [b""] * len(ranges)

        def work(cursor: Any) -> None:
            reader = FileReader("sha256", None, strategy)
            while (batch := cursor.claim()) is not None:
                for j in batch:
                    out[j] = _range_digest(reader, path, *ranges[j])

        run_workers(workers, len(ranges), work)
        return b"".join(out)

    return run


def _range_digest(reader: FileReader, path: str, start: int, end: int) -> bytes:
    if start == 0:  # the whole-file path of digest_fd, as the engine hashes a file
        fd, st = open_regular(path)
        try:
            if st.st_size == end:
                return reader.digest_fd(fd, end, path)[0]
        finally:
            os.close(fd)
    return reader.digest_range(path, start, end)


def _fastest(
    runs: dict[str, Callable[[], bytes]],
    reps: int,
    question: str,
    out: Measurement,
    say: Report,
    prefer: tuple[str, ...] = (),
) -> tuple[str, dict[str, float]]:
    """Best of ``reps`` rotating rounds; every candidate must give the same digests. Of the
    candidates within :data:`TIE` of the fastest, the first in ``prefer`` wins. Returns the
    winner and each candidate's best time."""
    names = list(runs)
    best: dict[str, float] = {}
    results: set[bytes] = set()
    for round_ in range(reps):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            started = time.perf_counter()
            results.add(runs[name]())
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - started)
    if len(results) != 1:
        raise StoreError(f"the scratch file changed while it was measured ({question})")
    fastest = min(best.values())
    tied = [name for name in names if best[name] <= fastest * (1 + TIE)]
    winner = next((name for name in prefer if name in tied), min(tied, key=best.__getitem__))
    for name in names:
        chosen = name == winner
        seconds = round(best[name], 6)
        out.timings.append(
            {"question": question, "candidate": name, "seconds": seconds, "chosen": chosen}
        )
        mark = "  <- chosen" if chosen else ""
        say(f"{question:>20}  {name:<22} {seconds * 1000:9.1f} ms{mark}")
    return winner, best
