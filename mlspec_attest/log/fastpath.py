"""The fast pass over the signed part of a log: raw bytes hashed, nothing decoded.

Every record ends with the same 143 bytes (:data:`mlspec_attest.log.record.TAIL_SIZE`):
its ``nl`` (the digest of its ``access.log`` line), its ``pv`` (the previous record's leaf
hash) and its ``vd``. The pass frames each record by the next ``vd`` marker, checks
``pv`` (at its fixed place from the end) against the previous leaf and ``nl`` against the
digest of the next line, hashes the slice into the tree, and compares the root with
every signed checkpoint on the way.

It only ever says "all of the first N records verify" or "something is off": a marker
found inside a record (a client can send one), an edited byte, a missing line, any
mismatch ends the pass with None, and the caller reads the log exactly
(:mod:`.exact`), which names what happened. When the pass succeeds, the framing was
right: the tree of the slices has the root the key signed for N records, so the slices
are the records the writer signed (SHA-256 being collision resistant), and each line
hashes to the digest its signed record holds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

from mlspec_attest.formats.limits import MAX_ACCESS_LOG_LINE_BYTES, MAX_LOG_RECORD_BYTES, MiB
from mlspec_attest.log.exact import ZERO, Start
from mlspec_attest.log.files import ACCESS_LOG, RECORDS
from mlspec_attest.log.merkle import CompactRange
from mlspec_attest.log.record import MAP_HEADS, TAIL_SIZE, VSA_MARK

_CHUNK = 2 * MAX_LOG_RECORD_BYTES + 1
_LINE_CHUNK = 8 * MiB
_FIRST_MARK = TAIL_SIZE - 69  # the vd marker is never nearer a record's start


def fast_prefix(directory: Path, roots: dict[int, bytes], signed: int) -> Start | None:
    """Verify the first ``signed`` records and lines against ``roots`` (size -> signed
    root, including ``signed``); the state after them, or None if anything is off."""
    if signed == 0:
        return Start()
    try:
        with (
            (directory / RECORDS).open("rb") as records,
            (directory / ACCESS_LOG).open("rb") as log,
        ):
            return _walk(records, log, roots, signed)
    except OSError:
        return None


class _Lines:
    """Complete lines of ``access.log`` in blocks (a list per read, no generator)."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.pending, self.offset = handle, b"", 0

    def block(self) -> list[bytes] | None:
        """The next complete lines (at least one), or None at the end or past the limit."""
        while True:
            chunk = self.handle.read(_LINE_CHUNK)
            if not chunk or len(self.pending) > MAX_ACCESS_LOG_LINE_BYTES:
                return None
            lines = (self.pending + chunk).split(b"\n")
            self.pending = lines.pop()
            if lines:
                return lines


def _walk(records: BinaryIO, log: BinaryIO, roots: dict[int, bytes], signed: int) -> Start | None:
    sha256, mark, heads = hashlib.sha256, VSA_MARK, frozenset(h[0] for h in MAP_HEADS)
    reader = _Lines(log)
    lines: list[bytes] = []
    taken = line_bytes = 0  # lines of the current block used; their bytes with newlines
    stack: list[bytes] = []  # the compact range, inline: roots of perfect subtrees
    prev, count = ZERO, 0
    buf, base, pos, eof = b"", 0, 0, False
    while count < signed:
        if not eof and len(buf) - pos <= MAX_LOG_RECORD_BYTES:
            more = records.read(_CHUNK)
            eof = len(more) < _CHUNK
            buf, base, pos = buf[pos:] + more, base + pos, 0
        if taken == len(lines):
            block = reader.block()
            if block is None:
                return None
            lines, taken = block, 0
        end = buf.find(mark, pos + _FIRST_MARK) + 69
        if end < 69 or end > len(buf) or end - pos > MAX_LOG_RECORD_BYTES:
            return None
        line = lines[taken]
        if (
            buf[pos] not in heads
            or not buf.startswith(prev, end - 101)
            or not buf.startswith(sha256(line).digest(), end - 138)
        ):
            return None
        taken, line_bytes = taken + 1, line_bytes + len(line) + 1
        leaf = h = sha256(b"\x00" + buf[pos:end]).digest()
        n = count
        while n & 1:
            h = sha256(b"\x01" + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        count, prev, pos = count + 1, leaf, end
        if count in roots and _range(count, stack).root() != roots[count]:
            return None
    return Start(count, base + pos, line_bytes, _range(count, stack), prev)


def _range(size: int, stack: list[bytes]) -> CompactRange:
    tree = CompactRange()
    tree.size, tree.stack = size, list(stack)
    return tree
