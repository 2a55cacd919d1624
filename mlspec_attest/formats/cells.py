"""Rows of cells, as analysis, data schemas and metrics read a data file (:class:`TabularReader`).

Cells keep their source typing. CSV cells are text (``str``) and their kind is
decided lexically (``"12"`` is an integer, ``"1.5"`` a number, ``"true"`` a
boolean); JSON Lines and Parquet cells keep their type (``"12"`` is a string there).
A text cell is missing when it is one of :data:`MISSING_TOKENS`; a JSON Lines
cell is missing when it is ``null`` or the key is absent. Missing cells are
``None``. (Row identity, :mod:`mlspec_attest.formats.rowform`, has its own rule:
only empty text is null there, see docs/data.md.)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Final

from mlspec_attest.errors import BadInputError
from mlspec_attest.formats.limits import MAX_SAFE_INTEGER
from mlspec_attest.formats.rowform import JsonNumber, canonical_name
from mlspec_attest.formats.tabular import (
    DELIMITERS,
    ClosedOnExit,
    DelimitedRecords,
    JsonLines,
    TextSource,
    detect_format,
)

Cell = str | int | float | bool | None
"""One cell: CSV text, a JSON scalar, or None when missing."""

MISSING_TOKENS: Final = frozenset({"", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None"})
"""CSV cells read as missing (the common spellings of pandas, R and SQL exports)."""


MAX_TEXT: Final = 256
"""Longest cell text copied into a report (violations, top values)."""

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLEANS: Final = {"true": True, "false": False, "True": True, "False": False}
_BOOLEANS_UPPER: Final = {"TRUE": True, "FALSE": False}


class ValueKind(StrEnum):
    """The kind of one non-missing cell (also the data-schema column types)."""

    BOOLEAN = "boolean"
    INTEGER = "integer"
    NUMBER = "number"
    STRING = "string"


def kind_of(cell: str | int | float | bool, *, text_cells: bool) -> ValueKind:
    """Classify a non-missing cell. ``text_cells`` says the cell is CSV text."""
    if isinstance(cell, bool):
        return ValueKind.BOOLEAN
    if isinstance(cell, int):
        return ValueKind.INTEGER
    if isinstance(cell, float):
        return ValueKind.NUMBER
    if not text_cells:
        return ValueKind.STRING
    if _INTEGER.fullmatch(cell):
        return ValueKind.INTEGER
    if _DECIMAL.fullmatch(cell):
        # "1e999" parses to infinity: not a usable number, so it stays text.
        return ValueKind.NUMBER if math.isfinite(float(cell)) else ValueKind.STRING
    if cell in _BOOLEANS or cell in _BOOLEANS_UPPER:
        return ValueKind.BOOLEAN
    return ValueKind.STRING


def is_numeric(cell: str | int | float | bool, *, text_cells: bool) -> bool:
    """Whether a non-missing cell is an integer or a finite number (fast path of :func:`kind_of`)."""
    if isinstance(cell, str):
        if not text_cells or _DECIMAL.fullmatch(cell) is None:
            return False
        return math.isfinite(float(cell)) if ("e" in cell or "E" in cell) else True
    return not isinstance(cell, bool)


def as_number(cell: str | int | float | bool, kind: ValueKind) -> float | None:
    """The finite float value of an integer or number cell, else None."""
    if kind is ValueKind.INTEGER or kind is ValueKind.NUMBER:
        value = float(cell)
        return value if math.isfinite(value) else None
    return None


def as_integer(cell: str | int | float | bool) -> int:
    """The exact integer value of a cell classified as INTEGER."""
    return int(cell)


def as_boolean(cell: str | int | float | bool) -> bool:
    """The value of a cell classified as BOOLEAN."""
    if isinstance(cell, bool):
        return cell
    return _BOOLEANS.get(str(cell), _BOOLEANS_UPPER.get(str(cell), False))


def as_text(cell: str | int | float | bool) -> str:
    """The text of a cell: CSV text as is, JSON scalars in their JSON spelling."""
    if isinstance(cell, str):
        return cell
    return json.dumps(cell)


def clip_text(text: str) -> str:
    """``text`` shortened to :data:`MAX_TEXT` characters for a report."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


# --- rows of cells -------------------------------------------------------------
def _json_number(text: str, where: str) -> int | float:
    """A JSON number of a data row: it must be exact as a double (I-JSON), like any JSON we read."""
    if not ("." in text or "e" in text or "E" in text):
        if len(text.lstrip("-")) <= 16 and abs(value := int(text)) <= MAX_SAFE_INTEGER:
            return value
        raise BadInputError(
            f"{where}: integer {clip_text(text)} is outside the interoperable range ±(2^53−1) "
            "(I-JSON, RFC 7493); write it as a string"
        )
    number = float(text)
    if math.isinf(number):
        raise BadInputError(f"{where}: number {clip_text(text)} is out of range")
    return number


class TabularReader(ClosedOnExit):
    """Iterate the rows of one data file as ``{column: cell}`` dicts, streaming.

    Read by the one reader (:mod:`mlspec_attest.formats.tabular`). Use as a
    context manager. ``columns`` is the CSV header, or for JSON Lines every key
    seen so far in order of first appearance. Row numbers are 0-based data rows
    (the CSV header is not a row); ``line`` is the file line of the current row.
    Parquet is refused: its cells have types these readers do not describe.
    """

    def __init__(self, path: Path, *, limit: int | None = None) -> None:
        self.path = path
        self.format = detect_format(path)
        if self.format == "parquet":
            raise BadInputError(
                f"{path}: Parquet is read for row digests (leakage, sign) only",
                remedy="export the data as CSV or JSON Lines to analyze or validate it",
            )
        self.text_cells = self.format in DELIMITERS
        self.limit = limit
        self.columns: list[str] = []
        self.rows_read = 0
        self._canonical: dict[str, str] = {}
        self._known: set[str] = set()
        self._source = TextSource(path, hashing=True)
        self._records: DelimitedRecords | JsonLines
        try:
            if self.text_cells:
                self._records = DelimitedRecords(self._source, DELIMITERS[self.format])
                self.columns = list(self._records.header)
            else:
                self._records = JsonLines(self._source)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._source.close()

    @property
    def sha256(self) -> str | None:
        """Hex sha256 of the file bytes, once the file has been read to the end."""
        return self._source.sha256

    @property
    def line(self) -> int:
        return self._records.line

    def __iter__(self) -> Iterator[dict[str, Cell]]:
        rows = self._text_rows() if self.text_cells else self._json_rows()
        # Check the limit before pulling a row, so a JSON Lines row past the
        # limit never adds its keys to ``columns``.
        while self.limit is None or self.rows_read < self.limit:
            row = next(rows, None)
            if row is None:
                self._source.finish()
                return
            yield row
            self.rows_read += 1

    def _text_rows(self) -> Iterator[dict[str, Cell]]:
        assert isinstance(self._records, DelimitedRecords)
        header = self.columns
        for fields in self._records:
            yield {
                name: (None if value in MISSING_TOKENS else value)
                for name, value in zip(header, fields, strict=True)
            }

    def _json_rows(self) -> Iterator[dict[str, Cell]]:
        assert isinstance(self._records, JsonLines)
        for record in self._records:
            where = f"{self.path}:{self.line}"
            row: dict[str, Cell] = {}
            for key, value in record.items():
                if key not in self._known:
                    self._new_column(key, where)
                if isinstance(value, JsonNumber):
                    value = _json_number(value.text, where)
                elif isinstance(value, dict | list):
                    raise BadInputError(
                        f"{where}: data row {self.rows_read}: column {key!r} holds a nested "
                        f"{type(value).__name__}",
                        remedy="flatten nested fields into scalar columns",
                    )
                row[key] = value
            yield row

    def _new_column(self, key: str, where: str) -> None:
        name = canonical_name(key)
        if name in self._canonical:
            raise BadInputError(
                f"{where}: column {name!r} appears twice (as {key!r} and "
                f"{self._canonical[name]!r}, after removing case, padding and invisible characters)"
            )
        self._canonical[name] = key
        self._known.add(key)
        self.columns.append(key)


def read_columns(path: Path) -> list[str]:
    """The column names of a data file (JSON Lines: every key, which reads the whole file)."""
    with TabularReader(path) as reader:
        if reader.text_cells:
            return list(reader.columns)
        for _row in reader:
            pass
        return list(reader.columns)
