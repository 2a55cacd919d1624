"""Helper processes that hash batches of files for the digest engine: both ends.

The helper runs as ``python -I -S _hashhelper.py ALGORITHM`` (only the standard
library, and the blake3 package when asked); :class:`HelperClient` is the
parent's end of its pipes. Hashing many small files is bound by the
interpreter, not by the hash: threads in one process take turns on the GIL, so
the engine hands batches to one helper per extra core instead. The helper
reads and hashes exactly as :mod:`mlspec_attest.digest.engine` does (same open
flags, same regular-file check on the open descriptor); on any problem with a
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


def constructor(algorithm: str) -> Callable[..., Any]:
    if algorithm == "blake3":
        module: Any = importlib.import_module("blake3")
        return module.blake3  # type: ignore[no-any-return]
    return getattr(hashlib, algorithm)  # type: ignore[no-any-return]


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
                st = fstat(fd)
                if not isreg(st.st_mode):
                    sizes[k] = -1
                    digests.append(zero)
                    continue
                size = st.st_size
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
        body = b"\0".join([os.fsencode(n) for n in names])
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
