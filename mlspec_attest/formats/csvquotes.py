"""Does a CSV byte stream keep the quoting rules of Python's ``csv`` module (``strict``)?

The one tabular reader (:mod:`mlspec_attest.formats.tabular`) reads CSV with
``csv.reader(strict=True)``, which refuses two things Arrow's CSV parser
accepts: a closing quote followed by anything but the delimiter or the end of
the line (``"x"y``, which Arrow reads as ``xy``), and a quoted field still open
at the end of the file. Everything else both read alike, so the Arrow path
(:mod:`mlspec_attest.digest.rows_arrow`) hands the bytes it reads to a
:class:`QuoteCheck`; when the check fails the reference reader reads the file
and reports the error it always did.

Only the quote characters matter. A maximal run of ``r`` quotes either opens
a field (it follows a delimiter, a line break or the start of the file, outside
a quoted field), continues one (``""`` is a quote inside it), closes one, or is
text inside an unquoted field. Per run the state changes by one of three
functions (toggle, keep, leave the quoted field), so the state before every
run is a prefix sum, computed with pyarrow.compute a chunk at a time.
"""

from __future__ import annotations

from typing import Any

from mlspec_attest.errors import require

_QUOTE = ord('"')
_CR, _LF = 13, 10
_BOM = b"\xef\xbb\xbf"
_START = -1  # "the byte before" the first byte of the file: a field starts there


class QuoteCheck:
    """Feed it every byte of a CSV file in order; :attr:`ok` says whether Python accepts
    its quoting. ``delimiter`` is one ASCII character."""

    def __init__(self, delimiter: str) -> None:
        self._pa = require("pyarrow", "reading data files through Arrow")
        self._pc = require("pyarrow.compute", "reading data files through Arrow")
        self._boundaries = (ord(delimiter), _CR, _LF)
        self._quoted = 0
        self._prev = _START
        self._pending = b""
        self._head: bytes | None = b""  # the first bytes, until the BOM question is settled
        self.ok = True
        self.finished = False

    def feed(self, chunk: bytes) -> None:
        if not self.ok or not chunk:
            return
        if self._head is not None:
            self._head += chunk
            if len(self._head) < len(_BOM) and _BOM.startswith(self._head):
                return
            chunk, self._head = self._head.removeprefix(_BOM), None
        data = self._pending + chunk
        if b'"' not in data:
            self._pending = b""
            self._prev = data[-1] if data else self._prev
            return
        body = data.rstrip(b'"')  # a run at the end may go on in the next chunk
        self._pending = data[len(body) :]
        if b'"' in body:
            self._scan(body, final=False)
        if body:
            self._prev = body[-1]

    def finish(self) -> bool:
        """The end of the file: the last run, and no quoted field left open."""
        if self._head is not None:
            head, self._head = self._head.removeprefix(_BOM), None
            self._pending += head
        if self.ok and self._pending:
            self._scan(self._pending, final=True)
        self._pending = b""
        self.ok = self.ok and not self._quoted
        self.finished = True
        return self.ok

    def _is_boundary(self, values: Any) -> Any:
        pc = self._pc
        hits = [pc.equal(values, b) for b in self._boundaries]
        return pc.or_(pc.or_(hits[0], hits[1]), hits[2])

    def _scan(self, data: bytes, *, final: bool) -> None:
        pa, pc = self._pa, self._pc
        size = len(data)
        raw = pa.Array.from_buffers(pa.uint8(), size, [None, pa.py_buffer(data)])
        positions = pc.indices_nonzero(pc.equal(raw, _QUOTE)).cast(pa.int64())
        steps = pc.fill_null(pc.pairwise_diff(positions), 0)
        first = pc.indices_nonzero(pc.not_equal(steps, 1))  # index of each run's first quote
        starts = pc.take(positions, first)
        bounds = pa.concat_arrays([first.cast(pa.int64()), pa.array([len(positions)], pa.int64())])
        lengths = pc.pairwise_diff(bounds).slice(1)
        ends = pc.add(starts, lengths)
        before = pc.take(raw, pc.max_element_wise(pc.subtract(starts, 1), 0)).cast(pa.int64())
        if starts[0].as_py() == 0:
            before = pc.if_else(pc.equal(starts, 0), self._prev, before)
        after_index = pc.min_element_wise(ends, size - 1)
        after = pc.take(raw, after_index).cast(pa.int64())
        opens = pc.or_(self._is_boundary(before), pc.equal(before, _START))
        closes = self._is_boundary(after)
        if final:
            closes = pc.or_(closes, pc.equal(ends, size))
        odd = pc.equal(pc.bit_wise_and(lengths, 1), 1)
        self._apply(opens, closes, odd)

    def _apply(self, opens: Any, closes: Any, odd: Any) -> None:
        """State before each run; a close not followed by a boundary is an error."""
        pa, pc = self._pa, self._pc
        toggles = pc.and_(odd, opens).cast(pa.int64())
        leaves = pc.and_(odd, pc.invert(opens))  # in a quoted field it closes, else text
        total = pc.cumulative_sum(toggles)
        before = pc.subtract(total, toggles)
        index = pc.subtract(pc.cumulative_sum(pc.if_else(odd, 1, 1)), 1)
        last_leave = pc.cumulative_max(pc.if_else(leaves, index, -1))
        previous_leave = pa.concat_arrays(
            [pa.array([-1], pa.int64()), last_leave.slice(0, len(last_leave) - 1)]
        )
        quoted = pc.bit_wise_and(self._since(before, total, previous_leave), 1)
        inside = pc.equal(quoted, 1)
        bad_close = pc.and_(pc.and_(inside, odd), pc.invert(closes))
        empty_field = pc.and_(pc.and_(pc.invert(inside), pc.invert(odd)), opens)
        bad_empty = pc.and_(empty_field, pc.invert(closes))
        if pc.any(pc.or_(bad_close, bad_empty)).as_py():
            self.ok = False
            return
        end = self._since(total.slice(len(total) - 1), total, last_leave.slice(len(last_leave) - 1))
        self._quoted = end[0].as_py() & 1

    def _since(self, counts: Any, total: Any, leave: Any) -> Any:
        """Toggles counted from the last leave (or from the chunk's start state)."""
        pc = self._pc
        base = pc.take(total, pc.max_element_wise(leave, 0))
        base = pc.if_else(pc.greater_equal(leave, 0), base, -self._quoted)
        return pc.subtract(counts, base)


__all__ = ["QuoteCheck"]
