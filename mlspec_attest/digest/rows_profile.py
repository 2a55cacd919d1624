"""What one pass of the row engine learns about a dataset: :class:`Profile`.

The constant columns (one value in every row, null counting as a value) are
tracked row by row for rows the reference engine read, and a batch at a time for
rows read through Arrow (:class:`~mlspec_attest.digest.rows_arrow.Batch`): a
column stays constant when every pair in the batch is the first row's pair and,
for an integer-looking pair, every value is of the first value's type (the
reference tells the integer 7 from the double 7.0, which also reads ``7``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from msgspec import Struct

from mlspec_attest.digest.rows_arrow import Batch
from mlspec_attest.formats.jsonio import canonical_value
from mlspec_attest.formats.rowarrow import arrow, python_values
from mlspec_attest.formats.rowform import encode_row


class Profile(Struct, frozen=True):
    """What one pass over a dataset learnt: rows, data files, columns, constant columns.

    ``constant`` are the columns that hold one value (null counting as a value)
    in every row; empty when the dataset has fewer than two rows, where "one
    value" says nothing.
    """

    rows: int
    files: int
    columns: frozenset[str]
    constant: frozenset[str]


_ABSENT = object()
_INTEGER_TOKEN = re.compile(rb"-?[0-9]+\]")


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list | dict):
        return bool(canonical_value(a) == canonical_value(b))
    return bool(a == b)


class ConstantTracker:
    """Which columns keep the value they had in the first row (absent = null)."""

    def __init__(self) -> None:
        self.first: dict[str, Any] | None = None
        self.candidates: set[str] = set()

    def update(self, row: Mapping[str, Any], columns: set[str]) -> None:
        if self.first is None:
            self.first = dict(row)
            self.candidates = set(columns)
            return
        if not self.candidates:
            return
        first = self.first
        for name in [
            c for c in self.candidates if not _same(row.get(c, _ABSENT), first.get(c, _ABSENT))
        ]:
            self.candidates.discard(name)

    def after(self, batch: Batch, columns: set[str]) -> tuple[dict[str, Any] | None, set[str]]:
        """The state after ``batch`` (not applied: see :meth:`apply`)."""
        first, candidates = self.first, self.candidates
        if first is None:
            if not batch.rows:
                return None, candidates
            first = batch.first_row()
            candidates = columns | set(batch.first_keys())
        kept = {c for c in candidates if _stays(batch, c, first.get(c, _ABSENT))}
        return first, kept

    def apply(self, state: tuple[dict[str, Any] | None, set[str]]) -> None:
        self.first, self.candidates = state

    def constant(self, columns: set[str], rows: int) -> frozenset[str]:
        # A column first seen after the first row was absent there: it varies.
        return frozenset(self.candidates & columns) if rows >= 2 else frozenset()


def _stays(batch: Batch, name: str, value: Any) -> bool:
    """Whether every row of ``batch`` holds ``value`` (``_ABSENT``: null) in ``name``."""
    _, pc = arrow()
    column = batch.column(name)
    if value is _ABSENT:
        return column is None or column.pairs.null_count == batch.rows
    if column is None or column.pairs.null_count:
        return False
    expected = b"," + encode_row({name: value}, "row")[0][1]
    if not pc.all(pc.equal(column.pairs, expected.decode("utf-8"))).as_py():
        return False
    if type(value) is int and column.ambiguous is not None and pc.any(column.ambiguous).as_py():
        cells = python_values(column, pc.indices_nonzero(column.ambiguous))
        return all(type(cell) is int for cell in cells)
    if type(value) is float and _INTEGER_TOKEN.fullmatch(expected, expected.rfind(b",") + 1):
        every = pc.indices_nonzero(pc.is_valid(column.pairs))
        return all(type(cell) is float for cell in python_values(column, every))
    return True


__all__ = ["ConstantTracker", "Profile"]
