"""The validation record of a dataset against a data schema, and the per-cell checks.

:class:`ValidationResult` is the ``validation/v1`` record ``validate`` writes;
:class:`ColumnRule` is one schema column; :class:`ViolationRecorder` keeps the
first :data:`MAX_VIOLATIONS` violations and counts them all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, Final

from msgspec import Struct, field

from mlspec_attest.formats.cells import (
    Cell,
    ValueKind,
    as_boolean,
    as_integer,
    as_text,
    clip_text,
    kind_of,
)

VALIDATION_SCHEMA: Final = "https://mlspec-attest.dev/validation/v1"

MAX_VIOLATIONS: Final = 1000
"""Violations kept in a result; ``violation_count`` and ``violationsByKind`` count all."""

VIOLATION_KINDS: Final = (
    "missing-column",
    "unexpected-column",
    "type",
    "null",
    "min",
    "max",
    "enum",
    "deprecated-dataset",
)


class ValidationResult(Struct, frozen=True):
    """The outcome of validating one dataset file against one data schema version."""

    schema_name: str
    schema_version: str
    deprecated: bool
    rows: int
    passed: bool
    violations: tuple[dict[str, Any], ...]
    violation_count: int
    schema_sha256: str = ""
    dataset_sha256: str | None = None
    dataset_deprecated: bool = False
    violations_by_kind: Mapping[str, int] = field(default_factory=dict)
    deprecated_datasets: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The versioned validation record (``https://mlspec-attest.dev/validation/v1``)."""
        return {
            "schemaVersion": VALIDATION_SCHEMA,
            "schema": {
                "name": self.schema_name,
                "version": self.schema_version,
                "deprecated": self.deprecated,
                "sha256": self.schema_sha256,
                # Carried so the verifier can refuse training on these datasets too.
                "deprecatedDatasets": list(self.deprecated_datasets),
            },
            "dataset": {
                "rows": self.rows,
                "sha256": self.dataset_sha256,
                "deprecated": self.dataset_deprecated,
            },
            "passed": self.passed,
            "violationCount": self.violation_count,
            "violations": [dict(v) for v in self.violations],
            "violationsTruncated": self.violation_count > len(self.violations),
            "violationsByKind": dict(sorted(self.violations_by_kind.items())),
        }


class ColumnRule(Struct, frozen=True):
    name: str
    type: str
    nullable: bool
    low: float | None
    high: float | None
    allowed: frozenset[Any] | None

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> ColumnRule:
        enum = spec.get("enum")
        return cls(
            name=spec["name"],
            type=spec["type"],
            nullable=bool(spec.get("nullable", False)),
            low=spec.get("min"),
            high=spec.get("max"),
            allowed=None if enum is None else frozenset(enum),
        )


class ViolationRecorder:
    def __init__(self) -> None:
        self.kept: list[dict[str, Any]] = []
        self.by_kind: Counter[str] = Counter()

    def add(self, row: int | None, column: str | None, kind: str, message: str, value: Any) -> None:
        self.by_kind[kind] += 1
        if len(self.kept) < MAX_VIOLATIONS:
            if isinstance(value, str):
                value = clip_text(value)
            where = f"row {row}: " if row is not None else ""
            self.kept.append(
                {
                    "row": row,
                    "column": column,
                    "kind": kind,
                    "message": where + message,
                    "value": value,
                }
            )

    @property
    def count(self) -> int:
        return self.by_kind.total()


def _typed_value(cell: str | int | float | bool, kind: ValueKind, column_type: str) -> Any | None:
    """The cell as the column's type, or None when it is not of that type."""
    if column_type == "string":
        return cell if isinstance(cell, str) else None
    if column_type == "boolean":
        return as_boolean(cell) if kind is ValueKind.BOOLEAN else None
    if kind is ValueKind.INTEGER:
        return as_integer(cell)
    if kind is ValueKind.NUMBER:
        number = float(cell)
        if column_type == "number":
            return number
        # JSON Schema semantics: 2.0 is an integer.
        return int(number) if number.is_integer() else None
    return None


def check_cell(
    rule: ColumnRule, index: int, cell: Cell, text_cells: bool, record: ViolationRecorder
) -> None:
    if cell is None:
        if not rule.nullable:
            record.add(index, rule.name, "null", f"{rule.name!r} is missing", None)
        return
    kind = kind_of(cell, text_cells=text_cells)
    # In CSV every cell is text, so any present cell is a valid string.
    value: Any = as_text(cell) if text_cells and rule.type == "string" else None
    if value is None:
        value = _typed_value(cell, kind, rule.type)
    if value is None:
        record.add(
            index, rule.name, "type", f"{rule.name!r}: expected {rule.type}, found {kind}", cell
        )
        return
    if rule.allowed is not None and value not in rule.allowed:
        record.add(index, rule.name, "enum", f"{rule.name!r}: {value!r} is not allowed", cell)
    if rule.low is not None and value < rule.low:
        record.add(index, rule.name, "min", f"{rule.name!r}: {value} < min {rule.low}", cell)
    if rule.high is not None and value > rule.high:
        record.add(index, rule.name, "max", f"{rule.name!r}: {value} > max {rule.high}", cell)
