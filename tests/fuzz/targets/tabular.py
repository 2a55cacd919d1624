"""tabular.TabularReader via validate_dataset and analyze_dataset: CSV, TSV, JSON Lines, gzip.

Input: a mode byte choosing the file name (``data.csv``, ``.tsv``,
``.jsonl``, ``.csv.gz``, ``data`` with no suffix) and the file bytes.
Checks: only bad-input errors from validating against a fixed schema and
from the descriptive analysis.
"""

from __future__ import annotations

from typing import Any

from mlspec_attest.evidence.analysis import analyze_dataset
from mlspec_attest.evidence.dataschema import validate_dataset

from ._harness import input_file, main, parse_or_none, split_mode

NAMES = ("data.csv", "data.tsv", "data.jsonl", "data.csv.gz", "data")
SCHEMA: dict[str, Any] = {
    "apiVersion": "mlspec-attest/v1",
    "kind": "DataSchema",
    "name": "sensors",
    "version": "2",
    "columns": [
        {"name": "id", "type": "integer", "min": 1},
        {"name": "site", "type": "string", "enum": ["north", "south", "east"]},
        {"name": "temp_c", "type": "number", "min": -40, "max": 60},
        {"name": "humidity", "type": "integer", "nullable": True, "min": 0, "max": 100},
        {"name": "ok", "type": "boolean"},
        {"name": "note", "type": "string", "nullable": True},
    ],
    "additionalColumns": False,
}


def TestOneInput(data: bytes) -> None:
    mode, body = split_mode(data, len(NAMES))
    path = input_file(body, NAMES[mode])
    result = parse_or_none(validate_dataset, path, SCHEMA)
    if result is not None:
        assert result.violation_count >= len(result.violations)
        result.to_json()
    report = parse_or_none(analyze_dataset, path)
    if report is not None:
        assert isinstance(report, dict)


if __name__ == "__main__":
    main(TestOneInput)
