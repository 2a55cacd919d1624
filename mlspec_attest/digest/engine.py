"""The parallel hashing engine behind every digest mlspec-attest records.

``digest.py`` says *what* a digest is (schemes, manifests, roots); this module
computes them as fast as the machine allows. docs/benchmarks.md has the numbers.

* **Walking** is :mod:`mlspec_attest.digest.walk` (symlinks, names, ignore rules).
* **Many files**: workers claim *batches* of files from one shared cursor,
  largest batches first and shrinking towards the end (guided self-scheduling),
  so a small file costs an ``open``/``fstat``/``read``/``close`` and one hash call,
  never an executor round trip. From :data:`PROCESS_MIN_FILES` files on, every
  worker but the calling thread drives a helper process (``_hashhelper.py``):
  for kilobyte files the interpreter is the bottleneck and threads would only
  take turns on the GIL.
* **Large files** are read into a per-thread reusable buffer in 4 MiB pieces, or
  memory-mapped from :data:`MMAP_MIN` on (no copy out of the page cache);
  hashlib releases the GIL for every update, so threads hash files in parallel.
* **Shards** (model-signing's "shards" serialization): byte ranges hashed in
  parallel, longest first.
* **blake3**: files from 1 MiB on are memory-mapped and hashed by blake3's own
  thread pool.
* Every file is opened once with ``O_NONBLOCK`` (a FIFO swapped in after the walk
  cannot hang us) and checked with ``fstat`` on the open descriptor, so what is
  checked is what is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import stat
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlspec_attest.errors import ArtifactPathError, BadInputError, UsageError
from mlspec_attest.formats.limits import MAX_SHARDS

if TYPE_CHECKING:
    from mlspec_attest.digest.cache import DigestCache

CHUNK = 4 << 20
"""Read size for large files: big enough to amortize syscalls, small enough for L2/L3."""

SMALL_FILE = 64 << 10
"""Files up to this size are read with one ``read`` into a fresh bytes object; larger
ones go through the reusable buffer (a fresh 1 MiB object costs page faults)."""

BLAKE3_MMAP_MIN = 1 << 20
"""blake3 memory-maps files from this size on and lets its thread pool hash them."""

MMAP_MIN = 16 << 20
"""sha256/blake2b memory-map files and shards from this size on: no copy from the page cache."""

MAPPED_STEP = 16 << 20
BLAKE3_STEP = 256 << 20
_USE_MMAP = not os.environ.get("MLSPEC_ATTEST_NO_MMAP")

MAX_BATCH = 512
CACHE_MIN_SIZE = 64 << 10
"""Files smaller than this bypass the digest cache: hashing them is cheaper than a lookup."""
PROCESS_MIN_FILES = 2048
"""From this many files on, extra workers are helper processes instead of threads."""

_HELPER = Path(__file__).with_name("_helper.py")
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)

Hasher = Any  # hashlib._Hash or blake3.blake3: update(), digest()


class ProgressSink(Protocol):
    """Receives progress from the engine. ``advance`` is called from worker threads.

    Each engine call is one task: ``begin`` (``total_bytes`` is None when the
    sizes are not known up front), any number of ``advance``, then ``end``,
    also when hashing fails.
    """

    def begin(self, label: str, files: int, total_bytes: int | None) -> None: ...

    def advance(self, nbytes: int, files: int = 0) -> None: ...

    def end(self) -> None: ...


def default_workers() -> int:
    """Hashing workers: one per core available to this process (at most 32)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(32, cores))


def hasher_factory(algorithm: str) -> Callable[..., Hasher]:
    """A constructor for fresh hash objects of ``algorithm``."""
    if algorithm == "sha256":
        return hashlib.sha256
    if algorithm == "blake2b":
        return hashlib.blake2b
    if algorithm == "blake3":
        blake3 = import_blake3()
        return blake3.blake3  # type: ignore[no-any-return]
    raise UsageError(
        f"unknown digest algorithm {algorithm!r}", remedy="use sha256, blake2b or blake3"
    )


def import_blake3() -> Any:
    from mlspec_attest.errors import require

    return require("blake3", "the blake3 digest algorithm")


# ------------------------------------------------------------ one file
def _open_regular(path: str) -> tuple[int, os.stat_result]:
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError as exc:
        raise ArtifactPathError(f"{path}: no such file or directory") from exc
    except IsADirectoryError as exc:
        raise ArtifactPathError(f"{path}: is a directory") from exc
    except PermissionError as exc:
        raise ArtifactPathError(f"{path}: permission denied") from exc
    except OSError as exc:
        raise ArtifactPathError(f"{path}: cannot open ({exc.strerror})") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "is a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise ArtifactPathError(f"{path}: {kind}")
    return fd, st


class _Reader:
    """Per-thread state: a reusable buffer and the algorithm's constructor."""

    def __init__(self, algorithm: str, progress: ProgressSink | None) -> None:
        self.new = hasher_factory(algorithm)
        self.blake3 = algorithm == "blake3"
        self.progress = progress
        self._buf: bytearray | None = None

    @property
    def buffer(self) -> tuple[bytearray, memoryview]:
        if self._buf is None:
            self._buf = bytearray(CHUNK)
        return self._buf, memoryview(self._buf)

    def digest_fd(self, fd: int, size: int, path: str) -> tuple[bytes, int]:
        """Digest and length of everything readable from ``fd`` (``size`` is a hint)."""
        try:
            if size <= SMALL_FILE:
                data = os.read(fd, size + 1)
                if len(data) <= size:  # a short read of a regular file is its end
                    return self.new(data).digest(), len(data)
                return self._rest(self.new(data), fd, len(data))
            if _USE_MMAP and size >= (BLAKE3_MMAP_MIN if self.blake3 else MMAP_MIN):
                h = self._new_large()
                self._mapped(h, fd, 0, size, path)
                os.lseek(fd, size, os.SEEK_SET)  # and whatever was appended meanwhile
                return self._rest(h, fd, size)
            return self._rest(self._new_large(), fd, 0)
        except OSError as exc:
            raise ArtifactPathError(f"{path}: read failed ({exc.strerror})") from exc

    def _new_large(self) -> Hasher:
        if self.blake3:
            blake3 = import_blake3()
            return blake3.blake3(max_threads=blake3.blake3.AUTO)
        return self.new()

    def _rest(self, h: Hasher, fd: int, done: int) -> tuple[bytes, int]:
        buf, view = self.buffer
        progress = self.progress
        while True:
            n = os.readv(fd, [buf])
            if not n:
                return h.digest(), done
            h.update(view[:n])
            done += n
            if progress is not None:
                progress.advance(n)

    def _mapped(self, h: Hasher, fd: int, start: int, end: int, path: str) -> None:
        """Hash bytes ``[start, end)`` of ``fd`` from a read-only memory map (no copy).

        If another process truncates the file while it is mapped, reading the
        lost pages raises SIGBUS and ends the process, as with b3sum and
        model-signing's blake3 hasher; nothing is attested in that case.
        MLSPEC_ATTEST_NO_MMAP=1 reads instead, at some cost in speed.
        """
        base = start - start % mmap.ALLOCATIONGRANULARITY
        with mmap.mmap(fd, end - base, access=mmap.ACCESS_READ, offset=base) as mapped:
            if os.fstat(fd).st_size < end:
                raise ArtifactPathError(f"{path}: file shrank while it was hashed")
            with contextlib.suppress(AttributeError, OSError):
                mapped.madvise(mmap.MADV_SEQUENTIAL)
            view = memoryview(mapped)
            step = BLAKE3_STEP if self.blake3 else MAPPED_STEP
            try:
                for offset in range(start - base, end - base, step):
                    piece = view[offset : min(offset + step, end - base)]
                    h.update(piece)
                    piece.release()
                    if self.progress is not None:
                        self.progress.advance(min(step, end - base - offset))
            finally:
                view.release()

    def digest_range(self, path: str, start: int, end: int) -> bytes:
        """Digest of bytes ``[start, end)`` of ``path`` (one model-signing shard)."""
        fd, _ = _open_regular(path)
        try:
            h = self.new()
            if _USE_MMAP and end - start >= MMAP_MIN:
                self._mapped(h, fd, start, end, path)
                return bytes(h.digest())
            _, view = self.buffer
            offset = start
            while offset < end:
                want = min(CHUNK, end - offset)
                n = os.preadv(fd, [view[:want]], offset)
                if not n:
                    raise ArtifactPathError(f"{path}: file shrank while it was hashed")
                h.update(view[:n])
                offset += n
                if self.progress is not None:
                    self.progress.advance(n)
            return bytes(h.digest())
        except OSError as exc:
            raise ArtifactPathError(f"{path}: read failed ({exc.strerror})") from exc
        finally:
            os.close(fd)


def digest_file(
    path: str, algorithm: str = "sha256", progress: ProgressSink | None = None
) -> tuple[bytes, int]:
    """Raw digest and size of one regular file, read once."""
    fd, st = _open_regular(path)
    if progress is not None:
        progress.begin(path, 1, st.st_size)
    try:
        result = _Reader(algorithm, progress).digest_fd(fd, st.st_size, path)
        if progress is not None and result[1] <= SMALL_FILE:
            progress.advance(result[1], 1)
        return result
    finally:
        os.close(fd)
        if progress is not None:
            progress.end()


# ------------------------------------------------------------- many files
class _Cursor:
    """Hands out index ranges: large batches first, shrinking towards the end."""

    def __init__(self, total: int, workers: int) -> None:
        self.total = total
        self.workers = workers
        self.next = 0
        self.lock = threading.Lock()

    def stop(self) -> None:
        """Hand out nothing more (a worker failed)."""
        with self.lock:
            self.next = self.total

    def claim(self) -> range | None:
        with self.lock:
            start = self.next
            if start >= self.total:
                return None
            step = min(MAX_BATCH, max(1, (self.total - start) // (self.workers * 4)))
            self.next = start + step
            return range(start, start + step)


def _run_workers(workers: int, count: int, work: Callable[[_Cursor], None]) -> None:
    cursor = _Cursor(count, workers)
    if workers <= 1 or count <= 1:
        work(cursor)
        return
    from concurrent.futures import ThreadPoolExecutor

    def guarded(cursor: _Cursor) -> None:
        try:
            work(cursor)
        except BaseException:
            cursor.stop()  # the other workers stop after their current batch
            raise

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlspec-hash") as pool:
        futures = [pool.submit(guarded, cursor) for _ in range(workers)]
        for future in futures:
            future.result()


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

    def threaded(cursor: _Cursor) -> None:
        local = _LocalBatches(paths, sub, algorithm, progress, cache)
        while (batch := cursor.claim()) is not None:
            local(batch)

    if nworkers > 1 and cache is None and len(paths) >= PROCESS_MIN_FILES:
        from concurrent.futures import ThreadPoolExecutor

        cursor = _Cursor(len(paths), nworkers)
        with ThreadPoolExecutor(nworkers - 1, thread_name_prefix="mlspec-hash") as pool:
            futures = [
                pool.submit(_drive_helper, cursor, paths, sub, algorithm, progress)
                for _ in range(nworkers - 1)
            ]
            try:
                threaded(cursor)
            except BaseException:
                cursor.stop()  # the helpers' drivers finish their batches in flight, no more
                raise
            for future in futures:
                future.result()
    else:
        _run_workers(nworkers, len(paths), threaded)
    if sub is not results:
        for k, i in enumerate(indices):
            results[i] = sub[k]


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
        self.reader = _Reader(algorithm, progress)
        self.progress = progress
        self.cache = cache

    def __call__(self, batch: range) -> None:
        # The hot loop of "very many small files": locals only, no call that can
        # be avoided; one open/fstat/read/close and one hash object per file.
        paths, results, reader, cache = self.paths, self.results, self.reader, self.cache
        new, digest_fd = reader.new, reader.digest_fd
        os_open, fstat, read, close, isreg = os.open, os.fstat, os.read, os.close, stat.S_ISREG
        flags, small = _OPEN_FLAGS, SMALL_FILE
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
                fd = _open_regular(path)[0]  # raises the error a user can act on
            try:
                st = fstat(fd)
                size = st.st_size
                if not isreg(st.st_mode):
                    raise ArtifactPathError(f"{path}: not a regular file")
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


PIPELINE = 2
"""Batches in flight per helper: it hashes one while this process reads the other's reply."""


def _drive_helper(
    cursor: _Cursor,
    paths: Sequence[str],
    results: list[tuple[bytes, int]],
    algorithm: str,
    progress: ProgressSink | None,
) -> None:
    """Feed batches from ``cursor`` to one helper process until none are left.

    If the helper cannot start or fails, the rest is hashed in this thread; a
    file the helper could not hash is hashed here too, which raises the error a
    user can act on (or succeeds, if the problem has gone).
    """
    fallback: _LocalBatches | None = None

    def here(batch: range) -> None:
        nonlocal fallback
        if fallback is None:
            fallback = _LocalBatches(paths, results, algorithm, progress, None)
        fallback(batch)

    from mlspec_attest.digest._helper import HelperClient

    client = HelperClient.start(algorithm, _HELPER)
    inflight: deque[range] = deque()
    try:
        while True:
            while client is not None and len(inflight) < PIPELINE:
                batch = cursor.claim()
                if batch is None:
                    break
                inflight.append(batch)
                try:
                    client.send([paths[i] for i in batch])
                except OSError:
                    client.close()
                    client = None
            if not inflight:
                break
            batch = inflight.popleft()
            replies = None
            if client is not None:
                try:
                    replies = client.receive(len(batch))
                except (OSError, EOFError, ValueError):
                    client.close()
                    client = None
            if replies is None:
                here(batch)
                continue
            nbytes = 0
            for i, reply in zip(batch, replies, strict=True):
                if reply is None:
                    here(range(i, i + 1))
                else:
                    results[i] = reply
                    nbytes += reply[1]
            if progress is not None:
                progress.advance(nbytes, len(batch))
        while (batch := cursor.claim()) is not None:
            here(batch)
    finally:
        if client is not None:
            client.close()


def _cached(
    cache: DigestCache, path: str, algorithm: str, reader: _Reader
) -> tuple[tuple[bytes, int], bool]:
    """The file's digest from the cache, or hashed and offered to it; and whether
    its bytes were already reported as progress."""
    hit = cache.lookup(path, algorithm)
    if hit is not None:
        return hit, False
    fd, st = _open_regular(path)
    try:
        result = reader.digest_fd(fd, st.st_size, path)
        cache.offer(fd, st, algorithm, result)
    finally:
        os.close(fd)
    return result, result[1] > SMALL_FILE


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
    """For each path, the digests of its shards (in order) and its size."""
    sizes: list[int] = []
    for path in paths:
        fd, st = _open_regular(path)
        os.close(fd)
        sizes.append(st.st_size)
    count = sum(-(-size // shard_size) for size in sizes)
    if count > MAX_SHARDS:
        raise BadInputError(
            f"{len(sizes)} file(s) would be split into {count} shards of {shard_size} bytes "
            f"(the limit is {MAX_SHARDS})",
            remedy="use a larger shard size (model-signing's default is 1000000000 bytes)",
        )
    jobs = [
        (i, k, start, end)
        for i, size in enumerate(sizes)
        for k, (start, end) in enumerate(shard_bounds(size, shard_size))
    ]
    jobs.sort(key=lambda job: job[2] - job[3])  # longest first
    out: list[list[bytes]] = [[b""] * len(shard_bounds(size, shard_size)) for size in sizes]

    def work(cursor: _Cursor) -> None:
        reader = _Reader(algorithm, progress)
        while (batch := cursor.claim()) is not None:
            for j in batch:
                i, k, start, end = jobs[j]
                out[i][k] = reader.digest_range(paths[i], start, end)

    if progress is not None:
        progress.begin(label, len(paths), sum(sizes))
    try:
        _run_workers(workers or default_workers(), len(jobs), work)
        if progress is not None:
            progress.advance(0, len(paths))
    finally:
        if progress is not None:
            progress.end()
    return list(zip(out, sizes, strict=True))
