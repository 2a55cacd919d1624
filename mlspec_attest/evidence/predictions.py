"""A table of predictions (``metrics compute``): the columns metrics are computed from.

Read by the one reader (:class:`~mlspec_attest.formats.cells.TabularReader`), so a
predictions file is read like any data file: CSV, TSV or JSON Lines, gzip, a
header whose names are unique, one field per header name on every row. Missing
cells (:data:`~mlspec_attest.formats.cells.MISSING_TOKENS`, JSON ``null``, an absent
key) are refused as numbers and labels: a metric over rows with no label would
silently describe fewer rows than the file has. A missing slice value is the
slice ``null``, as in the analysis report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from msgspec import Struct

from mlspec_attest.errors import BadInputError
from mlspec_attest.formats.cells import Cell, TabularReader, as_text

MISSING_SLICE = "null"
"""Slice key of rows whose slice cell is missing (the analysis report's key too)."""

_INTEGRAL_DECIMAL = re.compile(r"[+-]?[0-9]+\.0+")


def text_key(cell: str) -> str:
    """Text as a label or slice key: ``"2.0"`` -> ``"2"`` (what a float column writes)."""
    if _INTEGRAL_DECIMAL.fullmatch(cell):
        return str(int(cell.split(".", 1)[0]))
    return cell


class Predictions(Struct, frozen=True):
    """The wanted columns of a predictions file, and the file line of each row."""

    path: Path
    columns: dict[str, list[Cell]]
    lines: list[int]

    def numbers(self, column: str) -> list[float]:
        """The cells of ``column`` as finite numbers; anything else is bad input."""
        out: list[float] = []
        for cell, line in zip(self.columns[column], self.lines, strict=True):
            value = _number(cell)
            if value is None:
                shown = "a missing value" if cell is None else repr(cell)
                raise BadInputError(
                    f"{self.path} line {line}, column {column!r}: {shown} is not a finite number"
                )
            out.append(value)
        return out

    def labels(self, column: str) -> list[str]:
        """The cells of ``column`` as label text; a missing label is bad input."""
        out: list[str] = []
        for cell, line in zip(self.columns[column], self.lines, strict=True):
            if cell is None:
                raise BadInputError(
                    f"{self.path} line {line}, column {column!r}: the label is missing",
                    remedy="every row needs a true label and a prediction",
                )
            out.append(text_key(as_text(cell)))
        return out

    def slice_keys(self, column: str) -> list[str]:
        """The cells of a slice column as keys; missing cells are the slice ``null``."""
        return [MISSING_SLICE if c is None else text_key(as_text(c)) for c in self.columns[column]]


def _number(cell: Cell) -> float | None:
    if cell is None or isinstance(cell, bool):
        return None
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_predictions(path: Path, wanted: Sequence[str]) -> Predictions:
    """The ``wanted`` columns of a predictions file; every one must be there."""
    columns: dict[str, list[Cell]] = {name: [] for name in wanted}
    lines: list[int] = []
    with TabularReader(path) as reader:
        if reader.text_cells:
            _check_columns(path, reader.columns, wanted)
        for row in reader:
            lines.append(reader.line)
            for name, cells in columns.items():
                cells.append(row.get(name))
        _check_columns(path, reader.columns, wanted)
    if not lines:
        raise BadInputError(f"{path}: no data rows after the header")
    return Predictions(path, columns, lines)


def _check_columns(path: Path, header: list[str], wanted: Sequence[str]) -> None:
    for name in dict.fromkeys(wanted):
        if name not in header:
            raise BadInputError(
                f"{path}: no column {name!r}", remedy=f"the columns are: {', '.join(header)}"
            )
