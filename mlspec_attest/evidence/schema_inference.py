"""Inferring a first data schema from the leading rows of a dataset (``schema infer``).

The seed's ``select * from foo limit 30``: each column gets the narrowest type
that fits the sample, ``nullable`` when a value was missing, bounds or a small
value set. The result is a :mod:`mlspec_attest.evidence.schema_document` to review.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from msgspec import Struct, field

from mlspec_attest.errors import UsageError
from mlspec_attest.evidence.schema_document import (
    API_VERSION,
    DATA_SCHEMA_KIND,
    check_data_schema,
)
from mlspec_attest.formats.cells import (
    Cell,
    TabularReader,
    ValueKind,
    as_integer,
    as_text,
    kind_of,
)
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.limits import MAX_SAFE_INTEGER
from mlspec_attest.formats.stages import check_name

MAX_ENUM: Final = 10
"""Inference lists the allowed values of integer and string columns with at most this many."""
SAFE_INTEGER: Final = MAX_SAFE_INTEGER
"""Largest integer every JSON parser (and RFC 8785) represents exactly."""

_LABEL_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_VERSION_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
_LABEL_REMEDY: Final = "use letters, digits and . _ - (starting with a letter or digit)"


def _column_type(kinds: set[ValueKind]) -> str:
    if not kinds:
        return "string"
    if kinds == {ValueKind.INTEGER}:
        return "integer"
    if kinds <= {ValueKind.INTEGER, ValueKind.NUMBER}:
        return "number"
    if kinds == {ValueKind.BOOLEAN}:
        return "boolean"
    return "string"


class _ColumnSample(Struct):
    kinds: set[ValueKind] = field(default_factory=set)
    missing: int = 0
    present: int = 0
    low: float | int | None = None
    high: float | int | None = None
    distinct: set[str] = field(default_factory=set)

    def observe_bound(self, value: float | int) -> None:
        self.low = value if self.low is None or value < self.low else self.low
        self.high = value if self.high is None or value > self.high else self.high

    def observe(self, cell: Cell, text_cells: bool) -> None:
        """Count one cell of the column."""
        if cell is None:
            self.missing += 1
            return
        self.present += 1
        kind = kind_of(cell, text_cells=text_cells)
        self.kinds.add(kind)
        if kind is ValueKind.INTEGER:
            self.observe_bound(as_integer(cell))
        elif kind is ValueKind.NUMBER:
            self.observe_bound(float(cell))
        if len(self.distinct) <= MAX_ENUM:
            self.distinct.add(as_text(cell))

    def describe(self, column: str, seen: int) -> dict[str, Any]:
        """The schema entry of the column, ``seen`` rows having been read."""
        # JSON Lines: a key absent from some rows is missing there.
        absent = seen - self.present - self.missing
        column_type = _column_type(self.kinds)
        entry: dict[str, Any] = {
            "name": column,
            "type": column_type,
            "nullable": self.missing + absent > 0 or self.present == 0,
        }
        enum_fits = (
            column_type in ("integer", "string")
            and 0 < len(self.distinct) <= MAX_ENUM
            and self.present >= 2 * len(self.distinct)
        )
        if enum_fits and column_type == "integer":
            entry["enum"] = sorted({int(v) for v in self.distinct})
        elif enum_fits:
            entry["enum"] = sorted(self.distinct)
        elif column_type in ("integer", "number") and self.low is not None:
            assert self.high is not None
            if column_type == "number":
                entry["min"], entry["max"] = float(self.low), float(self.high)
            elif abs(self.low) <= SAFE_INTEGER and abs(self.high) <= SAFE_INTEGER:
                entry["min"], entry["max"] = self.low, self.high
        return entry


def _sample(path: Path, rows: int) -> tuple[list[str], dict[str, _ColumnSample], int]:
    """The columns, a sample per column and the rows read, from the first ``rows`` rows."""
    samples: dict[str, _ColumnSample] = {}
    with TabularReader(path, limit=rows) as reader:
        for row in reader:
            for column, cell in row.items():
                samples.setdefault(column, _ColumnSample()).observe(cell, reader.text_cells)
        return list(reader.columns), samples, reader.rows_read


def infer_schema(path: Path, *, rows: int = 30, name: str, version: str = "1") -> dict[str, Any]:
    """A first data schema from the first ``rows`` rows of ``path``.

    Each column gets the narrowest type that fits every value seen (integer
    ⊂ number; anything mixed is a string), ``nullable`` if a value was
    missing, ``min``/``max`` for numeric columns and ``enum`` for integer
    and string columns with at most :data:`MAX_ENUM` distinct values each
    seen at least twice on average. Review it before use: bounds are those
    of the sample.
    """
    if rows < 1:
        raise UsageError(f"{named('rows')} must be at least 1, got {rows}")
    check_name(name, "schema name", _LABEL_RE, _LABEL_REMEDY)
    check_name(version, "schema version", _VERSION_RE, _LABEL_REMEDY)
    columns, samples, seen = _sample(path, rows)
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": DATA_SCHEMA_KIND,
        "name": name,
        "version": version,
        "deprecated": False,
        "inferredFrom": {"rows": seen},
        "columns": _described(columns, samples, seen),
        "additionalColumns": False,
    }
    check_data_schema(doc, source=f"schema inferred from {path}")
    return doc


def _described(
    columns: Iterable[str], samples: dict[str, _ColumnSample], seen: int
) -> list[dict[str, Any]]:
    return [samples.get(c, _ColumnSample()).describe(c, seen) for c in columns]
