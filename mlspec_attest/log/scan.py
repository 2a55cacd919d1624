"""Reading ``records.cbor`` and ``access.log`` exactly, one bounded item at a time.

:class:`RecordScanner` decodes the record stream with cbor2 (strict options, one record
at most :data:`~mlspec_attest.formats.limits.MAX_LOG_RECORD_BYTES`) and yields each
record's exact bytes with its decoded value, so the caller hashes what is on disk.
An item that cannot be a record (it does not decode, is not a map, or is a map smaller
than any record) is yielded with its problem, together with everything up to the next
place a record ends (every record ends with the 143-byte tail of :mod:`.record`) and
another one decodes: a run of junk is one bad stretch, never one item per byte. A
partial record at the very end of the file is the torn tail of a crash
(:attr:`RecordScanner.torn`).

Decoding that yields no record (a failed item, a resync candidate that is not a
record) is bounded: at most :data:`WASTE_PER_BYTE` bytes decoded per byte read, plus
:data:`WASTE_SLACK`. Past that budget nothing more is decoded: the rest of what was
read is one bad stretch (tampered, never ok). Honest logs and ordinary tampering stay
far below it; only input built to make each resync candidate re-read the buffer
reaches it.

:func:`iter_lines` yields ``access.log`` lines, each bounded by
:data:`~mlspec_attest.formats.limits.MAX_ACCESS_LOG_LINE_BYTES`.

Every log file is opened by :func:`open_log_file`: without blocking (a FIFO would hang
``open``) and only if it is a regular file (a FIFO or ``/dev/zero`` could deliver bytes
forever); anything else raises OSError, which the audit reports as unreadable.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import cbor2
from msgspec import Struct

from mlspec_attest.formats.limits import (
    MAX_ACCESS_LOG_LINE_BYTES,
    MAX_LOG_RECORD_BYTES,
    MiB,
    format_size,
    open_for_reading,
)
from mlspec_attest.log.record import DECODER_OPTIONS, TAIL_SIZE, VSA_MARK

_CHUNK = 2 * MAX_LOG_RECORD_BYTES + 1
_LINE_CHUNK = 8 * MiB
_READ_AHEAD = 256  # cbor2's read size: a failed decode pulls little beyond its item
_DECODE_ERRORS = (cbor2.CBORError, ValueError, TypeError, RecursionError, OverflowError)
_MAP = 5  # the CBOR major type of a map (the top 3 bits of an item's first byte)
_KINDS = ("int", "int", "bytes", "str", "list", "map", "tag", "simple value or float")
#: No record is smaller: a map head, the 143-byte tail (``nl``, ``pv``, ``vd``) and 19
#: more keys, each at least a 2-byte key and a 1-byte value.
MIN_RECORD_BYTES = 1 + TAIL_SIZE + 19 * 3
WASTE_PER_BYTE = 16
WASTE_SLACK = MiB
#: A ``vd`` marker, its 64-byte value, and the head of a map: where a record may start.
_CANDIDATE = re.compile(re.escape(VSA_MARK) + b".{64}[\xa0-\xbf]", re.DOTALL)
_GAVE_UP = (
    "more undecodable data than the audit decodes for a file of this size (the rest of "
    "this stretch was not searched for records)"
)


def open_log_file(path: Path) -> BinaryIO | None:
    """``path`` open for reading, or None if it does not exist. Opening never blocks;
    a FIFO, a device or a directory raises OSError."""
    try:
        handle = open_for_reading(path)
    except FileNotFoundError:
        return None
    try:
        _regular(handle, path)
    except BaseException:
        handle.close()
        raise
    return handle


def _regular(handle: BinaryIO, path: Path) -> None:
    """Only regular files are log files: a device or FIFO could deliver bytes forever."""
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
        raise OSError(errno.EINVAL, "not a regular file", str(path))


class Scanned(Struct, frozen=True):
    """One record as read: where it starts, its bytes, and its decoded value or problem."""

    offset: int
    raw: bytes
    value: Any = None
    problem: str | None = None


class RecordScanner:
    """Iterate the records of ``path`` from byte ``start``; afterwards :attr:`end` is the
    offset after the last whole item, :attr:`torn` the size of a partial last record and
    :attr:`wasted` the bytes decoded that gave no record."""

    def __init__(self, path: Path, start: int = 0) -> None:
        self.path = path
        self.start = start
        self.end = start
        self.torn = 0
        self.wasted = 0
        self._read = 0

    def __iter__(self) -> Iterator[Scanned]:
        handle = open_log_file(self.path)
        if handle is None:
            return
        with handle:
            handle.seek(self.start)
            yield from self._scan(handle)

    def _scan(self, handle: BinaryIO) -> Iterator[Scanned]:
        buf, base, pos, eof = b"", self.start, 0, False
        while True:
            if not eof and len(buf) - pos <= MAX_LOG_RECORD_BYTES:
                more = handle.read(_CHUNK)
                eof = len(more) < _CHUNK
                self._read += len(more)
                buf, base, pos = buf[pos:] + more, base + pos, 0
            if pos == len(buf):
                return
            stream = io.BytesIO(buf)
            decoder = _decoder(stream)
            while pos < len(buf) and (eof or len(buf) - pos > MAX_LOG_RECORD_BYTES):
                item, pos = self._one(decoder, stream, buf, pos, base, eof)
                if item is None:  # the partial last record of a crash
                    self.torn = len(buf) - pos
                    return
                if item.problem is not None:  # its read-ahead is stale after an error
                    decoder = _decoder(stream)
                self.end = base + pos
                yield item

    def _one(
        self,
        decoder: cbor2.CBORDecoder,
        stream: io.BytesIO,
        buf: bytes,
        pos: int,
        base: int,
        eof: bool,
    ) -> tuple[Scanned | None, int]:
        if self._exhausted():
            return self._bad(buf, pos, base, _GAVE_UP)
        kind = buf[pos] >> 5
        if kind != _MAP:  # nothing else decodes to a map: no need to read it
            return self._bad(buf, pos, base, f"a CBOR {_KINDS[kind]}, not a map")
        stream.seek(pos)
        try:
            value = decoder.decode()
        except cbor2.CBORDecodeEOF:
            if eof and len(buf) - pos <= MAX_LOG_RECORD_BYTES:
                return None, pos
            self.wasted += stream.tell() - pos
            return self._bad(buf, pos, base, "larger than the record limit")
        except _DECODE_ERRORS as exc:
            self.wasted += stream.tell() - pos
            return self._bad(buf, pos, base, _reason(exc))
        end = stream.tell()
        problem = _not_a_record(value, end - pos)
        if problem is not None:
            self.wasted += end - pos
            return self._bad(buf, pos, base, problem)
        return Scanned(base + pos, buf[pos:end], value), end

    def _bad(self, buf: bytes, pos: int, base: int, reason: str) -> tuple[Scanned, int]:
        """The bad stretch from ``pos`` to where reading goes on, and that place."""
        end = self._resume(buf, pos)
        limit = format_size(MAX_LOG_RECORD_BYTES)
        text = reason.replace("the record limit", f"the record limit ({limit})")
        return Scanned(base + pos, buf[pos:end], None, f"not a CBOR record: {text}"), end

    def _resume(self, buf: bytes, pos: int) -> int:
        """Where reading goes on after an unreadable item at ``pos``: just after the next
        record tail from which a record decodes, or the end of what was read."""
        search, last = pos, pos + MAX_LOG_RECORD_BYTES + 64 + 1  # marks start within the limit
        while not self._exhausted():
            found = _CANDIDATE.search(buf, search, last)
            if found is None:
                break
            if self._decodes_to_record(buf, found.end() - 1):
                return found.end() - 1
            search = found.start() + 1
        return len(buf)

    def _decodes_to_record(self, buf: bytes, pos: int) -> bool:
        """Does a record decode at ``pos`` (as :meth:`_one` would take it)? Only a map
        with room for a record is decoded; what the decoding reads counts as waste."""
        if buf[pos] >> 5 != _MAP or len(buf) - pos < MIN_RECORD_BYTES:
            return False
        stream = io.BytesIO(buf)
        stream.seek(pos)
        try:
            value = _decoder(stream).decode()
        except _DECODE_ERRORS:
            self.wasted += stream.tell() - pos
            return False
        self.wasted += stream.tell() - pos  # read again as the record, or not a record
        return _not_a_record(value, stream.tell() - pos) is None

    def _exhausted(self) -> bool:
        return self.wasted > WASTE_PER_BYTE * self._read + WASTE_SLACK


def _decoder(stream: io.BytesIO) -> cbor2.CBORDecoder:
    return cbor2.CBORDecoder(stream, read_size=_READ_AHEAD, **DECODER_OPTIONS)


def _not_a_record(value: Any, size: int) -> str | None:
    """Why a decoded item of ``size`` bytes cannot be a record, if it cannot."""
    if type(value) is not dict:
        return f"a CBOR {type(value).__name__}, not a map"
    if size > MAX_LOG_RECORD_BYTES:
        return "larger than the record limit"
    if size < MIN_RECORD_BYTES:
        return f"a map of {size} bytes, smaller than any record ({MIN_RECORD_BYTES} bytes)"
    return None


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    message = getattr(cause, "message", None) if cause is not None else None
    return str(message or exc) or type(exc).__name__


class Line(Struct, frozen=True):
    """One line of ``access.log``: its offset, its bytes (no newline), whether it ended in
    a newline, and whether it was cut at the line limit."""

    offset: int
    data: bytes
    complete: bool
    too_long: bool = False


def iter_lines(path: Path, start: int = 0) -> Iterator[Line]:
    """The lines of ``path`` from byte ``start`` (none if it does not exist), each
    within the line limit."""
    handle = open_log_file(path)
    if handle is None:
        return
    with handle:
        handle.seek(start)
        yield from _lines(handle, start)


def _lines(handle: BinaryIO, offset: int) -> Iterator[Line]:
    pending, skipping = b"", False
    while True:
        chunk = handle.read(_LINE_CHUNK)
        if not chunk:
            break
        parts = (pending + chunk).split(b"\n")
        pending = parts.pop()
        for part in parts:
            if skipping:  # the rest of an over-long line
                offset += len(part) + 1
                skipping = False
                continue
            yield Line(offset, part, True)
            offset += len(part) + 1
        if len(pending) > MAX_ACCESS_LOG_LINE_BYTES:
            if not skipping:
                yield Line(offset, pending[:64], False, too_long=True)
            offset += len(pending)
            pending, skipping = b"", True
    if pending and not skipping:
        yield Line(offset, pending, False)
