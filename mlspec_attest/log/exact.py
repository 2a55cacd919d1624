"""The exact reading of a log: every record decoded, checked and rendered.

For each record in file order :class:`ExactScan` keeps what the classification needs
(:class:`Entry`: seq, request id, prev, leaf hash, whether the record is valid, how its
``access.log`` line compares), the Merkle roots at the checkpoint sizes, and what lies
after the last record (a torn record, lines without a record). It starts at byte 0, or
where the fast pass (:mod:`.fastpath`) stopped after the signed records.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from pathlib import Path

from msgspec import Struct, field

from mlspec_attest.log.files import ACCESS_LOG, RECORDS
from mlspec_attest.log.merkle import CompactRange, leaf_hash
from mlspec_attest.log.ncsa import extensions, line_of_map
from mlspec_attest.log.record import RecordError, check_line_digest, check_map, decode_record
from mlspec_attest.log.scan import RecordScanner, Scanned, iter_lines

ZERO = bytes(32)


class LineState(StrEnum):
    OK = "ok"
    DIFFERS = "differs"  # the line of this seq is not the record's rendering
    MISSING = "missing"
    PARTIAL = "partial"  # the last line, without its newline


class Entry(Struct):
    """One record as the exact reading saw it."""

    position: int
    leaf: bytes
    seq: int | None = None
    request_id: str | None = None
    prev: bytes | None = None
    problem: str | None = None  # why the record is not a valid record
    line: LineState = LineState.MISSING
    line_index: int | None = None  # where its line is in access.log (0-based)


class Start(Struct):
    """Where reading begins: a count of records already verified, and their state."""

    position: int = 0
    offset: int = 0
    line_offset: int = 0
    tree: CompactRange = field(default_factory=CompactRange)
    prev: bytes = ZERO


#: A line that is no record's: the seq and request id it names (if any), and what is
#: wrong with it ("an access.log line repeats seq 4").
Extra = tuple[int | None, str | None, str]
#: Extra lines kept with their seq and why; beyond, only counted.
MAX_EXTRA_LINES = 50


class Lines(Struct):
    """``access.log`` from the start, indexed by the seq each line names."""

    by_seq: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # seq -> (index, digest)
    ids: dict[int, str] = field(default_factory=dict)  # seq -> request id (escaped)
    extra: list[Extra] = field(default_factory=list)  # lines beyond one per record (the first)
    extra_more: int = 0  # and how many more, not kept (a flood of lines costs no memory)
    partial: tuple[int | None, str | None] | None = None  # a last line without its newline
    partial_data: bytes = b""
    complete: int = 0  # complete lines, counting those before the start
    end: int = 0  # offset after the last complete line

    def add_extra(self, item: Extra) -> None:
        """Keep the first :data:`MAX_EXTRA_LINES` extra lines; count the rest."""
        if len(self.extra) < MAX_EXTRA_LINES:
            self.extra.append(item)
        else:
            self.extra_more += 1


class ExactScan(Struct):
    """The result of reading the log exactly from a :class:`Start`."""

    start: Start
    lines: Lines
    entries: list[Entry] = field(default_factory=list)
    roots: dict[int, bytes] = field(default_factory=dict)  # checkpoint size -> our root
    torn: int = 0  # bytes of a partial record at the end
    records_end: int = 0  # offset after the last whole item
    tree: CompactRange = field(default_factory=CompactRange)
    unlined_offset: int | None = None  # where the first record read without its line starts

    @property
    def last_leaf(self) -> bytes:
        return self.entries[-1].leaf if self.entries else self.start.prev

    @property
    def count(self) -> int:
        """Records read in all, counting those verified before the start."""
        return self.start.position + len(self.entries)

    @property
    def line_ids(self) -> dict[int, str]:
        return self.lines.ids


def scan_exact(directory: Path, sizes: set[int], start: Start | None = None) -> ExactScan:
    """Read ``directory``'s records and lines exactly from ``start``; remember the tree's
    root at every size in ``sizes``."""
    start = start or Start()
    lines = read_lines(directory / ACCESS_LOG, start)
    scan = ExactScan(start, lines, tree=start.tree.copy(), records_end=start.offset)
    scanner = RecordScanner(directory / RECORDS, start.offset)
    unlined: tuple[Entry, Scanned | None] | None = None  # the first record without a line
    signed = max(sizes, default=0)
    for item in scanner:
        position = start.position + len(scan.entries)
        entry, digest = _entry(position, item, signed=position < signed)
        _compare_line(lines, entry, digest)
        scan.entries.append(entry)
        if entry.line is LineState.MISSING and unlined is None:
            unlined, scan.unlined_offset = (entry, item if digest else None), item.offset
        scan.tree.append(entry.leaf)
        if scan.tree.size in sizes:
            scan.roots[scan.tree.size] = scan.tree.root()
    scan.torn, scan.records_end = scanner.torn, scanner.end
    _partial_line(scan, unlined)
    return scan


def _partial_line(scan: ExactScan, unlined: tuple[Entry, Scanned | None] | None) -> None:
    """A last line without its newline is a crash's only as the line of the first record
    without a complete line (a crash between writing a group's records and their lines
    leaves the lines of its first records, then a part of one): it is then that record's
    (partial if it begins the record's line, else differing), and :mod:`.classify` judges
    the rest. Any other is an extra line."""
    lines, partial = scan.lines, scan.lines.partial
    if partial is None:
        return
    if unlined is None or partial[0] not in (None, unlined[0].seq):
        why = "access.log ends with a line without its newline that is no record's torn line"
        lines.add_extra((*partial, why))
        return
    entry, item = unlined
    rendered = None if item is None else line_of_map(item.value).encode()
    ok = rendered is not None and rendered.startswith(lines.partial_data)
    entry.line = LineState.PARTIAL if ok else LineState.DIFFERS


def read_lines(path: Path, start: Start) -> Lines:
    """Every line of ``path`` from ``start``: its digest by the seq it names."""
    lines = Lines(complete=start.position, end=start.line_offset)
    for line in iter_lines(path, start.line_offset):
        if line.too_long:  # no record's line is this long; reading goes on after it
            lines.add_extra((None, None, "an access.log line is longer than the line limit"))
            continue
        seq, rid = _ids(line.data)
        if seq is not None and rid is not None:
            lines.ids.setdefault(seq, rid)
        if not line.complete:
            lines.partial, lines.partial_data = (seq, rid), line.data
            break
        index = lines.complete
        lines.complete, lines.end = index + 1, line.offset + len(line.data) + 1
        if seq is None:
            lines.add_extra((seq, rid, "an access.log line names no seq"))
        elif seq < start.position or seq in lines.by_seq:  # the fast pass matched those
            lines.add_extra((seq, rid, f"an access.log line repeats seq {seq}"))
        else:
            lines.by_seq[seq] = (index, hashlib.sha256(line.data).digest())
    return lines


def _entry(position: int, item: Scanned, *, signed: bool) -> tuple[Entry, bytes | None]:
    """The entry of one scanned item, and the digest of its line (its ``nl``, once checked)
    if it is a valid record. A record no checkpoint covers must be exactly what
    :func:`~mlspec_attest.log.record.decode_record` accepts, its canonical encoding
    included: the writer signs it as it is when it reopens the log. A signed record's
    bytes are what the key signed if the roots match (and a finding if not)."""
    entry = Entry(position, leaf_hash(item.raw))
    if item.problem is not None:
        entry.problem = item.problem
        return entry, None
    value = item.value
    if isinstance(value, dict):
        seq, rid, prev = value.get("n"), value.get("r"), value.get("pv")
        entry.seq = seq if type(seq) is int else None
        entry.request_id = rid if type(rid) is str else None
        entry.prev = prev if type(prev) is bytes and len(prev) == 32 else None
    what = f"record at position {position}"
    try:
        if signed:
            check_map(value, what=what)
            check_line_digest(value, what=what)
        else:
            decode_record(item.raw, what=what)
    except RecordError as exc:
        entry.problem = exc.message
        return entry, None
    digest: bytes = value["nl"]
    return entry, digest


def _compare_line(lines: Lines, entry: Entry, digest: bytes | None) -> None:
    seq = entry.seq if entry.seq is not None else entry.position
    if entry.request_id is None:
        entry.request_id = lines.ids.get(seq)  # an unreadable record named by its line
    found = lines.by_seq.get(seq)
    if found is None:
        entry.line = LineState.MISSING
    elif digest is None or found[1] != digest:
        entry.line = LineState.DIFFERS
    else:
        entry.line, entry.line_index = LineState.OK, found[0]


def _ids(line: bytes) -> tuple[int | None, str | None]:
    """The ``seq`` and ``rid`` extensions of a line (rid still escaped), if readable."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        return None, None
    values = extensions(text)
    if values is None:
        return None, None
    seq = values["seq"]
    return (int(seq) if seq.isdigit() and len(seq) < 20 else None), values["rid"]
