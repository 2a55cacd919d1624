"""The one YAML loader: one date rule for every document kind (docs/data.md, "YAML dates")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.evidence.dataschema import load_data_schema, schema_digest
from mlspec_attest.formats.yamlio import dump_yaml, line_finder, load_yaml, plain


def _plain(text: str) -> Any:
    return plain(load_yaml(text, what="doc", max_bytes=1 << 16))


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("2030-01-01", "2030-01-01T00:00:00Z"),
        ("2030-01-01T10:00:00Z", "2030-01-01T10:00:00Z"),
        ("2030-01-01 10:00:00+02:00", "2030-01-01T08:00:00Z"),
        ("2030-01-01T10:00:00", "2030-01-01T10:00:00Z"),
        ('"2030-01-01"', "2030-01-01"),
    ],
)
def test_one_date_rule(written: str, value: str) -> None:
    assert _plain(f"when: {written}\n") == {"when": value}


def test_plain_values_are_plain_python() -> None:
    doc = _plain("a: 1.5\nb: 0x10\nc: [x, 'y', true, null]\n")
    assert doc == {"a": 1.5, "b": 16, "c": ["x", "y", True, None]}
    assert type(doc["a"]) is float and type(doc["b"]) is int and type(doc["c"][1]) is str


def test_a_data_schema_and_a_policy_read_a_date_alike(tmp_path: Path) -> None:
    """The same unquoted date means the same instant in a policy and in a data schema."""
    schema = tmp_path / "s.yaml"
    schema.write_text(
        "apiVersion: mlspec-attest/v1\nkind: DataSchema\nname: s\nversion: '1'\n"
        "columns:\n  - {name: day, type: string, enum: [2030-01-01, '2030-01-02']}\n"
    )
    doc = load_data_schema(schema)
    assert doc["columns"][0]["enum"] == ["2030-01-01T00:00:00Z", "2030-01-02"]
    as_json = tmp_path / "s.json"
    as_json.write_text(
        '{"apiVersion": "mlspec-attest/v1", "kind": "DataSchema", "name": "s", "version": "1",'
        ' "columns": [{"name": "day", "type": "string",'
        ' "enum": ["2030-01-01T00:00:00Z", "2030-01-02"]}]}'
    )
    assert schema_digest(doc) == schema_digest(load_data_schema(as_json))
    policy_expires = _plain("expires: 2030-01-01\n")["expires"]
    assert policy_expires == doc["columns"][0]["enum"][0]


def test_line_finder() -> None:
    root = load_yaml("a: 1\nb:\n  - x\n  - y\n", what="doc", max_bytes=1 << 16)
    line_of = line_finder(root)
    assert (line_of(["a"]), line_of(["b", 1]), line_of(["missing"])) == (1, 4, None)
    assert line_finder(root, document_line=True)(["missing"]) == 1


def test_dump_yaml_reads_back_as_written() -> None:
    doc = {"name": "s", "columns": [{"name": "a", "enum": [1, 2]}], "ok": True, "none": None}
    text = dump_yaml(doc, comment="hello", flow_lists=("enum",))
    assert text.startswith("# hello\n") and "enum: [1, 2]" in text
    assert _plain(text) == doc
