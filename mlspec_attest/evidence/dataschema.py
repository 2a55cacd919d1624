"""Data validation (lifecycle stage 5): versioned data schemas, inference and validation.

A data schema is a small YAML or JSON document (``kind: DataSchema``, JSON
Schema ``data-schema-v1``) naming each column's type, whether it may be
missing, its range and its allowed values. :func:`infer_schema` writes the
first version from the leading rows of a dataset (the seed's ``select * from
foo limit 30``); :func:`validate_dataset` streams a dataset against a schema
and records every violation.

Two markers serve the training gate: ``deprecated: true`` retires a schema
version (validation still runs and the record carries the flag, so a policy
can refuse to train on data validated only against it), and
``deprecatedDatasets`` lists dataset files by digest that fail validation
outright.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from mlspec_attest.errors import MalformedDocumentError, UsageError
from mlspec_attest.formats.jsonio import canonical, loads_strict
from mlspec_attest.formats.limits import MAX_DATA_SCHEMA_BYTES, MAX_SAFE_INTEGER, read_limited
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.formats.schemas import schema_errors
from mlspec_attest.formats.tabular import (
    Cell,
    TabularReader,
    ValueKind,
    as_boolean,
    as_integer,
    as_text,
    clip_text,
    kind_of,
)

API_VERSION: Final = "mlspec-attest/v1"
DATA_SCHEMA_KIND: Final = "DataSchema"
VALIDATION_SCHEMA: Final = "https://mlspec-attest.dev/validation/v1"

MAX_VIOLATIONS: Final = 1000
"""Violations kept in a result; ``violation_count`` and ``violationsByKind`` count all."""
MAX_ENUM: Final = 10
"""Inference lists the allowed values of integer and string columns with at most this many."""
SAFE_INTEGER: Final = MAX_SAFE_INTEGER
"""Largest integer every JSON parser (and RFC 8785) represents exactly."""

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

_NAME_CHARS: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
_NUMERIC: Final = (ValueKind.INTEGER, ValueKind.NUMBER)


class DataSchemaError(MalformedDocumentError):
    """A data schema document is malformed; ``problems`` lists every problem found."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)

    def diagnostics(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


# ---------------------------------------------------------------------------- checks
def _json_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _non_finite(node: Any, path: list[str | int]) -> list[tuple[list[str | int], str]]:
    if isinstance(node, float) and not math.isfinite(node):
        return [(path, f"{node} is not a finite number")]
    if isinstance(node, Mapping):
        return [p for k, v in node.items() for p in _non_finite(v, [*path, str(k)])]
    if isinstance(node, list | tuple):
        return [p for i, v in enumerate(node) for p in _non_finite(v, [*path, i])]
    return []


def _enum_item_fits(value: Any, column_type: str) -> bool:
    if column_type == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if column_type == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if column_type == "number":
        return isinstance(value, int | float)
    return isinstance(value, str)


def data_schema_problems(doc: Any) -> list[tuple[list[str | int], str]]:
    """Every problem of a data schema document as (path, message): JSON Schema, then invariants."""
    problems = schema_errors("data-schema-v1", doc)
    problems += _non_finite(doc, [])
    if problems:
        return problems
    seen: set[str] = set()
    for index, column in enumerate(doc["columns"]):
        path: list[str | int] = ["columns", index]
        name, column_type = column["name"], column["type"]
        if name in seen:
            problems.append(([*path, "name"], f"column {name!r} is listed twice"))
        seen.add(name)
        numeric = column_type in ("integer", "number")
        for bound in ("min", "max"):
            if bound in column and not numeric:
                problems.append(([*path, bound], f"{bound} applies to integer and number columns"))
        if numeric and "min" in column and "max" in column and column["min"] > column["max"]:
            problems.append((path, f"min {column['min']} is greater than max {column['max']}"))
        for i, value in enumerate(column.get("enum", ())):
            if not _enum_item_fits(value, column_type):
                problems.append(([*path, "enum", i], f"{value!r} is not a {column_type}"))
    return problems


def check_data_schema(doc: Any, *, source: str = "data schema") -> None:
    """Raise :class:`DataSchemaError` listing every problem of ``doc``, if any."""
    problems = data_schema_problems(doc)
    if problems:
        raise DataSchemaError(
            f"{source}: not a valid data schema",
            [f"{_json_path(p)}: {m}" for p, m in problems],
        )


def schema_digest(schema: Mapping[str, Any]) -> str:
    """Hex sha256 of the schema's RFC 8785 canonical JSON (the same for YAML and JSON files)."""
    return hashlib.sha256(canonical(_plain(schema))).hexdigest()


# ---------------------------------------------------------------------------- loading
def _plain(node: Any) -> Any:
    """YAML nodes and mappings -> plain JSON values; timestamps -> RFC 3339 strings."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime):
        moment = node if node.tzinfo else node.replace(tzinfo=UTC)
        try:
            return format_rfc3339(moment)
        except (OverflowError, ValueError):
            return moment.isoformat()  # out of range in UTC: keep the text as written
    if isinstance(node, date):
        return node.isoformat()
    return str(node)


LineOf = Callable[[Sequence[str | int]], int | None]


def _parse_yaml(text: str, source: str) -> tuple[Any, LineOf]:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    from mlspec_attest.formats.yamlio import YamlError, load_yaml

    try:
        root = load_yaml(text, what=source, max_bytes=MAX_DATA_SCHEMA_BYTES)
    except YamlError as exc:
        line = f"line {exc.line}: " if exc.line else ""
        raise DataSchemaError(f"{source}: not valid YAML", [f"{line}{exc.detail}"]) from exc

    def line_of(path: Sequence[str | int]) -> int | None:
        node, line = root, None
        for part in path:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        return line

    return root, line_of


def _no_lines(_path: Sequence[str | int]) -> int | None:
    return None


def load_data_schema(path: Path) -> dict[str, Any]:
    """Read a data schema from YAML or JSON (``.json``) and check it.

    Raises :class:`DataSchemaError` (exit 3) listing every problem, with YAML
    line numbers where known.
    """
    from mlspec_attest.formats.yamlio import YamlError, decode_yaml

    source = str(path)
    data = read_limited(
        path, MAX_DATA_SCHEMA_BYTES, what=source, kind="a data schema", error=DataSchemaError
    )
    line_of: LineOf = _no_lines
    if path.suffix.lower() == ".json":
        doc = loads_strict(data, what=source, max_bytes=MAX_DATA_SCHEMA_BYTES)
    else:
        try:
            text = decode_yaml(data, what=source)
        except YamlError as exc:
            raise DataSchemaError(exc.message) from exc
        root, line_of = _parse_yaml(text, source)
        doc = _plain(root)
    problems = data_schema_problems(doc)
    if problems:
        lines = []
        for p, message in problems:
            line = line_of(p)
            lines.append(f"{f'line {line}: ' if line else ''}{_json_path(p)}: {message}")
        raise DataSchemaError(f"{source}: not a valid data schema", lines)
    result: dict[str, Any] = doc
    return result


# ---------------------------------------------------------------------------- inference
def _check_label(value: str, what: str, extra: str = "") -> None:
    allowed = _NAME_CHARS + extra
    if (
        not value
        or len(value) > 64
        or not value[0].isalnum()
        or any(c not in allowed for c in value)
    ):
        raise UsageError(
            f"{what} {value!r} is not valid",
            remedy="use letters, digits and . _ - (starting with a letter or digit)",
        )


@dataclass
class _ColumnSample:
    kinds: set[ValueKind] = field(default_factory=set)
    missing: int = 0
    present: int = 0
    low: float | int | None = None
    high: float | int | None = None
    distinct: set[str] = field(default_factory=set)

    def observe_bound(self, value: float | int) -> None:
        self.low = value if self.low is None or value < self.low else self.low
        self.high = value if self.high is None or value > self.high else self.high


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
        raise UsageError(f"--rows must be at least 1, got {rows}")
    _check_label(name, "schema name")
    _check_label(version, "schema version", "+")
    samples: dict[str, _ColumnSample] = {}
    with TabularReader(path, limit=rows) as reader:
        text_cells = reader.text_cells
        for row in reader:
            for column, cell in row.items():
                sample = samples.setdefault(column, _ColumnSample())
                if cell is None:
                    sample.missing += 1
                    continue
                sample.present += 1
                kind = kind_of(cell, text_cells=text_cells)
                sample.kinds.add(kind)
                if kind is ValueKind.INTEGER:
                    number: float | int = as_integer(cell)
                    sample.observe_bound(number)
                elif kind is ValueKind.NUMBER:
                    sample.observe_bound(float(cell))
                if len(sample.distinct) <= MAX_ENUM:
                    sample.distinct.add(as_text(cell))
        columns, seen = list(reader.columns), reader.rows_read

    described: list[dict[str, Any]] = []
    for column in columns:
        sample = samples.get(column, _ColumnSample())
        # JSON Lines: a key absent from some rows is missing there.
        absent = seen - sample.present - sample.missing
        column_type = _column_type(sample.kinds)
        entry: dict[str, Any] = {
            "name": column,
            "type": column_type,
            "nullable": sample.missing + absent > 0 or sample.present == 0,
        }
        enum_fits = (
            column_type in ("integer", "string")
            and 0 < len(sample.distinct) <= MAX_ENUM
            and sample.present >= 2 * len(sample.distinct)
        )
        if enum_fits and column_type == "integer":
            entry["enum"] = sorted({int(v) for v in sample.distinct})
        elif enum_fits:
            entry["enum"] = sorted(sample.distinct)
        elif column_type in ("integer", "number") and sample.low is not None:
            assert sample.high is not None
            if column_type == "number":
                entry["min"], entry["max"] = float(sample.low), float(sample.high)
            elif abs(sample.low) <= SAFE_INTEGER and abs(sample.high) <= SAFE_INTEGER:
                entry["min"], entry["max"] = sample.low, sample.high
        described.append(entry)

    doc: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": DATA_SCHEMA_KIND,
        "name": name,
        "version": version,
        "deprecated": False,
        "inferredFrom": {"rows": seen},
        "columns": described,
        "additionalColumns": False,
    }
    check_data_schema(doc, source=f"schema inferred from {path}")
    return doc


# ---------------------------------------------------------------------------- validation
@dataclass(frozen=True)
class ValidationResult:
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


@dataclass(frozen=True)
class _ColumnRule:
    name: str
    type: str
    nullable: bool
    low: float | None
    high: float | None
    allowed: frozenset[Any] | None

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> _ColumnRule:
        enum = spec.get("enum")
        return cls(
            name=spec["name"],
            type=spec["type"],
            nullable=bool(spec.get("nullable", False)),
            low=spec.get("min"),
            high=spec.get("max"),
            allowed=None if enum is None else frozenset(enum),
        )


class _Recorder:
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


def _check_cell(
    rule: _ColumnRule, index: int, cell: Cell, text_cells: bool, record: _Recorder
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


def validate_dataset(path: Path, schema: Mapping[str, Any]) -> ValidationResult:
    """Check every row of ``path`` against ``schema``; collect all violations.

    Violations: ``missing-column`` / ``unexpected-column`` (row None for a
    CSV header, the row for a JSON Lines record), ``type``, ``null``,
    ``min``, ``max``, ``enum`` per cell, and ``deprecated-dataset`` when the
    file's digest is listed in ``deprecatedDatasets``. Rows are 0-based.
    The result passes only with no violation; a ``deprecated`` schema still
    passes (the flag is carried for the policy to judge).
    """
    doc = _plain(schema)
    check_data_schema(doc)
    rules = {spec["name"]: _ColumnRule.from_json(spec) for spec in doc["columns"]}
    additional = bool(doc.get("additionalColumns", False))
    record = _Recorder()

    with TabularReader(path) as reader:
        text_cells = reader.text_cells
        active = list(rules.values())
        reported: set[str] = set()
        if text_cells:
            header = set(reader.columns)
            for rule in active:
                if rule.name not in header:
                    record.add(None, rule.name, "missing-column", f"no column {rule.name!r}", None)
            active = [r for r in active if r.name in header]
            if not additional:
                for column in reader.columns:
                    if column not in rules:
                        record.add(
                            None,
                            column,
                            "unexpected-column",
                            f"column {column!r} is not in the schema",
                            None,
                        )
        for row in reader:
            index = reader.rows_read
            if not text_cells:
                if not additional:
                    for column in row:
                        if column not in rules and column not in reported:
                            reported.add(column)
                            record.add(
                                index,
                                column,
                                "unexpected-column",
                                f"field {column!r} is not in the schema (reported once)",
                                None,
                            )
                for rule in active:
                    if rule.name not in row:
                        if not rule.nullable:
                            record.add(
                                index, rule.name, "missing-column", f"no field {rule.name!r}", None
                            )
                        continue
                    _check_cell(rule, index, row[rule.name], text_cells, record)
                continue
            for rule in active:
                _check_cell(rule, index, row[rule.name], text_cells, record)
        rows, digest = reader.rows_read, reader.sha256

    dataset_deprecated = digest is not None and f"sha256:{digest}" in doc.get(
        "deprecatedDatasets", ()
    )
    if dataset_deprecated:
        record.add(
            None,
            None,
            "deprecated-dataset",
            f"dataset sha256:{digest} is listed in deprecatedDatasets",
            f"sha256:{digest}",
        )
    return ValidationResult(
        schema_name=doc["name"],
        schema_version=str(doc["version"]),
        deprecated=bool(doc.get("deprecated", False)),
        rows=rows,
        passed=record.count == 0,
        violations=tuple(record.kept),
        violation_count=record.count,
        schema_sha256=schema_digest(doc),
        dataset_sha256=digest,
        dataset_deprecated=dataset_deprecated,
        violations_by_kind=dict(record.by_kind),
        deprecated_datasets=tuple(doc.get("deprecatedDatasets", ())),
    )
