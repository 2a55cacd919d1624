"""The parallel hashing engine behind every digest mlspec-attest records.

:mod:`~mlspec_attest.digest.scheme` says *what* a digest is (algorithms,
serializations), :mod:`~mlspec_attest.digest.artifact` and
:mod:`~mlspec_attest.digest.serialization` how files become manifests; this
module computes the digests as fast as the machine allows. docs/benchmarks.md
has the numbers.

* **Walking** is :mod:`mlspec_attest.digest.walk` (symlinks, names, ignore rules).
* **One file** is read by :mod:`~mlspec_attest.digest._reader` (one ``open``,
  ``fstat`` on the descriptor, a reused buffer or a memory map).
* **Many files**: workers claim batches from one shared cursor
  (:mod:`~mlspec_attest.digest._schedule`). From :data:`PROCESS_MIN_FILES` files
  on, every worker but the calling thread drives a helper process
  (:mod:`~mlspec_attest.digest._helper_driver`): for kilobyte files the
  interpreter is the bottleneck and threads would only take turns on the GIL.
* **Shards** (model-signing's "shards" serialization): byte ranges hashed in
  parallel, longest first.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlspec_attest.digest._helper import whole_small_file
from mlspec_attest.digest._helper_driver import drive_helper
from mlspec_attest.digest._reader import (
    OPEN_FLAGS,
    SMALL_FILE,
    FileReader,
    hasher_factory,
    import_blake3,
    open_regular,
)
from mlspec_attest.digest._schedule import Cursor, Threads, run_workers
from mlspec_attest.digest.read_strategy import current as current_strategy
from mlspec_attest.digest.scheme import DEFAULT_SHARD_SIZE
from mlspec_attest.digest.single import ProgressSink, digest_file
from mlspec_attest.errors import ArtifactPathError, BadInputError
from mlspec_attest.formats.limits import MAX_SHARDS

if TYPE_CHECKING:
    from mlspec_attest.digest.cache import DigestCache

__all__ = [
    "ProgressSink",
    "default_workers",
    "digest_file",
    "digest_files",
    "digest_shards",
    "hasher_factory",
    "import_blake3",
    "shard_bounds",
]

CACHE_MIN_SIZE = 64 << 10
"""Files smaller than this bypass the digest cache: hashing them is cheaper than a lookup."""
PROCESS_MIN_FILES = 2048
"""From this many files on, extra workers are helper processes instead of threads."""

_HELPER = Path(__file__).with_name("_helper.py")


def default_workers() -> int:
    """Hashing workers: one per core available to this process (at most 32)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(32, cores))


def shard_workers() -> int:
    """Threads for the shards of large files: as measured (``mlspec-attest tune``), else one per core."""
    return current_strategy().strategy.shard_workers or default_workers()


# ------------------------------------------------------------- many files
def digest_files(
    paths: Sequence[str],
    algorithm: str = "sha256",
    *,
    workers: int | None = None,
    progress: ProgressSink | None = None,
    cache: DigestCache | None = None,
    label: str = "",
) -> list[tuple[bytes, int]]:
    """``(raw digest, size)`` of each path, in the order given.

    With several workers, the calling thread hashes batches itself and each
    other worker drives a helper *process* (:mod:`mlspec_attest.digest._helper`)
    once there are enough files to repay starting one: for small files the
    interpreter, not the hash, is the bottleneck, and threads would only take
    turns on the GIL. Fewer files use threads.

    ``cache`` is consulted only for files of :data:`CACHE_MIN_SIZE` bytes or
    more: a smaller file is cheaper to hash than to look up.
    """
    results: list[tuple[bytes, int]] = [(b"", 0)] * len(paths)
    nworkers = max(1, workers or default_workers())
    if progress is not None:
        progress.begin(label, len(paths), None)
    try:
        if cache is None:
            _hash_into(results, paths, range(len(paths)), algorithm, nworkers, progress, None)
        else:
            big: list[int] = []
            small: list[int] = []
            for i, path in enumerate(paths):
                try:
                    size = os.stat(path).st_size
                except OSError:
                    size = 0  # hashed below, which reports the problem
                (big if size >= CACHE_MIN_SIZE else small).append(i)
            _hash_into(results, paths, small, algorithm, nworkers, progress, None)
            _hash_into(results, paths, big, algorithm, nworkers, progress, cache)
            cache.flush()
    finally:
        if progress is not None:
            progress.end()
    return results


def _hash_into(
    results: list[tuple[bytes, int]],
    all_paths: Sequence[str],
    indices: Sequence[int],
    algorithm: str,
    nworkers: int,
    progress: ProgressSink | None,
    cache: DigestCache | None,
) -> None:
    """Hash ``all_paths[i]`` for ``i`` in ``indices`` into ``results[i]``."""
    if not indices:
        return
    if len(indices) == len(all_paths):
        paths, sub = all_paths, results
    else:
        paths, sub = [all_paths[i] for i in indices], [(b"", 0)] * len(indices)

    def threaded(cursor: Cursor) -> None:
        local = _LocalBatches(paths, sub, algorithm, progress, cache)
        while (batch := cursor.claim()) is not None:
            local(batch)

    if nworkers > 1 and cache is None and len(paths) >= PROCESS_MIN_FILES:
        _with_helpers(paths, sub, algorithm, nworkers, progress, threaded)
    else:
        run_workers(nworkers, len(paths), threaded)
    if sub is not results:
        for k, i in enumerate(indices):
            results[i] = sub[k]


def _with_helpers(
    paths: Sequence[str],
    results: list[tuple[bytes, int]],
    algorithm: str,
    nworkers: int,
    progress: ProgressSink | None,
    threaded: Callable[[Cursor], None],
) -> None:
    """This thread hashes batches; ``nworkers - 1`` threads each drive a helper process."""

    def make_local() -> _LocalBatches:
        return _LocalBatches(paths, results, algorithm, progress, None)

    cursor = Cursor(len(paths), nworkers)

    def drive() -> None:
        drive_helper(
            cursor, paths, results, algorithm, progress, script=_HELPER, make_local=make_local
        )

    drivers = Threads(drive, nworkers - 1)
    try:
        threaded(cursor)
    except BaseException:
        cursor.stop()  # the helpers' drivers finish their batches in flight, no more
        drivers.join(raise_errors=False)
        raise
    drivers.join()


class _LocalBatches:
    """Hashes batches of files in this thread (one instance per thread)."""

    def __init__(
        self,
        paths: Sequence[str],
        results: list[tuple[bytes, int]],
        algorithm: str,
        progress: ProgressSink | None,
        cache: DigestCache | None,
    ) -> None:
        self.paths = paths
        self.results = results
        self.algorithm = algorithm
        self.reader = FileReader(algorithm, progress)
        self.progress = progress
        self.cache = cache

    def __call__(self, batch: range) -> None:
        # The hot loop of "very many small files": locals only, no call that can
        # be avoided; one open/fstat/read/close and one hash object per file.
        paths, results, reader, cache = self.paths, self.results, self.reader, self.cache
        new, digest_fd = reader.new, reader.digest_fd
        os_open, fstat, read, close, isreg = os.open, os.fstat, os.read, os.close, stat.S_ISREG
        flags, small = OPEN_FLAGS, SMALL_FILE
        nbytes = 0
        for i in batch:
            path = paths[i]
            if cache is not None:
                results[i], counted = _cached(cache, path, self.algorithm, reader)
                nbytes += 0 if counted else results[i][1]
                continue
            try:
                fd = os_open(path, flags)
            except OSError:
                fd = open_regular(path)[0]  # raises the error a user can act on
            try:
                data = whole_small_file(fd)
                if data is not None:
                    results[i] = (new(data).digest(), len(data))
                    nbytes += len(data)
                    continue
                st = fstat(fd)
                size = st.st_size
                if not isreg(st.st_mode):
                    raise ArtifactPathError(f"{path}: not a regular file")
                os.lseek(fd, 0, os.SEEK_SET)
                if size <= small:
                    data = read(fd, size + 1)
                    if len(data) <= size:  # a short read of a regular file is its end
                        results[i] = (new(data).digest(), len(data))
                        nbytes += len(data)
                        continue
                results[i] = digest_fd(fd, size, path)
            except OSError as exc:
                raise ArtifactPathError(f"{path}: read failed ({exc.strerror})") from exc
            finally:
                close(fd)
        if self.progress is not None:
            self.progress.advance(nbytes, len(batch))


def _cached(
    cache: DigestCache, path: str, algorithm: str, reader: FileReader
) -> tuple[tuple[bytes, int], bool]:
    """The file's digest from the cache, or hashed and offered to it; and whether
    its bytes were already reported as progress."""
    hit = cache.lookup(path, algorithm)
    if hit is not None:
        return hit, False
    fd, st = open_regular(path)
    try:
        result = reader.digest_fd(fd, st.st_size, path)
        cache.offer(fd, st, algorithm, result)
    finally:
        os.close(fd)
    return result, result[1] > SMALL_FILE


# ------------------------------------------------------------------ shards
def shard_bounds(size: int, shard_size: int) -> list[tuple[int, int]]:
    """model-signing's shards of a file: ``[0, s), [s, 2s), ... [k*s, size)``; none if empty."""
    return [(start, min(start + shard_size, size)) for start in range(0, size, shard_size)]


def digest_shards(
    paths: Sequence[str],
    algorithm: str,
    shard_size: int,
    *,
    workers: int | None = None,
    progress: ProgressSink | None = None,
    label: str = "",
) -> list[tuple[list[bytes], int]]:
    """For each path, the digests of its shards (in order) and its size.

    At most :data:`~mlspec_attest.formats.limits.MAX_SHARDS` shards in all: a
    shard size from a signed document cannot make one job per byte.
    """
    sizes = [_regular_size(path) for path in paths]
    count = sum(-(-size // shard_size) for size in sizes)
    if count > MAX_SHARDS:
        raise BadInputError(
            f"{len(sizes)} file(s) would be split into {count} shards of {shard_size} bytes "
            f"(the limit is {MAX_SHARDS})",
            remedy=f"use a larger shard size (model-signing's default is {DEFAULT_SHARD_SIZE} "
            "bytes)",
        )
    jobs = [
        (i, k, start, end)
        for i, size in enumerate(sizes)
        for k, (start, end) in enumerate(shard_bounds(size, shard_size))
    ]
    jobs.sort(key=lambda job: job[2] - job[3])  # longest first
    out: list[list[bytes]] = [[b""] * len(shard_bounds(size, shard_size)) for size in sizes]

    def work(cursor: Cursor) -> None:
        reader = FileReader(algorithm, progress)
        while (batch := cursor.claim()) is not None:
            for j in batch:
                i, k, start, end = jobs[j]
                out[i][k] = reader.digest_range(paths[i], start, end)

    if progress is not None:
        progress.begin(label, len(paths), sum(sizes))
    try:
        run_workers(workers or shard_workers(), len(jobs), work)
        if progress is not None:
            progress.advance(0, len(paths))
    finally:
        if progress is not None:
            progress.end()
    return list(zip(out, sizes, strict=True))


def _regular_size(path: str) -> int:
    fd, st = open_regular(path)
    os.close(fd)
    return st.st_size
