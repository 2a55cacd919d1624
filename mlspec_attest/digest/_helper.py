"""Helper processes that hash batches of files for the digest engine: both ends.

The helper runs as ``python -I -S _hashhelper.py ALGORITHM`` (only the standard
library, and the blake3 package when asked); :class:`HelperClient` is the
parent's end of its pipes. Hashing many small files is bound by the
interpreter, not by the hash: threads in one process take turns on the GIL, so
the engine hands batches to one helper per extra core instead. The helper
reads and hashes exactly as :mod:`mlspec_attest.digest.engine` does (same open
flags, a small file whole through :func:`whole_small_file`, else the regular-file check
on the open descriptor); on any problem with a
file it reports "not hashed" and the parent hashes that file itself, which
produces the error message a user can act on.

Protocol (binary, on stdin/stdout), repeated until stdin closes:

* request: ``u32 count``, ``u32 length``, then the paths separated by NUL bytes
  (which no path can contain);
* reply: ``count`` signed 64-bit sizes (-1: not hashed), then ``count`` digests
  (zeros where not hashed).

The parent keeps at most two batches in flight and reads a reply before sending
the next batch; with batches of at most 512 files a reply (at most 36 KiB) fits
in a pipe buffer, so neither side can block the other forever.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import stat
import struct
import sys
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess

CHUNK = 4 << 20
SMALL_FILE = 64 << 10
FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
DIGEST_SIZES = {"sha256": 32, "blake2b": 64, "blake3": 32}
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


def constructor(algorithm: str) -> Callable[..., Any]:
    if algorithm == "blake3":
        module: Any = importlib.import_module("blake3")
        return module.blake3  # type: ignore[no-any-return]
    return getattr(hashlib, algorithm)  # type: ignore[no-any-return]


def whole_small_file(
    fd: int,
    lseek: Callable[[int, int, int], int] = os.lseek,
    pread: Callable[[int, int, int], bytes] = os.pread,
    end: int = os.SEEK_END,
) -> bytes | None:
    """The whole content of a small file in two calls, or None: read it the careful way.

    The end offset, then one read from the start of one byte more than that: a read no
    longer than the end is the whole file (shorter: it was cut meanwhile, and a short
    read of a regular file is its end). Anything else takes the careful way (``fstat``,
    which refuses what is not a regular file): no end offset (a FIFO, a terminal), an
    end beyond :data:`SMALL_FILE`, a read longer than the end (a file growing, or a
    device). A device that reads empty at end 0 (``/dev/null`` put in a file's place
    after the walk) reads as an empty file, which whoever could put it there could have
    written as well. ``fstat`` builds a stat result in Python: this is 1.1 µs of about
    6.8 per small file (docs/benchmarks.md)."""
    try:
        size = lseek(fd, 0, end)
        if size > SMALL_FILE:
            return None
        data = pread(fd, size + 1, 0)
    except OSError:
        return None
    return data if len(data) <= size else None


def read_exact(stream: Any, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError
    return bytes(data)


def serve(algorithm: str, stdin: Any, stdout: Any) -> None:
    new = constructor(algorithm)
    zero = bytes(DIGEST_SIZES[algorithm])
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    header = struct.Struct("<II").unpack
    os_open, fstat, read, close, isreg = os.open, os.fstat, os.read, os.close, stat.S_ISREG
    lseek, pread, end = os.lseek, os.pread, os.SEEK_END
    while True:
        try:
            count, nbytes = header(read_exact(stdin, 8))
        except EOFError:
            return
        paths = read_exact(stdin, nbytes).split(b"\0")
        if len(paths) != count:
            return  # a confused parent: stop, it hashes the rest itself
        sizes = array("q", bytes(8 * count))
        digests = []
        for k, path in enumerate(paths):
            try:
                fd = os_open(path, FLAGS)
            except OSError:
                sizes[k] = -1
                digests.append(zero)
                continue
            try:
                data = whole_small_file(fd, lseek, pread, end)
                if data is not None:
                    sizes[k] = len(data)
                    digests.append(new(data).digest())
                    continue
                st = fstat(fd)
                if not isreg(st.st_mode):
                    sizes[k] = -1
                    digests.append(zero)
                    continue
                size = st.st_size
                lseek(fd, 0, os.SEEK_SET)
                data = b""
                if size <= SMALL_FILE:
                    data = read(fd, size + 1)
                    if len(data) <= size:  # a short read of a regular file is its end
                        sizes[k] = len(data)
                        digests.append(new(data).digest())
                        continue
                h = new(data)
                done = len(data)
                while n := os.readv(fd, [buf]):
                    h.update(view[:n])
                    done += n
                sizes[k] = done
                digests.append(h.digest())
            except OSError:
                sizes[k] = -1
                digests.append(zero)
            finally:
                close(fd)
        stdout.write(sizes.tobytes() + b"".join(digests))
        stdout.flush()


class HelperClient:
    """The parent's end of one helper process."""

    _header = struct.Struct("<II")

    def __init__(self, proc: subprocess.Popen[bytes], algorithm: str) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.stdin = proc.stdin
        self.stdout = proc.stdout
        self.digest_size = DIGEST_SIZES[algorithm]

    @classmethod
    def start(cls, algorithm: str, script: Path) -> HelperClient | None:
        """A running helper, or None where one cannot be started (hash locally then)."""
        if not sys.executable or not script.is_file():
            return None
        import subprocess  # only once there are files enough for a helper: keeps start-up fast

        # -S keeps start-up near 15 ms; blake3 lives in site-packages, so it needs site.
        flags = ["-I"] if algorithm == "blake3" else ["-I", "-S"]
        try:
            proc = subprocess.Popen(
                [sys.executable, *flags, str(script), algorithm],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            return None
        return cls(proc, algorithm)

    def send(self, names: Sequence[str]) -> None:
        # os.fsencode of each name, in one call (names cannot hold NUL)
        body = "\0".join(names).encode(_FS_ENCODING, _FS_ERRORS)
        self.stdin.write(self._header.pack(len(names), len(body)) + body)
        self.stdin.flush()

    def receive(self, count: int) -> list[tuple[bytes, int] | None]:
        """The reply to the oldest batch sent: a (digest, size), or None if not hashed."""
        size = self.digest_size
        reply = self.stdout.read((8 + size) * count)
        if len(reply) != (8 + size) * count:
            raise EOFError("hash helper stopped")
        sizes = array("q")
        sizes.frombytes(reply[: 8 * count])
        base = 8 * count
        return [
            (reply[base + k * size : base + (k + 1) * size], n) if n >= 0 else None
            for k, n in enumerate(sizes)
        ]

    def close(self) -> None:
        """Stop the helper (it exits when its input closes)."""
        import subprocess

        with contextlib.suppress(OSError):
            self.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stdout.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)
