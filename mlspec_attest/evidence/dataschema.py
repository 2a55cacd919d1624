"""Data validation (lifecycle stage 5): loading versioned data schemas and validating data.

A data schema is a small YAML or JSON document (``kind: DataSchema``, JSON
Schema ``data-schema-v1``, see :mod:`mlspec_attest.evidence.schema_document`)
naming each column's type, whether it may be missing, its range and its allowed
values. :func:`load_data_schema` reads one (YAML through the one loader,
:mod:`mlspec_attest.formats.yamlio`); :func:`validate_dataset` streams a dataset
against it and records every violation (:mod:`mlspec_attest.evidence.violations`).
The first version of a schema is inferred by
:func:`mlspec_attest.evidence.schema_inference.infer_schema`.

Two markers serve the training gate: ``deprecated: true`` retires a schema
version (validation still runs and the record carries the flag, so a policy
can refuse to train on data validated only against it), and
``deprecatedDatasets`` lists dataset files by digest that fail validation
outright.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlspec_attest.evidence.schema_document import (
    DataSchemaError,
    check_data_schema,
    data_schema_problems,
    json_path,
)
from mlspec_attest.evidence.violations import (
    ColumnRule,
    ValidationResult,
    ViolationRecorder,
    check_cell,
)
from mlspec_attest.formats.cells import Cell, TabularReader
from mlspec_attest.formats.jsonio import canonical, loads_strict
from mlspec_attest.formats.limits import MAX_DATA_SCHEMA_BYTES, read_limited
from mlspec_attest.formats.yamlio import (
    LineOf,
    YamlError,
    decode_yaml,
    line_finder,
    load_yaml,
    plain,
)


def schema_digest(schema: Mapping[str, Any]) -> str:
    """Hex sha256 of the schema's RFC 8785 canonical JSON (the same for YAML and JSON files)."""
    return hashlib.sha256(canonical(plain(schema))).hexdigest()


# ---------------------------------------------------------------------------- loading
def _no_lines(_path: object) -> int | None:
    return None


def _parse(data: bytes, path: Path, source: str) -> tuple[Any, LineOf]:
    """The plain document of a JSON (``.json``) or YAML file, and where each path is."""
    if path.suffix.lower() == ".json":
        return loads_strict(data, what=source, max_bytes=MAX_DATA_SCHEMA_BYTES), _no_lines
    try:
        root = load_yaml(
            decode_yaml(data, what=source), what=source, max_bytes=MAX_DATA_SCHEMA_BYTES
        )
    except YamlError as exc:
        if not exc.parsing:
            raise DataSchemaError(exc.message) from exc
        line = f"line {exc.line}: " if exc.line else ""
        raise DataSchemaError(f"{source}: not valid YAML", [f"{line}{exc.detail}"]) from exc
    return plain(root), line_finder(root)


def load_data_schema(path: Path) -> dict[str, Any]:
    """Read a data schema from YAML or JSON (``.json``) and check it.

    Raises :class:`DataSchemaError` (exit 3) listing every problem, with YAML
    line numbers where known.
    """
    source = str(path)
    data = read_limited(
        path, MAX_DATA_SCHEMA_BYTES, what=source, kind="a data schema", error=DataSchemaError
    )
    doc, line_of = _parse(data, path, source)
    problems = data_schema_problems(doc)
    if problems:
        lines = []
        for p, message in problems:
            line = line_of(p)
            lines.append(f"{f'line {line}: ' if line else ''}{json_path(p)}: {message}")
        raise DataSchemaError(f"{source}: not a valid data schema", lines)
    result: dict[str, Any] = doc
    return result


# ---------------------------------------------------------------------------- validation
class _Validation:
    """One pass of a dataset against the rules of one schema."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.rules = {spec["name"]: ColumnRule.from_json(spec) for spec in doc["columns"]}
        self.additional = bool(doc.get("additionalColumns", False))
        self.record = ViolationRecorder()
        self.active = list(self.rules.values())
        self.reported: set[str] = set()

    def header(self, columns: list[str]) -> None:
        """CSV: columns missing from or not in the schema, reported once (row None)."""
        present = set(columns)
        for rule in self.active:
            if rule.name not in present:
                self.record.add(None, rule.name, "missing-column", f"no column {rule.name!r}", None)
        self.active = [r for r in self.active if r.name in present]
        if self.additional:
            return
        for column in columns:
            if column not in self.rules:
                message = f"column {column!r} is not in the schema"
                self.record.add(None, column, "unexpected-column", message, None)

    def text_row(self, index: int, row: Mapping[str, Cell]) -> None:
        for rule in self.active:
            check_cell(rule, index, row[rule.name], True, self.record)

    def record_row(self, index: int, row: Mapping[str, Cell]) -> None:
        """JSON Lines: a field absent from a record is missing there."""
        if not self.additional:
            for column in row:
                if column not in self.rules and column not in self.reported:
                    self.reported.add(column)
                    message = f"field {column!r} is not in the schema (reported once)"
                    self.record.add(index, column, "unexpected-column", message, None)
        for rule in self.active:
            if rule.name in row:
                check_cell(rule, index, row[rule.name], False, self.record)
            elif not rule.nullable:
                message = f"no field {rule.name!r}"
                self.record.add(index, rule.name, "missing-column", message, None)


def _read(path: Path, check: _Validation) -> tuple[int, str | None]:
    """Check every row of ``path``; the rows read and the file's sha256."""
    with TabularReader(path) as reader:
        if reader.text_cells:
            check.header(reader.columns)
        each = check.text_row if reader.text_cells else check.record_row
        for row in reader:
            each(reader.rows_read, row)
        return reader.rows_read, reader.sha256


def validate_dataset(path: Path, schema: Mapping[str, Any]) -> ValidationResult:
    """Check every row of ``path`` against ``schema``; collect all violations.

    Violations: ``missing-column`` / ``unexpected-column`` (row None for a
    CSV header, the row for a JSON Lines record), ``type``, ``null``,
    ``min``, ``max``, ``enum`` per cell, and ``deprecated-dataset`` when the
    file's digest is listed in ``deprecatedDatasets``. Rows are 0-based.
    The result passes only with no violation; a ``deprecated`` schema still
    passes (the flag is carried for the policy to judge).
    """
    doc = plain(schema)
    check_data_schema(doc)
    check = _Validation(doc)
    rows, digest = _read(path, check)
    record = check.record
    listed = doc.get("deprecatedDatasets", ())
    dataset_deprecated = digest is not None and f"sha256:{digest}" in listed
    if dataset_deprecated:
        message = f"dataset sha256:{digest} is listed in deprecatedDatasets"
        record.add(None, None, "deprecated-dataset", message, f"sha256:{digest}")
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
        deprecated_datasets=tuple(listed),
    )
