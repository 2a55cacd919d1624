"""Helper processes that hash batches of files for the digest engine: both ends.

The helper runs as ``python -I -S _hashhelper.py ALGORITHM`` (only the standard
library, and the blake3 package when asked); :class:`HelperClient` is the
parent's end of its pipes. Hashing many small files is bound by the
interpreter, not by the hash: threads in one process take turns on the GIL, so
the engine hands batches to one helper per extra core instead. The helper
reads and hashes exactly as :mod:`mlspec_attest.hashengine` does (same open
flags, same regular-file check on the open descriptor); on any problem with a
file it reports "not hashed" and the parent hashes that file itself, which
produces the error message a user can act on.

Protocol (binary, on stdin/stdout), repeated until stdin closes:

* request: ``u32 count``, then per file ``u32 length`` + path bytes;
* reply: per file ``u8 status`` (0 hashed, 1 not hashed), ``u64 size``, digest.

The parent keeps at most two batches in flight and reads a reply before sending
the next batch; with batches of at most 512 files a reply (at most 37 KiB) fits
in a pipe buffer, so neither side can block the other forever.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import stat
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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
    failed = b"\x01" + bytes(8 + DIGEST_SIZES[algorithm])
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    pack = struct.Struct("<BQ").pack
    u32 = struct.Struct("<I").unpack
    while True:
        try:
            (count,) = u32(read_exact(stdin, 4))
        except EOFError:
            return
        out = []
        for _ in range(count):
            (length,) = u32(read_exact(stdin, 4))
            path = read_exact(stdin, length)
            try:
                fd = os.open(path, FLAGS)
            except OSError:
                out.append(failed)
                continue
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    out.append(failed)
                    continue
                size = st.st_size
                data = b""
                if size <= SMALL_FILE:
                    data = os.read(fd, size + 1)
                    if len(data) <= size:  # a short read of a regular file is its end
                        out.append(pack(0, len(data)) + new(data).digest())
                        continue
                h = new(data)
                done = len(data)
                while n := os.readv(fd, [buf]):
                    h.update(view[:n])
                    done += n
                out.append(pack(0, done) + h.digest())
            except OSError:
                out.append(failed)
            finally:
                os.close(fd)
        stdout.write(b"".join(out))
        stdout.flush()


class HelperClient:
    """The parent's end of one helper process."""

    _count = struct.Struct("<I")
    _reply = struct.Struct("<BQ")

    def __init__(self, proc: subprocess.Popen[bytes], algorithm: str) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.stdin = proc.stdin
        self.stdout = proc.stdout
        self.width = 9 + DIGEST_SIZES[algorithm]

    @classmethod
    def start(cls, algorithm: str, script: Path) -> HelperClient | None:
        """A running helper, or None where one cannot be started (hash locally then)."""
        if not sys.executable or not script.is_file():
            return None
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
        pack = self._count.pack
        encoded = [os.fsencode(n) for n in names]
        self.stdin.write(pack(len(encoded)) + b"".join([pack(len(e)) + e for e in encoded]))
        self.stdin.flush()

    def receive(self, count: int) -> list[tuple[bytes, int] | None]:
        """The reply to the oldest batch sent: a (digest, size), or None if not hashed."""
        width = self.width
        reply = self.stdout.read(width * count)
        if len(reply) != width * count:
            raise EOFError("hash helper stopped")
        unpack = self._reply.unpack_from
        out: list[tuple[bytes, int] | None] = []
        for k in range(0, len(reply), width):
            status, size = unpack(reply, k)
            out.append(None if status else (reply[k + 9 : k + width], size))
        return out

    def close(self) -> None:
        """Stop the helper (it exits when its input closes)."""
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
