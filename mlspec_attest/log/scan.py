"""Reading ``records.cbor`` and ``access.log`` exactly, one bounded item at a time.

:class:`RecordScanner` decodes the record stream with cbor2 (strict options, one record
at most :data:`~mlspec_attest.formats.limits.MAX_LOG_RECORD_BYTES`) and yields each
record's exact bytes with its decoded value, so the caller hashes what is on disk.
A record that does not decode is yielded with its problem, and reading resumes at the
next place a record ends (every record ends with the 143-byte tail of
:mod:`.record`) and another one decodes; a partial record at the very end of the file
is the torn tail of a crash (:attr:`RecordScanner.torn`).

:func:`iter_lines` yields ``access.log`` lines, each bounded by
:data:`~mlspec_attest.formats.limits.MAX_ACCESS_LOG_LINE_BYTES`.
"""

from __future__ import annotations

import errno
import io
import os
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
)
from mlspec_attest.log.record import DECODER_OPTIONS, VSA_MARK

_CHUNK = 2 * MAX_LOG_RECORD_BYTES + 1
_LINE_CHUNK = 8 * MiB


class Scanned(Struct, frozen=True):
    """One record as read: where it starts, its bytes, and its decoded value or problem."""

    offset: int
    raw: bytes
    value: Any = None
    problem: str | None = None


class RecordScanner:
    """Iterate the records of ``path`` from byte ``start``; afterwards :attr:`end` is the
    offset after the last whole item and :attr:`torn` the size of a partial last record."""

    def __init__(self, path: Path, start: int = 0) -> None:
        self.path = path
        self.start = start
        self.end = start
        self.torn = 0

    def __iter__(self) -> Iterator[Scanned]:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        with handle:
            _regular(handle, self.path)
            handle.seek(self.start)
            yield from self._scan(handle)

    def _scan(self, handle: BinaryIO) -> Iterator[Scanned]:
        buf, base, pos, eof = b"", self.start, 0, False
        while True:
            if not eof and len(buf) - pos <= MAX_LOG_RECORD_BYTES:
                more = handle.read(_CHUNK)
                eof = len(more) < _CHUNK
                buf, base, pos = buf[pos:] + more, base + pos, 0
            if pos == len(buf):
                return
            stream = io.BytesIO(buf)
            decoder = cbor2.CBORDecoder(stream, **DECODER_OPTIONS)
            while pos < len(buf) and (eof or len(buf) - pos > MAX_LOG_RECORD_BYTES):
                item, pos = self._one(decoder, stream, buf, pos, base, eof)
                if item is None:  # the partial last record of a crash
                    self.torn = len(buf) - pos
                    return
                if item.problem is not None:  # its read-ahead is stale after an error
                    decoder = cbor2.CBORDecoder(stream, **DECODER_OPTIONS)
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
        stream.seek(pos)
        try:
            value = decoder.decode()
        except cbor2.CBORDecodeEOF:
            if eof and len(buf) - pos <= MAX_LOG_RECORD_BYTES:
                return None, pos
            return self._bad(buf, pos, base, "larger than the record limit"), self._resume(buf, pos)
        except (cbor2.CBORError, ValueError, TypeError, RecursionError, OverflowError) as exc:
            return self._bad(buf, pos, base, _reason(exc)), self._resume(buf, pos)
        end = stream.tell()
        if end - pos > MAX_LOG_RECORD_BYTES:
            return self._bad(buf, pos, base, "larger than the record limit"), self._resume(buf, pos)
        if type(value) is not dict:  # not a record: find where records go on
            reason = f"a CBOR {type(value).__name__}, not a map"
            return self._bad(buf, pos, base, reason), self._resume(buf, pos)
        return Scanned(base + pos, buf[pos:end], value), end

    def _bad(self, buf: bytes, pos: int, base: int, reason: str) -> Scanned:
        end = self._resume(buf, pos)
        limit = format_size(MAX_LOG_RECORD_BYTES)
        text = reason.replace("the record limit", f"the record limit ({limit})")
        return Scanned(base + pos, buf[pos:end], None, f"not a CBOR record: {text}")

    def _resume(self, buf: bytes, pos: int) -> int:
        """Where reading goes on after an unreadable item at ``pos``: just after the next
        record tail from which a map decodes, or the end of what was read."""
        search = pos
        while True:
            found = buf.find(VSA_MARK, search, pos + MAX_LOG_RECORD_BYTES)
            if found < 0:
                return len(buf)
            candidate = found + len(VSA_MARK) + 64
            if candidate >= len(buf):
                return len(buf)
            if _decodes_to_map(buf, candidate):
                return candidate
            search = found + 1


def _decodes_to_map(buf: bytes, pos: int) -> bool:
    try:
        stream = io.BytesIO(buf)
        stream.seek(pos)
        return type(cbor2.CBORDecoder(stream, **DECODER_OPTIONS).decode()) is dict
    except (cbor2.CBORError, ValueError, TypeError, RecursionError, OverflowError):
        return False


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
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        _regular(handle, path)
        handle.seek(start)
        yield from _lines(handle, start)


def _regular(handle: BinaryIO, path: Path) -> None:
    """Only regular files are log files: a device or FIFO could deliver bytes forever."""
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
        raise OSError(errno.EINVAL, "not a regular file", str(path))


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
