"""The write-ahead journal between a server and its log's writer process.

In ``journal`` mode (:class:`~mlspec_attest.log.journaled.JournaledLog`) a server does
not wait for the writer: it writes each request's checked values
(:meth:`~mlspec_attest.log.prepare.RecordMaker.fields`) to this journal and answers; the
writer process turns them into records, in journal order, and signs checkpoints. A
request is never answered before its values are in the operating system's hands in the
log's own directory, the guarantee an in-process ``InferenceLog.append`` gives for the
record itself.

Files: ``<log dir>/journal/<first index>.wal``, segments named by the log index (seq) of
their first entry, 20 digits. An entry is::

    u32 little-endian payload length | 16-byte keyed BLAKE2b of the payload | payload

The payload is the MessagePack array ``[index, *fields]`` (msgspec): the index is the seq
the record will have. An entry MessagePack cannot hold (an integer below -2**63, which a
record's CBOR can; text that is not valid Unicode; a ``str`` subclass) is written with
``marshal`` (version 4) instead, as older versions wrote every entry; the first byte
tells them apart (a ``marshal`` tuple starts ``(`` or ``)``, with or without its
reference flag 0x80; a MessagePack array never does). The MAC key is derived from the
log's signing key, which only the server and its writer hold, so an entry written by
anyone else, or moved, fails its MAC before anything is decoded (neither decoder is ever
given unauthenticated bytes), and an entry out of place fails its index.

**Writing without a system call.** A segment's space is reserved when it starts
(``posix_fallocate``: a full disk is refused then, with the request that needed the
segment, never in the middle of an entry) and mapped into the server (``MAP_SHARED``:
the mapping *is* the file's pages in the operating system's cache, so what is copied
into it survives the server's crash exactly as a returned ``write`` does). An entry is
copied in with its length last; a length of zero ends a segment's entries. A crash
therefore leaves whole entries and then zeros, never a visible half entry. A reader in
another process is only told that entries below an index are complete
(:attr:`JournalReader.complete_below`, from the server's word that there is more), so
it never judges an entry the server is still copying, whatever order another CPU sees
the copy in. A segment the server leaves is cut back to the entries it holds. Copying
an entry costs about 0.5 µs where a ``write`` cost 1.2-2.5 (docs/benchmarks.md).

The first write to each page of a mapping is a page fault, about 10 µs on a VM, once
per dozen entries; on Linux the writer has the kernel fill the pages ahead of it
:data:`POPULATE_BYTES` at a time (``MADV_POPULATE_WRITE``, about 0.03 µs per entry), so
requests rarely meet a fault.

A last entry cut short (a file cut back by hand, or left by an older version that
wrote with ``write``) ends its segment; everything else that does not read back is
tampering.

When the writer opens the log it commits every journaled entry the log does not hold yet
(what a crash left), signs a checkpoint and removes the journal; while it runs it removes
each segment whose entries a checkpoint covers once the server has moved to a later one.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import marshal
import mmap
import os
import re
import struct
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO, Final

from msgspec import Struct, msgpack

from mlspec_attest.errors import StoreError
from mlspec_attest.formats.limits import MAX_LOG_RECORD_BYTES, MiB, format_size, too_large
from mlspec_attest.log.fork_guard import forget_journal, guard
from mlspec_attest.log.prepare import FIELD_COUNT, Fields
from mlspec_attest.log.record import RecordError

JOURNAL: Final = "journal"
#: The space a segment reserves (more only for an entry larger than this).
SEGMENT_BYTES: Final = 64 * MiB
#: The largest payload an entry may have (a record is bounded the same way).
MAX_ENTRY_BYTES: Final = MAX_LOG_RECORD_BYTES
_HEAD: Final = struct.Struct("<I16s")
_SEGMENT: Final = re.compile(r"[0-9]{20}\.wal")
_FLAGS: Final = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
#: How much of a segment the writer has the kernel map in at a time, ahead of its entries.
POPULATE_BYTES: Final = 256 * 1024
#: ``madvise(MADV_POPULATE_WRITE)`` (Linux 5.14; Python's mmap module does not name it).
_POPULATE_WRITE: Final = 23 if sys.platform == "linux" else None
#: How a ``marshal`` tuple starts: ``(`` or ``)`` (small), each also with the flag 0x80.
_MARSHAL_TUPLE: Final = frozenset(b"()\xa8\xa9")
_encode = msgpack.Encoder().encode
_decode = msgpack.Decoder().decode
_SEQUENCES: Final = (list, tuple)


def journal_key(private_key_der: bytes) -> bytes:
    """The journal's MAC key: derived from the log's signing key (PKCS#8 DER)."""
    return hashlib.blake2b(private_key_der, digest_size=32, person=b"mlspec-journal").digest()


def _mac_of(key: bytes) -> Any:
    """A keyed BLAKE2b (16 bytes) to copy for each entry: cheaper than keying each one."""
    return hashlib.blake2b(key=key, digest_size=16)


def segment_name(first: int) -> str:
    return f"{first:020d}.wal"


def segments(directory: Path) -> list[tuple[int, Path]]:
    """The journal's segments, by first index (other names are ignored)."""
    root = directory / JOURNAL
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    found = [(int(n[:20]), root / n) for n in names if _SEGMENT.fullmatch(n)]
    return sorted(found)


def _reserve(fd: int, size: int) -> None:
    """Give the file ``size`` bytes of disk now (zeros): a mapped page written later never
    needs space the disk may not have (which would be ``SIGBUS``, not an error)."""
    allocate = getattr(os, "posix_fallocate", None)  # not on macOS
    if allocate is not None:
        allocate(fd, 0, size)
        return
    zeros = bytes(MiB)
    for at in range(0, size, MiB):
        os.pwrite(fd, zeros[: min(MiB, size - at)], at)


class JournalWriter:
    """The server's end: copies entries into the mapped segment. Thread-safe; a process
    forked from its own cannot use it (StoreError)."""

    _fork_refused = False

    def __init__(self, directory: Path, key: bytes, next_index: int) -> None:
        self.directory, self._index = directory, next_index
        self._mac = _mac_of(key)
        self._lock = threading.Lock()
        self._fd, self._pos, self._map_size = -1, 0, 0
        self.written = 0  # bytes journaled: read it before next_index, never more than below it
        self._ready = 0  # the current segment's bytes the kernel has mapped in
        self._populate = _POPULATE_WRITE
        self._map: mmap.mmap | None = None
        (directory / JOURNAL).mkdir(mode=0o700, exist_ok=True)
        self._start_segment(0)
        guard(self, forget_journal)  # a forked child leaves it alone

    @property
    def next_index(self) -> int:
        """The index of the next entry: every entry below it is whole in the segment."""
        return self._index

    def _start_segment(self, entry_bytes: int) -> None:
        """Reserve and map a new segment for entries from the next index on (at least
        ``entry_bytes`` of them); then leave the current one, cut back to its entries."""
        path = self.directory / JOURNAL / segment_name(self._index)
        size = max(SEGMENT_BYTES, entry_bytes)
        try:
            fd = os.open(path, _FLAGS, 0o600)
        except OSError as exc:
            raise StoreError(f"inference-log journal {path}: {exc.strerror or exc}") from exc
        try:
            _reserve(fd, size)
            mapped = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as exc:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise StoreError(
                f"inference-log journal {path}: cannot reserve {format_size(size)} "
                f"({exc.strerror or exc})",
                remedy="free space in the log's directory, then restart the server",
            ) from exc
        self._leave_segment()
        self._fd, self._map, self._pos, self._map_size = fd, mapped, 0, size
        self._ready = 0 if self._populate is not None else size

    def _fill_ahead(self, end: int) -> None:
        """Have the kernel map in the segment's pages from the first not mapped in yet
        through ``end`` and :data:`POPULATE_BYTES` beyond (see the module docstring).
        Where it cannot (an older kernel), pages fault in as they are first written."""
        start, page = self._ready, mmap.PAGESIZE
        wanted = max(POPULATE_BYTES, -(-(end - start) // page) * page)
        length = min(wanted, self._map_size - start)
        assert self._map is not None and self._populate is not None
        try:
            self._map.madvise(self._populate, start, length)
        except OSError:
            self._populate, length = None, self._map_size - start
        self._ready = start + length

    def _leave_segment(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd >= 0:
            with contextlib.suppress(OSError):  # the unused reservation back to the disk
                os.ftruncate(self._fd, self._pos)
            os.close(self._fd)
            self._fd = -1

    def append(self, fields: Fields) -> int:
        """Journal one request's fields; its index (the seq its record will have).
        RecordError if the entry is too large (nothing written); StoreError if a new
        segment cannot be reserved (the caller must stop)."""
        with self._lock:
            index = self._index
            try:
                payload = _encode((index, *fields))
            except Exception:  # a value MessagePack cannot hold (see the module docstring)
                payload = marshal.dumps((index, *fields), 4)
            length = len(payload)
            if length > MAX_ENTRY_BYTES:
                raise RecordError(too_large("inference record", MAX_ENTRY_BYTES, "a log record"))
            mapped, pos = self._map, self._pos
            if mapped is None:
                raise StoreError(
                    "inference-log journal: opened by the process this one was forked from"
                    if self._fork_refused
                    else "inference-log journal: closed",
                    remedy="open the log in the process that serves",
                )
            end = pos + _HEAD.size + length
            if end > self._map_size:
                self._start_segment(_HEAD.size + length)
                mapped, pos, end = self._map, 0, _HEAD.size + length
                assert mapped is not None
            if end > self._ready:
                self._fill_ahead(end)
            mac = self._mac.copy()
            mac.update(payload)
            mapped[pos + _HEAD.size : end] = payload
            mapped[pos + 4 : pos + _HEAD.size] = mac.digest()
            mapped[pos : pos + 4] = length.to_bytes(4, "little")  # last: now it is whole
            self._index, self._pos = index + 1, end
            self.written += _HEAD.size + length
            return index

    def close(self) -> None:
        with self._lock:
            self._leave_segment()


class _Position(Struct):
    first: int  # the segment's first index
    path: Path
    offset: int = 0
    handle: BinaryIO | None = None  # kept open while the segment is read

    def open(self) -> BinaryIO:
        """The segment, open and at the first byte not read yet (a crash or a write still
        under way may have left a partial entry beyond it, read again next time)."""
        if self.handle is None or self.handle.closed:  # a mark's copy may hold a closed one
            self.handle = open(self.path, "rb")  # noqa: SIM115 - kept for the next read
        # Drop what the buffer holds first: the segment's reserved space reads as zeros
        # until the server copies entries there, and a seek inside the buffer would keep
        # those zeros.
        self.handle.seek(0, os.SEEK_END)
        self.handle.seek(self.offset)
        return self.handle

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class JournalReader:
    """The writer's end: reads entries in order from index ``expected`` on (entries
    before it are in the log already and are passed over)."""

    def __init__(self, directory: Path, key: bytes, expected: int) -> None:
        self.directory, self.expected = directory, expected
        self._mac = _mac_of(key)
        self._at: _Position | None = None
        #: Entries below this index are whole (the server said so); one at or above it
        #: that does not read back whole may still be being copied: read it again later.
        #: None: the server is gone or closed, every entry it wrote is whole.
        self.complete_below: int | None = None

    def read(self, limit: int) -> list[Fields]:
        """Up to ``limit`` new entries' fields (fewer when the journal has no more yet).
        StoreError naming the place if an entry fails its MAC, its index or its form."""
        out: list[Fields] = []
        if self._at is None:
            self._at = self._segment_after(-1)
        while self._at is not None and len(out) < limit:
            at = self._at
            out += self._entries(at, limit - len(out))
            if len(out) >= limit or not self._settled():
                break  # what the server copies next may be here yet: move on once told
            later = self._segment_after(at.first)
            if later is None:
                break
            # the server moved on only after its last write here returned: read it, then
            # what is left of this segment is a write a crash cut short
            out += self._entries(at, limit - len(out))
            if len(out) < limit:
                at.close()
                self._at = later
        return out

    def _settled(self) -> bool:
        """Whether the entry due next is whole wherever it is (the server said so, or it is
        gone): then an end of entries in this segment means the server moved on."""
        return self.complete_below is None or self.expected < self.complete_below

    def mark(self) -> tuple[_Position | None, int]:
        """Where the reader is, to :meth:`rewind` to if what it read next is not kept."""
        at = self._at
        here = None if at is None else _Position(at.first, at.path, at.offset, at.handle)
        return here, self.expected

    def rewind(self, mark: tuple[_Position | None, int]) -> None:
        self._at, self.expected = mark

    def _segment_after(self, first: int) -> _Position | None:
        for start, path in segments(self.directory):
            if start > first:
                return _Position(start, path)
        return None

    def _entries(self, at: _Position, limit: int) -> list[Fields]:
        out: list[Fields] = []
        try:
            handle = at.open()
        except FileNotFoundError:
            return out
        while len(out) < limit:
            entry = self._one(handle, at)
            if entry is None:
                break
            index, *fields = entry
            if index == self.expected:  # an earlier one is in the log already
                self.expected += 1
                out.append(tuple(fields))
        return out

    def _one(self, handle: BinaryIO, at: _Position) -> list[Any] | tuple[Any, ...] | None:
        read = handle.read
        head = read(_HEAD.size)
        if len(head) < _HEAD.size:
            return None
        length, mac = _HEAD.unpack(head)
        if length == 0:  # the segment's entries end here (its reserved space follows)
            return None
        settled = self._settled()
        if length > MAX_ENTRY_BYTES:
            if not settled:
                return None
            raise self._bad(at, "an entry longer than any record")
        payload = read(length)
        if len(payload) < length:
            return None
        check = self._mac.copy()
        check.update(payload)
        if not hmac.compare_digest(check.digest(), mac):
            if not settled:
                return None  # still being copied, as far as this reader can know
            raise self._bad(at, "an entry fails its authentication")
        # authenticated: this log's server wrote it
        decode = marshal.loads if payload[0] in _MARSHAL_TUPLE else _decode
        entry: list[Any] | tuple[Any, ...] = decode(payload)
        if not (type(entry) in _SEQUENCES and len(entry) == FIELD_COUNT + 1):
            raise self._bad(at, "an entry of the wrong form")
        index = entry[0]
        if type(index) is not int or index > self.expected or index < at.first:
            raise self._bad(at, f"entry {index!r} where {self.expected} was due")
        at.offset += _HEAD.size + length
        return entry

    def _bad(self, at: _Position, what: str) -> StoreError:
        return StoreError(
            f"inference-log journal {at.path} at byte {at.offset}: {what}; "
            "the journal was altered or belongs to another key",
            remedy="keep the journal for investigation; move it aside to start the log again",
        )

    def remove_covered(self, signed: int) -> None:
        """Delete each segment that a checkpoint covers (every entry below ``signed``)
        and that the server has left (a later segment exists)."""
        found = segments(self.directory)
        for (_, path), (next_first, _) in itertools.pairwise(found):
            if next_first <= signed and (self._at is None or path != self._at.path):
                path.unlink(missing_ok=True)

    def remove_all(self) -> None:
        """Delete every segment (the log holds every entry, signed)."""
        for _, path in segments(self.directory):
            path.unlink(missing_ok=True)
        self.close()

    def close(self) -> None:
        """Close the segment being read (the next read opens it again)."""
        if self._at is not None:
            self._at.close()
        self._at = None
