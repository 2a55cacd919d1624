"""Data schemas (stage 5): inference from the first rows, loading, validation, deprecation."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlspec_attest.cli import main as cli_main
from mlspec_attest.cli.data_cmd import schema, validate
from mlspec_attest.errors import BadInputError, UsageError
from mlspec_attest.evidence.dataschema import load_data_schema, schema_digest, validate_dataset
from mlspec_attest.evidence.schema_document import DATA_SCHEMA_KIND, DataSchemaError
from mlspec_attest.evidence.schema_inference import infer_schema
from mlspec_attest.evidence.violations import MAX_VIOLATIONS, VALIDATION_SCHEMA, ValidationResult
from mlspec_attest.formats.jsonio import canonical

from .test_analysis import SENSORS_CSV, SENSORS_JSONL, TABULAR, write_diabetes_csv

SENSORS_SCHEMA = TABULAR / "sensors-schema.yaml"


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[list[float]]]:
    path = tmp_path_factory.mktemp("diabetes") / "diabetes.csv"
    header, rows = write_diabetes_csv(path)
    return path, header, rows


def columns_by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["columns"]}


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def base_schema(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "mlspec-attest/v1",
        "kind": "DataSchema",
        "name": "people",
        "version": "3",
        "columns": [
            {"name": "age", "type": "integer", "min": 0, "max": 120},
            {"name": "height", "type": "number", "nullable": True, "min": 0.3},
            {"name": "group", "type": "string", "enum": ["a", "b"]},
            {"name": "member", "type": "boolean"},
        ],
    }
    doc.update(extra)
    return doc


def kinds(result: ValidationResult) -> list[tuple[int | None, str | None, str]]:
    return [(v["row"], v["column"], v["kind"]) for v in result.violations]


# --------------------------------------------------------------------------- inference
def test_infer_from_the_first_rows_of_diabetes(
    diabetes: tuple[Path, list[str], list[list[float]]],
) -> None:
    path, header, rows = diabetes
    doc = infer_schema(path, rows=30, name="diabetes", version="2024.1")
    assert doc["apiVersion"] == "mlspec-attest/v1"
    assert doc["kind"] == DATA_SCHEMA_KIND
    assert (doc["name"], doc["version"], doc["deprecated"]) == ("diabetes", "2024.1", False)
    assert doc["inferredFrom"] == {"rows": 30}
    assert doc["additionalColumns"] is False
    cols = columns_by_name(doc)
    assert list(cols) == header
    first = rows[:30]
    assert cols["sex"] == {"name": "sex", "type": "integer", "nullable": False, "enum": [1, 2]}
    for name, column in cols.items():
        values = [r[header.index(name)] for r in first]
        assert column["nullable"] is False
        if name == "sex":
            continue
        integral = all(v.is_integer() for v in values)
        assert column["type"] == ("integer" if integral else "number"), name
        assert column["min"] == min(values) and column["max"] == max(values), name
    # The first version describes the sample, so it accepts the sample ...
    with path.open(newline="") as fh:
        lines = list(csv.reader(fh))
    sample = write_csv(path.parent / "first30.csv", header, lines[1:31])
    assert validate_dataset(sample, doc).passed
    # ... and flags the rest of the data that lies outside the sample's bounds.
    full = validate_dataset(path, doc)
    assert not full.passed
    assert full.rows == 442
    assert {"min", "max"} <= set(full.violations_by_kind)
    assert all(v["row"] >= 30 for v in full.violations)


def test_infer_types_nullability_and_enums() -> None:
    for path in (SENSORS_CSV, SENSORS_JSONL):
        cols = columns_by_name(infer_schema(path, rows=30, name="sensors"))
        assert cols["id"] == {
            "name": "id",
            "type": "integer",
            "nullable": False,
            "min": 1,
            "max": 30,
        }
        assert cols["site"]["enum"] == ["east", "north", "south"]
        assert cols["temp_c"]["type"] == "number"
        assert cols["temp_c"]["max"] == 95.0
        assert cols["humidity"]["nullable"] is True
        assert cols["ok"] == {"name": "ok", "type": "boolean", "nullable": False}
        assert cols["note"]["nullable"] is True
        assert cols["note"]["enum"] == ["recalibrated", "routine"]


def test_infer_reads_only_the_first_rows(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "d.csv", ["x", "y"], [["1", "a"], ["2", ""], ["oops", "c"]])
    cols = columns_by_name(infer_schema(data, rows=2, name="d"))
    assert cols["x"]["type"] == "integer"  # "oops" is in row 3, past the sample
    assert cols["y"]["nullable"] is True
    doc = infer_schema(data, rows=1000, name="d")
    assert doc["inferredFrom"] == {"rows": 3}
    assert columns_by_name(doc)["x"]["type"] == "string"
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"a": 1}\n{"a": 2}\n{"a": 3, "late": "x"}\n')
    assert [c["name"] for c in infer_schema(jsonl, rows=2, name="d")["columns"]] == ["a"]


def test_infer_mixed_and_wide_columns(tmp_path: Path) -> None:
    rows = [[str(i), str(i + 0.5), f"id{i}", "x" if i % 2 else "7"] for i in range(20)]
    data = write_csv(tmp_path / "d.csv", ["n", "f", "ident", "mixed"], rows)
    cols = columns_by_name(infer_schema(data, rows=20, name="d"))
    assert cols["n"]["type"] == "integer" and "enum" not in cols["n"]  # 20 distinct values
    assert (cols["n"]["min"], cols["n"]["max"]) == (0, 19)
    assert cols["f"]["type"] == "number"
    assert cols["ident"] == {"name": "ident", "type": "string", "nullable": False}
    assert cols["mixed"]["type"] == "string"
    assert cols["mixed"]["enum"] == ["7", "x"]


def test_infer_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="rows must be at least 1"):
        infer_schema(SENSORS_CSV, rows=0, name="s")
    with pytest.raises(UsageError, match="schema name"):
        infer_schema(SENSORS_CSV, name="bad name")
    with pytest.raises(UsageError, match="schema version"):
        infer_schema(SENSORS_CSV, name="s", version="")
    with pytest.raises(BadInputError, match="no such file"):
        infer_schema(tmp_path / "none.csv", name="s")


# --------------------------------------------------------------------------- validation
def test_every_violation_kind_in_csv(tmp_path: Path) -> None:
    data = write_csv(
        tmp_path / "people.csv",
        ["age", "group", "member", "extra"],
        [
            ["34", "a", "true", "x"],  # ok
            ["abc", "b", "false", "x"],  # type
            ["", "a", "true", "x"],  # null
            ["-1", "a", "true", "x"],  # min
            ["121", "b", "true", "x"],  # max
            ["40", "c", "yes", "x"],  # enum + boolean type
            ["2.0", "a", "False", "x"],  # integral number is an integer; False is boolean
        ],
    )
    result = validate_dataset(data, base_schema())
    assert not result.passed
    assert kinds(result) == [
        (None, "height", "missing-column"),
        (None, "extra", "unexpected-column"),
        (1, "age", "type"),
        (2, "age", "null"),
        (3, "age", "min"),
        (4, "age", "max"),
        (5, "group", "enum"),
        (5, "member", "type"),
    ]
    assert result.violation_count == 8
    assert result.violations_by_kind == {
        "missing-column": 1,
        "unexpected-column": 1,
        "type": 2,
        "null": 1,
        "min": 1,
        "max": 1,
        "enum": 1,
    }
    by_row = {(v["row"], v["kind"]): v for v in result.violations}
    assert by_row[(1, "type")]["value"] == "abc"
    assert by_row[(1, "type")]["message"] == "row 1: 'age': expected integer, found string"
    assert by_row[(4, "max")]["value"] == "121"
    assert result.rows == 7


def test_additional_columns_and_nullable(tmp_path: Path) -> None:
    data = write_csv(
        tmp_path / "p.csv",
        ["age", "height", "group", "member", "note"],
        [["30", "", "a", "true", "hi"], ["31", "1.8", "b", "false", ""]],
    )
    assert validate_dataset(data, base_schema(additionalColumns=True)).passed
    strict = validate_dataset(data, base_schema())
    assert kinds(strict) == [(None, "note", "unexpected-column")]


def test_jsonl_violations_are_typed(tmp_path: Path) -> None:
    data = tmp_path / "p.jsonl"
    records = [
        {"age": 30, "height": 1.7, "group": "a", "member": True},
        {"age": "30", "height": None, "group": "b", "member": False},  # a string is not an integer
        {"age": 30.0, "group": 1, "member": 1, "x": 1},  # 30.0 is an integer; others are not
        {"height": 0.1, "group": "a", "member": True},  # age absent, height < min
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = validate_dataset(data, base_schema())
    assert kinds(result) == [
        (1, "age", "type"),
        (2, "x", "unexpected-column"),
        (2, "group", "type"),
        (2, "member", "type"),
        (3, "age", "missing-column"),
        (3, "height", "min"),
    ]


def test_sensors_fixture_against_its_reviewed_schema() -> None:
    doc = load_data_schema(SENSORS_SCHEMA)
    assert doc["version"] == "2"
    for path in (SENSORS_CSV, SENSORS_JSONL):
        result = validate_dataset(path, doc)
        # 95.0 °C is above the reviewed max of 60.
        assert kinds(result) == [(17, "temp_c", "max")], path
        assert result.violations[0]["value"] in ("95.0", 95.0)


def test_violations_are_capped_but_all_counted(tmp_path: Path) -> None:
    data = write_csv(
        tmp_path / "many.csv",
        ["age", "height", "group", "member"],
        [["-5", "1.0", "z", "true"] for _ in range(700)],
    )
    result = validate_dataset(data, base_schema())
    assert result.violation_count == 1400
    assert len(result.violations) == MAX_VIOLATIONS
    doc = result.to_json()
    assert doc["violationsTruncated"] is True
    assert doc["violationsByKind"] == {"enum": 700, "min": 700}


def test_to_json_record(tmp_path: Path) -> None:
    schema_doc = base_schema(deprecated=True)
    data = write_csv(
        tmp_path / "ok.csv", ["age", "height", "group", "member"], [["1", "1.0", "a", "true"]]
    )
    result = validate_dataset(data, schema_doc)
    assert result.passed  # a deprecated schema still validates ...
    assert result.deprecated  # ... and says so, for the policy to refuse training on it
    doc = result.to_json()
    digest = hashlib.sha256(canonical(schema_doc)).hexdigest()
    assert doc == {
        "schemaVersion": VALIDATION_SCHEMA,
        "schema": {
            "name": "people",
            "version": "3",
            "deprecated": True,
            "sha256": digest,
            "deprecatedDatasets": [],
        },
        "dataset": {
            "rows": 1,
            "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
            "deprecated": False,
        },
        "passed": True,
        "violationCount": 0,
        "violations": [],
        "violationsTruncated": False,
        "violationsByKind": {},
    }
    assert schema_digest(schema_doc) == digest


def test_deprecated_dataset_fails_validation(tmp_path: Path) -> None:
    data = write_csv(
        tmp_path / "old.csv", ["age", "height", "group", "member"], [["1", "1.0", "a", "true"]]
    )
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    result = validate_dataset(data, base_schema(deprecatedDatasets=[f"sha256:{digest}"]))
    assert not result.passed
    assert result.dataset_deprecated
    assert kinds(result) == [(None, None, "deprecated-dataset")]
    assert result.to_json()["dataset"]["deprecated"] is True
    other = base_schema(deprecatedDatasets=["sha256:" + "0" * 64])
    assert validate_dataset(data, other).passed


def test_validate_refuses_an_invalid_schema_mapping(tmp_path: Path) -> None:
    bad = base_schema()
    bad["columns"][0]["min"] = 200
    with pytest.raises(DataSchemaError) as info:
        validate_dataset(SENSORS_CSV, bad)
    assert "min 200 is greater than max 120" in info.value.diagnostics()


# --------------------------------------------------------------------------- loading
def test_yaml_and_json_schemas_have_the_same_digest(tmp_path: Path) -> None:
    doc = load_data_schema(SENSORS_SCHEMA)
    as_json = tmp_path / "sensors.json"
    as_json.write_text(json.dumps(doc))
    assert load_data_schema(as_json) == doc
    assert schema_digest(load_data_schema(as_json)) == schema_digest(doc)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("apiVersion: v2\n", "'mlspec-attest/v1' was expected"),
        ("columns:\n  - {name: a, type: integer, colour: red}\n", "line 6: columns[0].colour"),
        ("columns:\n  - {name: a, type: date}\n", "'date' is not one of"),
        ("columns:\n  - {name: a, type: string, min: 1}\n", "min applies to integer and number"),
        (
            "columns:\n  - {name: a, type: integer, enum: [1, x]}\n",
            "columns[0].enum[1]: 'x' is not",
        ),
        ("columns:\n  - {name: a, type: string}\n  - {name: a, type: string}\n", "listed twice"),
        ("columns:\n  - {name: a, type: number, max: .nan}\n", "nan is not a finite number"),
        ("deprecatedDatasets: [abc]\n", "does not match"),
        ("name: x\n", "line 5: found duplicate key"),
    ],
)
def test_bad_schema_files_list_their_problems(tmp_path: Path, text: str, problem: str) -> None:
    header = "kind: DataSchema\nname: s\nversion: 1\n"
    body = text if text.startswith("apiVersion") else "apiVersion: mlspec-attest/v1\n" + text
    if "columns" not in text:
        body += "columns: []\n"
    path = tmp_path / "s.yaml"
    path.write_text(header + body)
    with pytest.raises(DataSchemaError) as info:
        load_data_schema(path)
    assert problem in info.value.diagnostics()
    assert info.value.exit_code == 3


def test_schema_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataSchemaError, match="file not found"):
        load_data_schema(tmp_path / "none.yaml")
    broken = tmp_path / "broken.json"
    broken.write_text('{"kind": "DataSchema", "kind": "x"}')
    with pytest.raises(BadInputError, match="duplicate key"):
        load_data_schema(broken)
    yaml_error = tmp_path / "broken.yaml"
    yaml_error.write_text("columns: [\n")
    with pytest.raises(DataSchemaError, match="not valid YAML"):
        load_data_schema(yaml_error)


# ------------------------------------------------------------------------------ CLI
def test_cli_infer_yaml_then_validate(
    tmp_path: Path, diabetes: tuple[Path, list[str], list[list[float]]]
) -> None:
    path, _, _ = diabetes
    runner = CliRunner()
    printed = runner.invoke(schema, ["infer", str(path), "--name", "diabetes", "--rows", "30"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.startswith("# Inferred by mlspec-attest from the first 30 rows")
    assert "enum: [1, 2]" in printed.stdout
    schema_file = tmp_path / "diabetes.yaml"
    written = runner.invoke(
        schema,
        ["infer", str(path), "--name", "diabetes", "--version", "7", "--out", str(schema_file)],
    )
    assert written.exit_code == 0, written.output
    loaded = load_data_schema(schema_file)
    assert loaded == infer_schema(path, name="diabetes", version="7")

    failed = runner.invoke(validate, [str(path), "--schema", str(schema_file)])
    assert failed.exit_code == 1
    assert failed.stdout.startswith(f"FAILED  {path} against data schema diabetes version 7:")

    record = tmp_path / "validation.json"
    as_json = runner.invoke(
        validate, [str(path), "--schema", str(schema_file), "--json", "--out", str(record)]
    )
    assert as_json.exit_code == 1
    doc = json.loads(as_json.stdout)
    assert doc == json.loads(record.read_text())
    assert doc["schemaVersion"] == VALIDATION_SCHEMA
    assert doc["passed"] is False
    assert doc["schema"]["sha256"] == schema_digest(loaded)


def test_cli_infer_json_and_validate_pass(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(schema, ["infer", str(SENSORS_CSV), "--name", "sensors", "--json"])
    assert printed.exit_code == 0
    assert json.loads(printed.stdout) == infer_schema(SENSORS_CSV, name="sensors")
    out = tmp_path / "sensors.json"
    written = runner.invoke(schema, ["infer", str(SENSORS_CSV), "--name", "s", "--out", str(out)])
    assert written.exit_code == 0
    assert written.stdout == ""  # the schema went to the file (JSON: it ends in .json)
    assert json.loads(out.read_text())["name"] == "s"
    passed = runner.invoke(validate, [str(SENSORS_JSONL), "--schema", str(out)])
    assert passed.exit_code == 0, passed.output
    assert (
        passed.stdout.strip()
        == f"PASSED  {SENSORS_JSONL} matches data schema s version 1 (30 rows)"
    )


def test_cli_validate_warns_about_a_deprecated_schema(tmp_path: Path) -> None:
    doc = infer_schema(SENSORS_CSV, name="sensors")
    doc["deprecated"] = True
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    result = CliRunner().invoke(validate, [str(SENSORS_CSV), "--schema", str(path), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["schema"]["deprecated"] is True
    assert "is deprecated" in result.stderr


def test_cli_exit_codes_through_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Wired the way the lead registers the commands in cli/main.py."""
    for name in ("schema", "validate"):
        monkeypatch.setitem(cli_main.COMMANDS, name, ("data_cmd", name, name))
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: DataSchema\n")
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["validate", str(SENSORS_CSV), "--schema", str(bad), "--json"])
    assert exit_info.value.code == 3
    out, err = capsys.readouterr()
    error = json.loads(out)
    assert error["exitCode"] == 3
    assert "'columns' is a required property" in error["error"]["message"]
    assert "required property" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["validate", str(SENSORS_CSV), "--schema", str(SENSORS_SCHEMA), "--json"])
    assert exit_info.value.code == 1
    assert json.loads(capsys.readouterr().out)["violationCount"] == 1
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["schema", "infer", str(SENSORS_CSV), "--name", "bad name"])
    assert exit_info.value.code == 2
