"""How the engine reads one file, or one byte range of it: the hot path of every digest.

* Small files (up to :data:`SMALL_FILE`) are read with one ``read`` into a fresh
  bytes object; larger ones go through a per-thread reusable buffer, or are
  memory-mapped (no copy out of the page cache), as this machine's
  :class:`~mlspec_attest.digest.read_strategy.ReadStrategy` says (measured by
  ``mlspec-attest tune``; :data:`CHUNK`, :data:`MMAP_MIN` and
  :data:`MAPPED_STEP` by default); hashlib releases the GIL for every update.
* blake3 memory-maps files from :data:`BLAKE3_MMAP_MIN` on and hashes them with
  its own thread pool.
* Every file is opened once with ``O_NONBLOCK`` (a FIFO swapped in after the walk
  cannot hang us) and checked with ``fstat`` on the open descriptor, so what is
  checked is what is read.

The helper processes (:mod:`mlspec_attest.digest._helper`) read exactly the same
way; they run without the package, so they keep their own copy of the constants.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import stat
from collections.abc import Callable
from typing import Any, Protocol

from mlspec_attest.digest.read_strategy import DEFAULT, DEFAULT_MMAP_MIN, ReadStrategy, current
from mlspec_attest.errors import ArtifactPathError, UsageError, require

CHUNK = DEFAULT.chunk
"""Default read size for large files (the helper processes always use it)."""

SMALL_FILE = 64 << 10
"""Files up to this size are read with one ``read`` into a fresh bytes object; larger
ones go through the reusable buffer (a fresh 1 MiB object costs page faults)."""

BLAKE3_MMAP_MIN = 1 << 20
"""blake3 memory-maps files from this size on and lets its thread pool hash them."""

MMAP_MIN = DEFAULT_MMAP_MIN
"""By default sha256/blake2b memory-map files and shards from this size on."""

MAPPED_STEP = DEFAULT.mapped_step
BLAKE3_STEP = 256 << 20
USE_MMAP = not os.environ.get("MLSPEC_ATTEST_NO_MMAP")
"""False with MLSPEC_ATTEST_NO_MMAP set: read instead of mapping (see :meth:`FileReader._mapped`)."""

OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)

Hasher = Any  # hashlib._Hash or blake3.blake3: update(), digest()


class ByteProgress(Protocol):
    """What a reader reports: bytes hashed (and files finished). Called from worker threads."""

    def advance(self, nbytes: int, files: int = 0) -> None: ...


def import_blake3() -> Any:
    """The blake3 module, or a clear "install blake3" error."""
    return require("blake3", "the blake3 digest algorithm")


def hasher_factory(algorithm: str) -> Callable[..., Hasher]:
    """A constructor for fresh hash objects of ``algorithm`` (the one hasher choice)."""
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


def open_regular(path: str) -> tuple[int, os.stat_result]:
    """An open descriptor on ``path`` and its ``fstat``; anything but a regular file is refused."""
    try:
        fd = os.open(path, OPEN_FLAGS)
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


class FileReader:
    """Per-thread state: a reusable buffer, the algorithm's constructor, the read strategy."""

    def __init__(
        self,
        algorithm: str,
        progress: ByteProgress | None,
        strategy: ReadStrategy | None = None,
    ) -> None:
        self.new = hasher_factory(algorithm)
        self.blake3 = algorithm == "blake3"
        self.progress = progress
        self.strategy = strategy or current().strategy
        self._buf: bytearray | None = None

    @property
    def buffer(self) -> tuple[bytearray, memoryview]:
        if self._buf is None:
            self._buf = bytearray(self.strategy.chunk)
        return self._buf, memoryview(self._buf)

    def _maps(self, nbytes: int) -> bool:
        """Whether ``nbytes`` of a file are hashed from a memory map."""
        if not USE_MMAP:
            return False
        if self.blake3:
            return nbytes >= BLAKE3_MMAP_MIN
        least = self.strategy.mmap_min
        return least is not None and nbytes >= least

    def digest_fd(self, fd: int, size: int, path: str) -> tuple[bytes, int]:
        """Digest and length of everything readable from ``fd`` (``size`` is a hint)."""
        try:
            if size <= SMALL_FILE:
                data = os.read(fd, size + 1)
                if len(data) <= size:  # a short read of a regular file is its end
                    return self.new(data).digest(), len(data)
                return self._rest(self.new(data), fd, len(data))
            if self._maps(size):
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
            step = BLAKE3_STEP if self.blake3 else self.strategy.mapped_step
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
        fd, _ = open_regular(path)
        try:
            h = self.new()
            if self._maps(end - start):
                self._mapped(h, fd, start, end, path)
                return bytes(h.digest())
            _, view = self.buffer
            chunk = len(view)
            offset = start
            while offset < end:
                want = min(chunk, end - offset)
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
