"""The exact reading of a log: every record decoded, checked and rendered.

For each record in file order :class:`ExactScan` keeps what the classification needs
(:class:`Entry`: seq, request id, prev, leaf hash, whether the record is valid, how its
``access.log`` line compares), the Merkle roots at the checkpoint sizes, and what lies
after the last record (a torn record, lines without a record). It starts at byte 0, or
where the fast pass (:mod:`.fastpath`) stopped after the signed records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from mlspec_attest.log.files import ACCESS_LOG, RECORDS
from mlspec_attest.log.merkle import CompactRange, leaf_hash
from mlspec_attest.log.ncsa import extension
from mlspec_attest.log.record import RecordError, check_line_digest, check_map
from mlspec_attest.log.scan import Line, RecordScanner, Scanned, iter_lines

ZERO = bytes(32)


class LineState(StrEnum):
    OK = "ok"
    DIFFERS = "differs"
    MISSING = "missing"
    PARTIAL = "partial"  # the last line, without its newline


@dataclass
class Entry:
    """One record as the exact reading saw it."""

    position: int
    leaf: bytes
    seq: int | None = None
    request_id: str | None = None
    prev: bytes | None = None
    problem: str | None = None  # why the record is not a valid record
    line: LineState = LineState.MISSING


@dataclass
class Start:
    """Where reading begins: a count of records already verified, and their state."""

    position: int = 0
    offset: int = 0
    line_offset: int = 0
    tree: CompactRange = field(default_factory=CompactRange)
    prev: bytes = ZERO


@dataclass
class ExactScan:
    """The result of reading the log exactly from a :class:`Start`."""

    start: Start
    entries: list[Entry] = field(default_factory=list)
    roots: dict[int, bytes] = field(default_factory=dict)  # checkpoint size -> our root
    torn: int = 0  # bytes of a partial record at the end
    records_end: int = 0  # offset after the last whole item
    line_ids: dict[int, str] = field(default_factory=dict)  # seq -> request id, from lines
    extra_lines: list[tuple[int | None, str | None]] = field(default_factory=list)
    lines_end: int = 0  # offset after the last complete line that has its record
    lines_complete: int = 0  # records (from position 0) followed by a complete line
    tree: CompactRange = field(default_factory=CompactRange)
    last_offset: int | None = None  # where the last record read starts

    @property
    def last_leaf(self) -> bytes:
        return self.entries[-1].leaf if self.entries else self.start.prev

    @property
    def count(self) -> int:
        """Records read in all, counting those verified before the start."""
        return self.start.position + len(self.entries)


def scan_exact(directory: Path, sizes: set[int], start: Start | None = None) -> ExactScan:
    """Read ``directory``'s records and lines exactly from ``start``; remember the tree's
    root at every size in ``sizes``."""
    start = start or Start()
    scan = ExactScan(start, tree=start.tree.copy(), records_end=start.offset)
    scanner = RecordScanner(directory / RECORDS, start.offset)
    lines = iter_lines(directory / ACCESS_LOG, start.line_offset)
    scan.lines_end, scan.lines_complete = start.line_offset, start.position
    for item in scanner:
        entry, rendered = _entry(start.position + len(scan.entries), item)
        _compare_line(scan, entry, next(lines, None), rendered)
        scan.entries.append(entry)
        scan.last_offset = item.offset
        scan.tree.append(entry.leaf)
        if scan.tree.size in sizes:
            scan.roots[scan.tree.size] = scan.tree.root()
    scan.torn, scan.records_end = scanner.torn, scanner.end
    for line in lines:
        seq, rid = _ids(line.data)
        scan.extra_lines.append((seq, rid))
        if seq is not None and rid is not None:
            scan.line_ids.setdefault(seq, rid)
    return scan


def _entry(position: int, item: Scanned) -> tuple[Entry, bytes | None]:
    """The entry of one scanned item, and its rendered line if it is a valid record."""
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
        check_map(value, what=what)
        return entry, check_line_digest(value, what=what).encode()
    except RecordError as exc:
        entry.problem = exc.message
        return entry, None


def _compare_line(scan: ExactScan, entry: Entry, line: Line | None, rendered: bytes | None) -> None:
    if line is None:
        return
    seq, rid = _ids(line.data)
    if seq is not None and rid is not None:
        scan.line_ids.setdefault(seq, rid)
    if entry.request_id is None and rid is not None:
        entry.request_id = rid  # an unreadable record named by its line
    if not line.complete:
        entry.line = LineState.PARTIAL
        return
    scan.lines_end = line.offset + len(line.data) + 1
    scan.lines_complete += 1
    entry.line = LineState.OK if line.data == rendered else LineState.DIFFERS


def _ids(line: bytes) -> tuple[int | None, str | None]:
    """The ``seq`` and ``rid`` extensions of a line (rid still escaped), if readable."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        return None, None
    seq = extension(text, "seq")
    rid = extension(text, "rid")
    return (int(seq) if seq is not None and seq.isdigit() and len(seq) < 20 else None), rid
