"""The data schema document (``kind: DataSchema``, JSON Schema ``data-schema-v1``).

What a valid schema is: the JSON Schema, every number finite, column names listed
once, bounds only on numeric columns with ``min <= max``, enum values of the
column's type. :func:`data_schema_problems` lists every problem with its path;
:mod:`mlspec_attest.evidence.dataschema` adds YAML line numbers when loading.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.schemas import schema_errors

API_VERSION: Final = "mlspec-attest/v1"
DATA_SCHEMA_KIND: Final = "DataSchema"


class DataSchemaError(MalformedDocumentError):
    """A data schema document is malformed; ``problems`` lists every problem found."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)

    def diagnostics(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


def json_path(path: Sequence[str | int]) -> str:
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
            [f"{json_path(p)}: {m}" for p, m in problems],
        )
