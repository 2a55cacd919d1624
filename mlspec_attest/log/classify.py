"""Naming what happened to a log, from its exact reading (:mod:`.exact`).

The rules, in the order they are applied:

1. A record that does not decode, breaks the record grammar, or whose ``nl`` is not the
   digest of its own line is **edited** (its bytes changed).
2. Sequence numbers: a seq seen before is **inserted**; records out of seq order (all but
   a longest increasing run) are **reordered**; seqs missing below the highest one
   are **deleted** (named as ranges, request ids taken from ``access.log`` if it has them).
3. The prev chain: a record whose ``pv`` is not the previous record's leaf hash, where
   no finding above explains it, names the previous record as **edited** (or the record
   itself when the next one breaks too: its own ``pv`` was changed).
4. Signed checkpoints: a root that differs from the tree's, unexplained, is an
   **edited** range (the last record of the file when the chain is intact); records
   fewer than a checkpoint signed are **truncated-signed**.
5. After the last signed checkpoint: whole records are the **unsigned-tail**, a partial
   record the **torn-tail** of a crash; so is a missing or partial last line, if its
   record is not signed (the writer syncs both files before it signs: no crash leaves a
   signed record without its whole line).
6. A line that is not its record's rendering, or any line beyond one per record (a
   repeated seq, none, one too long, a partial last line that is not the last record's),
   is an **access-log-mismatch**; lines beyond the last record tell of **deleted** records.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from mlspec_attest.log.checkpoint import Checkpoint
from mlspec_attest.log.exact import Entry, ExactScan, LineState
from mlspec_attest.log.findings import Finding, Kind

MAX_PER_KIND = 50


def classify(scan: ExactScan, checkpoints: Iterable[Checkpoint]) -> list[Finding]:
    """Every finding of ``scan`` against the verified ``checkpoints``."""
    signed = sorted(checkpoints, key=lambda c: c.size)
    out: list[Finding] = []
    flagged: set[int] = set()  # positions with a record-level finding
    _invalid(scan, out, flagged)
    seqs = _seqs(scan)
    gaps = _structure(scan, seqs, out, flagged)
    chain_breaks = _chain(scan, flagged, gaps, out)
    _roots(scan, signed, flagged, gaps, chain_breaks, out)
    top = signed[-1].size if signed else 0
    structural = any(f.kind in (Kind.DELETED, Kind.INSERTED, Kind.REORDERED) for f in out)
    _truncation(scan, seqs, top, out)
    _tail(scan, top, out)
    _access_log(scan, flagged, structural, top, out)
    return _capped(out, {Kind.ACCESS_LOG_MISMATCH: scan.lines.extra_more})


def _invalid(scan: ExactScan, out: list[Finding], flagged: set[int]) -> None:
    for e in scan.entries:
        if e.problem is not None:
            seq = e.seq if e.seq is not None else e.position
            out.append(Finding(Kind.EDITED, e.problem, seq, e.request_id))
            flagged.add(e.position)


def _seqs(scan: ExactScan) -> list[int]:
    """The seq of every entry (its position when the record is unreadable)."""
    return [e.seq if e.seq is not None else e.position for e in scan.entries]


def _structure(scan: ExactScan, seqs: list[int], out: list[Finding], flagged: set[int]) -> set[int]:
    """Inserted, reordered and deleted records; returns the positions right after a gap."""
    base, entries = scan.start.position, scan.entries
    seen: dict[int, int] = {}
    unique: list[int] = []  # indexes into entries of first occurrences
    for i, seq in enumerate(seqs):
        if seq < base or seq in seen:
            first = seq if seq < base else seen[seq]
            e = entries[i]
            out.append(
                Finding(
                    Kind.INSERTED,
                    f"a second record with seq {seq} at position {e.position} "
                    f"(the first is at position {first})",
                    seq,
                    e.request_id,
                )
            )
            flagged.add(e.position)
        else:
            seen[seq] = entries[i].position
            unique.append(i)
    keep = _longest_increasing([seqs[i] for i in unique])
    for rank, i in enumerate(unique):
        if rank not in keep:
            e = entries[i]
            out.append(
                Finding(
                    Kind.REORDERED,
                    f"the record with seq {seqs[i]} is at position {e.position}, out of order",
                    seqs[i],
                    e.request_id,
                )
            )
            flagged.add(e.position)
    return _gaps(scan, seen, out)


def _gaps(scan: ExactScan, seen: dict[int, int], out: list[Finding]) -> set[int]:
    after: set[int] = set()
    if not seen:
        return after
    present = sorted(seen)
    expected = scan.start.position
    for seq in present:
        if seq > expected:
            rid = scan.line_ids.get(expected)
            out.append(
                Finding(
                    Kind.DELETED,
                    f"records seq {expected}..{seq - 1} are missing: the stream goes on "
                    f"at seq {seq}",
                    expected,
                    rid,
                    last_seq=seq - 1,
                )
            )
            after.add(seen[seq])
        expected = max(expected, seq + 1)
    return after


def _longest_increasing(values: list[int]) -> set[int]:
    """Indexes of one longest strictly increasing subsequence of ``values``."""
    tails: list[int] = []  # values
    tail_at: list[int] = []  # their indexes
    parent = [-1] * len(values)
    for i, v in enumerate(values):
        k = bisect.bisect_left(tails, v)
        if k == len(tails):
            tails.append(v)
            tail_at.append(i)
        else:
            tails[k], tail_at[k] = v, i
        parent[i] = tail_at[k - 1] if k else -1
    keep: set[int] = set()
    i = tail_at[-1] if tail_at else -1
    while i >= 0:
        keep.add(i)
        i = parent[i]
    return keep


def _chain(scan: ExactScan, flagged: set[int], gaps: set[int], out: list[Finding]) -> list[int]:
    """Edited records shown by the prev chain; returns every position whose prev breaks."""
    entries, base = scan.entries, scan.start.position
    breaks: list[int] = []
    expected = scan.start.prev
    for e in entries:
        if e.prev is not None and e.prev != expected:
            breaks.append(e.position)
        expected = e.leaf
    explained = flagged | gaps
    loose = [
        p for p in breaks if p not in explained and p - 1 not in explained and not _jump(scan, p)
    ]
    i = 0
    while i < len(loose):
        p = loose[i]
        own = i + 1 < len(loose) and loose[i + 1] == p + 1
        culprit = p if own or p == base else p - 1
        i += 2 if own else 1
        e = entries[culprit - base]
        if culprit == p:
            why = "its prev field does not chain to the record before it"
        elif p == base + len(entries) - 1:
            why = (
                "its bytes changed (the next, last record's prev is not its hash), or that prev was"
            )
        else:
            why = "its bytes changed: the next record's prev is not its hash"
        out.append(
            Finding(Kind.EDITED, f"the record at position {culprit}: {why}", _seq(e), e.request_id)
        )
        flagged.add(culprit)
    return breaks


def _jump(scan: ExactScan, position: int) -> bool:
    """Do the records at ``position - 1`` and ``position`` have other than consecutive seqs
    (a deletion, insertion or move, which breaks the chain there by itself)?"""
    base, entries = scan.start.position, scan.entries
    seq = entries[position - base].seq
    before = entries[position - base - 1].seq if position > base else base - 1
    return seq is None or before is None or seq != before + 1


def _seq(e: Entry) -> int:
    return e.seq if e.seq is not None else e.position


def _roots(
    scan: ExactScan,
    signed: list[Checkpoint],
    flagged: set[int],
    gaps: set[int],
    breaks: list[int],
    out: list[Finding],
) -> None:
    base, last_good = scan.start.position, scan.start.position
    marks = sorted(flagged | gaps)
    for c in signed:
        if c.size <= base or c.size > scan.count:
            continue
        if scan.roots.get(c.size) == c.root:
            last_good = c.size
            continue
        if marks and marks[0] < c.size:
            continue  # already named above
        last = scan.count - 1
        if not breaks and last_good <= last < c.size:
            e = scan.entries[last - base]
            message = (
                f"the last record differs from what checkpoint {c.size} signed (no later "
                "record chains to it)"
            )
            out.append(Finding(Kind.EDITED, message, _seq(e), e.request_id))
            flagged.add(last)
        else:
            message = f"records in seq {last_good}..{c.size - 1} differ from what checkpoint {c.size} signed"
            out.append(
                Finding(Kind.EDITED, message, last_good, scan.line_ids.get(last_good), c.size - 1)
            )
            flagged.add(last_good)
        return


def _truncation(scan: ExactScan, seqs: list[int], top: int, out: list[Finding]) -> None:
    highest = max(seqs, default=scan.start.position - 1)
    if highest + 1 >= top:
        return  # records missing below the highest seq are "deleted"
    first = highest + 1
    torn = f" (and a partial record of {scan.torn} bytes)" if scan.torn else ""
    message = (
        f"a signed checkpoint covers {top} records, but records.cbor ends at seq "
        f"{first - 1}{torn}: signed records seq {first}..{top - 1} were removed"
    )
    out.append(Finding(Kind.TRUNCATED_SIGNED, message, first, scan.line_ids.get(first), top - 1))


def _tail(scan: ExactScan, top: int, out: list[Finding]) -> None:
    tail = [e for e in scan.entries if e.seq is not None and e.seq >= top and e.problem is None]
    if tail:
        first, last = _seq(tail[0]), _seq(tail[-1])
        out.append(
            Finding(
                Kind.UNSIGNED_TAIL,
                f"{len(tail)} records after the last signed checkpoint (size {top}) are not "
                "covered by a signature yet",
                first,
                tail[0].request_id,
                last,
            )
        )
    if scan.torn and scan.count >= top:
        message = (
            f"a partial record of {scan.torn} bytes at offset {scan.records_end} "
            "(a crash cut the last write short)"
        )
        out.append(Finding(Kind.TORN_TAIL, message, scan.count, scan.line_ids.get(scan.count)))


def _access_log(
    scan: ExactScan, flagged: set[int], structural: bool, top: int, out: list[Finding]
) -> None:
    entries = scan.entries
    absent = [e for e in entries if e.line in (LineState.MISSING, LineState.PARTIAL)]
    if _torn_lines(scan, absent, top):
        e = absent[0]
        state = "partial" if e.line is LineState.PARTIAL else "missing"
        which = f"the last {len(absent)} records" if absent[1:] else "the last record"
        message = (
            f"the access.log line of {which} is {state}"
            + (", the others' missing" if absent[1:] and state == "partial" else "")
            + " (a crash between writing records and their lines)"
        )
        out.append(Finding(Kind.TORN_TAIL, message, _seq(e), e.request_id))
    elif absent:
        e = absent[0]
        which = f"{len(absent)} records, from seq {_seq(e)}" if absent[1:] else f"seq {_seq(e)}"
        message = f"access.log has no whole line for {which}"
        if e.position < top:  # no crash does that: the writer syncs both files, then signs
            message += " (a signed record: its line was on disk before the checkpoint was signed)"
        out.append(Finding(Kind.ACCESS_LOG_MISMATCH, message, _seq(e), e.request_id))
    last = -1  # lines must come in the records' order
    for e in entries:
        if e.position in flagged:
            continue
        if e.line is LineState.DIFFERS:
            message = f"the access.log line of seq {_seq(e)} is not the rendering of its record"
            out.append(Finding(Kind.ACCESS_LOG_MISMATCH, message, _seq(e), e.request_id))
        elif e.line_index is not None:
            if e.line_index < last and not structural:
                message = f"the access.log line of seq {_seq(e)} is out of order (line {e.line_index + 1})"
                out.append(Finding(Kind.ACCESS_LOG_MISMATCH, message, _seq(e), e.request_id))
            last = max(last, e.line_index)
    _extra_lines(scan, top, out)


def _torn_lines(scan: ExactScan, absent: list[Entry], top: int) -> bool:
    """Are the records without their whole line the last ones, none signed, every line
    before theirs present, only the first of them with a part of its line: what a crash
    between writing a group's records and their lines leaves?"""
    tail = scan.entries[-len(absent) :] if absent else []
    if not absent or any(a is not b for a, b in zip(absent, tail, strict=True)):
        return False
    if any(e.line is LineState.PARTIAL for e in absent[1:]):
        return False
    return absent[0].position >= top and scan.lines.complete == scan.count - len(absent)


def _extra_lines(scan: ExactScan, top: int, out: list[Finding]) -> None:
    lines = scan.lines
    for seq, rid, message in lines.extra:
        out.append(Finding(Kind.ACCESS_LOG_MISMATCH, message, seq, rid))
    orphans = sorted(s for s in lines.by_seq if s >= scan.count)
    if not orphans or (top > scan.count and orphans[-1] < top):
        return  # none, or the truncated-signed finding names them
    first, last = orphans[0], orphans[-1]
    message = (
        f"access.log has lines for seq {first}..{last} after the last record: their "
        "records were removed from records.cbor"
    )
    out.append(
        Finding(Kind.DELETED, message, first, lines.ids.get(first), last if last != first else None)
    )


def _capped(findings: list[Finding], uncounted: dict[Kind, int]) -> list[Finding]:
    """At most :data:`MAX_PER_KIND` findings of one kind, then one that counts the rest
    (``uncounted``: findings of a kind that were only counted, never made)."""
    counts: dict[Kind, int] = {}
    out: list[Finding] = []
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
        if counts[f.kind] <= MAX_PER_KIND:
            out.append(f)
    for kind, more in uncounted.items():
        counts[kind] = counts.get(kind, 0) + more
    for kind, n in counts.items():
        if n > MAX_PER_KIND:
            out.append(Finding(kind, f"and {n - MAX_PER_KIND} more findings of this kind"))
    return out
