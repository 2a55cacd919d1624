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
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

from mlspec_attest.formats.limits import MAX_ACCESS_LOG_LINE_BYTES, MAX_LOG_RECORD_BYTES, MiB
from mlspec_attest.log.exact import ZERO, Start
from mlspec_attest.log.files import ACCESS_LOG, RECORDS
from mlspec_attest.log.merkle import CompactRange
from mlspec_attest.log.record import MAP_HEADS, TAIL_SIZE, VSA_MARK
from mlspec_attest.log.scan import open_log_file

_CHUNK = 4 * MiB
_LINE_CHUNK = 8 * MiB
_FIRST_MARK = TAIL_SIZE - 69  # the vd marker is never nearer a record's start


def fast_prefix(directory: Path, roots: dict[int, bytes], signed: int) -> Start | None:
    """Verify the first ``signed`` records and lines against ``roots`` (size -> signed
    root, including ``signed``); the state after them, or None if anything is off."""
    if signed == 0:
        return Start()
    try:
        with ExitStack() as stack:
            handles = []
            for name in (RECORDS, ACCESS_LOG):
                handle = open_log_file(directory / name)  # never blocks; regular files only
                if handle is None:
                    return None  # the exact reading names what is missing
                handles.append(stack.enter_context(handle))
            return _walk(handles[0], handles[1], roots, signed)
    except OSError:
        return None  # the exact reading reports what cannot be read


class _Lines:
    """Complete lines of ``access.log``, handed out in counts (no generator per line)."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.pending = handle, b""
        self.lines: list[bytes] = []
        self.taken = 0  # lines of ``lines`` handed out
        self.offset = 0  # bytes of the lines handed out, newlines included

    def take(self, count: int) -> list[bytes] | None:
        """The next ``count`` lines, or None if the file has fewer complete lines."""
        while len(self.lines) - self.taken < count:
            chunk = self.handle.read(_LINE_CHUNK)
            if not chunk or len(self.pending) > MAX_ACCESS_LOG_LINE_BYTES:
                return None
            more = (self.pending + chunk).split(b"\n")
            self.pending = more.pop()
            self.lines = self.lines[self.taken :] + more
            self.taken = 0
        out = self.lines[self.taken : self.taken + count]
        self.taken += count
        self.offset += sum(map(len, out)) + count
        return out


class _Tree:
    """The compact range, appended to inline, checked against the signed roots."""

    def __init__(self, roots: dict[int, bytes]) -> None:
        self.roots, self.size = roots, 0
        self.stack: list[bytes] = []

    def extend(self, leaves: list[bytes]) -> bool:
        """Append ``leaves``; False as soon as a signed root differs."""
        sha256, stack, roots, size = hashlib.sha256, self.stack, self.roots, self.size
        for leaf in leaves:
            h, n = leaf, size
            while n & 1:
                h = sha256(b"\x01" + stack.pop() + h).digest()
                n >>= 1
            stack.append(h)
            size += 1
            if size in roots and _range(size, stack).root() != roots[size]:
                return False
        self.size = size
        return True


def _frame(buf: bytes, pos: int, limit: int) -> tuple[list[int], list[int]] | None:
    """Start and end offsets of up to ``limit`` whole records of ``buf`` from ``pos``
    (those the buffer holds entirely); None for one larger than a record may be."""
    find, mark = buf.find, VSA_MARK
    starts: list[int] = []
    ends: list[int] = []
    while len(starts) < limit:
        end = find(mark, pos + _FIRST_MARK) + 69
        if end < 69 or end > len(buf):
            break
        if end - pos > MAX_LOG_RECORD_BYTES:
            return None
        starts.append(pos)
        ends.append(end)
        pos = end
    return starts, ends


def _check(
    buf: bytes, starts: list[int], ends: list[int], lines: list[bytes], prev: bytes
) -> list[bytes] | None:
    """The leaf hashes of the framed records, if each holds its line's digest, chains to
    the one before and starts as a record does; else None."""
    sha256, heads = hashlib.sha256, frozenset(h[0] for h in MAP_HEADS)
    leaves = [sha256(b"\x00" + buf[s:e]).digest() for s, e in zip(starts, ends, strict=True)]
    if [buf[e - 101 : e - 69] for e in ends] != [prev, *leaves[:-1]]:
        return None
    if [buf[e - 138 : e - 106] for e in ends] != [sha256(line).digest() for line in lines]:
        return None
    if any(buf[s] not in heads for s in starts):
        return None
    return leaves


def _walk(records: BinaryIO, log: BinaryIO, roots: dict[int, bytes], signed: int) -> Start | None:
    lines, tree = _Lines(log), _Tree(roots)
    prev, buf, base, pos, eof = ZERO, b"", 0, 0, False
    while tree.size < signed:
        if eof or len(buf) - pos > MAX_LOG_RECORD_BYTES:
            return None  # no whole record left, or one larger than a record may be
        more = records.read(_CHUNK)
        eof = len(more) < _CHUNK
        buf, base, pos = buf[pos:] + more, base + pos, 0
        framed = _frame(buf, pos, signed - tree.size)
        if framed is None:
            return None
        starts, ends = framed
        if not starts:
            continue
        block = lines.take(len(starts))
        leaves = None if block is None else _check(buf, starts, ends, block, prev)
        if leaves is None or not tree.extend(leaves):
            return None
        prev, pos = leaves[-1], ends[-1]
    return Start(tree.size, base + pos, lines.offset, _range(tree.size, tree.stack), prev)


def _range(size: int, stack: list[bytes]) -> CompactRange:
    tree = CompactRange()
    tree.size, tree.stack = size, list(stack)
    return tree
