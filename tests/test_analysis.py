"""Data analysis (stage 3) and outlier removal (stage 4) on real CSV and JSON Lines files."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlspec_attest.cli import main as cli_main
from mlspec_attest.cli.data_cmd import analyze
from mlspec_attest.errors import BadInputError, UsageError
from mlspec_attest.evidence.analysis import (
    ANALYSIS_SCHEMA,
    MAX_OUTLIER_ROWS,
    analysis_metrics,
    analyze_dataset,
    remove_outliers,
)
from mlspec_attest.formats.cells import TabularReader, read_columns
from mlspec_attest.formats.schemas import schema_errors

TABULAR = Path(__file__).parent / "data" / "tabular"
SENSORS_CSV = TABULAR / "sensors.csv"
SENSORS_JSONL = TABULAR / "sensors.jsonl"
PLANTED = 17  # 0-based row of the 95.0 °C reading in sensors.*
QUANTILE_INDEX = {"p01": 0, "p05": 4, "p25": 24, "p50": 49, "p75": 74, "p95": 94, "p99": 98}


def write_diabetes_csv(path: Path) -> tuple[list[str], list[list[float]]]:
    """scikit-learn's diabetes data (unscaled) as CSV; integral values written as integers."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes(scaled=False)
    header = [*data.feature_names, "target"]
    rows = [[float(v) for v in [*x, y]] for x, y in zip(data.data, data.target, strict=True)]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([int(v) if v.is_integer() else repr(v) for v in row])
    return header, rows


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[list[float]]]:
    path = tmp_path_factory.mktemp("diabetes") / "diabetes.csv"
    header, rows = write_diabetes_csv(path)
    return path, header, rows


def column(rows: list[list[float]], header: list[str], name: str) -> list[float]:
    return [row[header.index(name)] for row in rows]


def assert_matches_statistics(stats: dict[str, Any], values: list[float]) -> None:
    assert stats["type"] == "number"
    assert stats["count"] == len(values)
    assert stats["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
    assert stats["std"] == pytest.approx(statistics.stdev(values), rel=1e-12)
    assert stats["min"] == min(values)
    assert stats["max"] == max(values)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    for name, index in QUANTILE_INDEX.items():
        assert stats["quantiles"][name] == pytest.approx(cuts[index], rel=1e-12), name


def sensor_temperatures() -> list[float]:
    with SENSORS_CSV.open(newline="") as fh:
        return [float(r["temp_c"]) for r in csv.DictReader(fh)]


def assert_json_safe(doc: Any) -> None:
    json.dumps(doc, allow_nan=False)  # raises on NaN or infinity


# ------------------------------------------------------------------ overall statistics
def test_diabetes_statistics_equal_statistics_module(
    diabetes: tuple[Path, list[str], list[list[float]]],
) -> None:
    path, header, rows = diabetes
    report = analyze_dataset(path)
    assert report["schemaVersion"] == ANALYSIS_SCHEMA
    assert report["dataset"]["rows"] == 442
    assert report["dataset"]["columns"] == header
    assert report["dataset"]["format"] == "csv"
    assert report["dataset"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert list(report["features"]) == header
    for name in header:
        stats = report["features"][name]
        assert stats["missing"] == 0
        assert_matches_statistics(stats, column(rows, header, name))
    assert schema_errors("analysis-v1", report) == []
    assert_json_safe(report)


def test_per_slice_statistics_on_sex(diabetes: tuple[Path, list[str], list[list[float]]]) -> None:
    path, header, rows = diabetes
    report = analyze_dataset(path, slices=["sex"])
    family = report["slices"]["sex"]
    assert sorted(family) == ["1", "2"]
    for key, code in (("1", 1.0), ("2", 2.0)):
        members = [r for r in rows if r[header.index("sex")] == code]
        assert family[key]["rows"] == len(members)
        features = family[key]["features"]
        assert "sex" not in features  # the slice column is constant inside its slice
        assert set(features) == set(header) - {"sex"}
        for name in ("bmi", "bp", "target"):
            assert_matches_statistics(features[name], column(members, header, name))
    assert family["1"]["rows"] + family["2"]["rows"] == 442
    assert schema_errors("analysis-v1", report) == []


def test_missing_values_and_string_features() -> None:
    report = analyze_dataset(SENSORS_CSV)
    features = report["features"]
    assert [features[c]["type"] for c in report["dataset"]["columns"]] == [
        "number",
        "string",
        "number",
        "number",
        "string",
        "string",
    ]
    assert features["humidity"]["missing"] == 1
    assert features["humidity"]["count"] == 29
    note = features["note"]
    assert (note["count"], note["missing"], note["distinct"]) == (28, 2, 2)
    assert note["top"] == [["routine", 25], ["recalibrated", 3]]
    assert features["ok"]["top"] == [["true", 22], ["false", 8]]
    assert features["site"]["distinct"] == 3
    assert_matches_statistics(features["temp_c"], sensor_temperatures())
    assert_json_safe(report)


def test_jsonl_gives_the_same_numeric_statistics_as_csv() -> None:
    from_csv = analyze_dataset(SENSORS_CSV)
    from_jsonl = analyze_dataset(SENSORS_JSONL)
    assert from_jsonl["dataset"]["format"] == "jsonl"
    for name in ("id", "temp_c", "humidity"):
        assert from_jsonl["features"][name] == from_csv["features"][name]
    assert from_jsonl["features"]["ok"]["top"] == from_csv["features"]["ok"]["top"]
    assert from_jsonl["features"]["note"]["missing"] == 2
    assert from_jsonl["outliers"] == from_csv["outliers"]


def test_gzip_and_tsv_inputs(tmp_path: Path) -> None:
    gz = tmp_path / "sensors.csv.gz"
    gz.write_bytes(gzip.compress(SENSORS_CSV.read_bytes()))
    report = analyze_dataset(gz)
    assert report["dataset"]["sha256"] == hashlib.sha256(gz.read_bytes()).hexdigest()
    assert report["features"] == analyze_dataset(SENSORS_CSV)["features"]
    tsv = tmp_path / "t.tsv"
    tsv.write_text("a\tb\n1\tx,y\n3\tz\n")
    stats = analyze_dataset(tsv)["features"]
    assert stats["a"]["mean"] == 2.0
    assert stats["b"]["top"] == [["x,y", 1], ["z", 1]]


def test_undefined_statistics_are_null_not_nan(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("one,empty,const\n5,,7\n,,7\n")
    report = analyze_dataset(data, outliers="zscore")
    one = report["features"]["one"]
    assert (one["count"], one["missing"], one["mean"], one["std"]) == (1, 1, 5.0, None)
    empty = report["features"]["empty"]
    assert empty == {"type": "string", "count": 0, "missing": 2, "distinct": 0, "top": []}
    assert report["features"]["const"]["std"] == 0.0
    assert report["outliers"]["bounds"]["const"] is None  # no z-score for a constant column
    assert report["outliers"]["count"] == 0
    assert schema_errors("analysis-v1", report) == []
    assert_json_safe(report)


# ------------------------------------------------------------------------ outliers
@pytest.mark.parametrize("path", [SENSORS_CSV, SENSORS_JSONL])
def test_iqr_flags_the_planted_outlier(path: Path) -> None:
    found = analyze_dataset(path, exclude_columns=["id"])["outliers"]
    assert found["method"] == "iqr"
    assert found["threshold"] == 1.5
    assert found["rows"] == [PLANTED]
    assert found["count"] == 1
    assert found["truncated"] is False
    assert found["perFeature"] == {"temp_c": 1, "humidity": 0}
    temps = sensor_temperatures()
    q1, _, q3 = statistics.quantiles(temps, n=4, method="inclusive")
    low, high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    assert found["bounds"]["temp_c"] == {
        "low": pytest.approx(low, rel=1e-12),
        "high": pytest.approx(high, rel=1e-12),
    }
    assert [i for i, t in enumerate(temps) if not low <= t <= high] == [PLANTED]


def test_zscore_flags_the_planted_outlier() -> None:
    report = analyze_dataset(SENSORS_CSV, outliers="zscore", exclude_columns=["id"])
    found = report["outliers"]
    assert (found["method"], found["threshold"]) == ("zscore", 3.0)
    assert found["rows"] == [PLANTED]
    temps = sensor_temperatures()
    mean, std = statistics.fmean(temps), statistics.stdev(temps)
    assert [i for i, t in enumerate(temps) if abs(t - mean) / std > 3] == [PLANTED]
    # The outlier's z-score is about 5.3 (n=30): a limit above it flags nothing.
    assert analyze_dataset(SENSORS_CSV, outliers="zscore", threshold=6)["outliers"]["count"] == 0


def test_threshold_changes_the_iqr_fences(
    diabetes: tuple[Path, list[str], list[list[float]]],
) -> None:
    path, header, rows = diabetes
    wide = analyze_dataset(path, threshold=3.0)["outliers"]
    narrow = analyze_dataset(path)["outliers"]
    assert wide["threshold"] == 3.0
    assert wide["count"] < narrow["count"]
    assert set(wide["rows"]) <= set(narrow["rows"])
    s1 = column(rows, header, "s1")
    q1, _, q3 = statistics.quantiles(s1, n=4, method="inclusive")
    expected = sum(1 for v in s1 if v < q1 - 1.5 * (q3 - q1) or v > q3 + 1.5 * (q3 - q1))
    assert narrow["perFeature"]["s1"] == expected


def test_outlier_row_list_is_capped_but_counted(tmp_path: Path) -> None:
    data = tmp_path / "many.csv"
    data.write_text("x\n" + "0\n" * 4000 + "1\n" * 1100)  # IQR 0: every 1 is an outlier
    found = analyze_dataset(data)["outliers"]
    assert found["count"] == 1100
    assert len(found["rows"]) == MAX_OUTLIER_ROWS
    assert found["rows"][0] == 4000
    assert found["truncated"] is True


def test_excluded_columns_and_metrics() -> None:
    report = analyze_dataset(SENSORS_CSV, slices=["site"], exclude_columns=["id", "note"])
    assert set(report["features"]) == {"site", "temp_c", "humidity", "ok"}
    assert set(report["slices"]["site"]["north"]["features"]) == {"temp_c", "humidity", "ok"}
    assert report["dataset"]["columns"][0] == "id"  # still listed as a column of the data
    metrics = analysis_metrics(report)
    assert metrics["rows"] == 30
    assert metrics["outlierRows"] == 1
    assert metrics["outliers.temp_c"] == 1
    assert metrics["missing.humidity"] == 1
    assert all(math.isfinite(v) for v in metrics.values())


def test_missing_slice_values_get_the_null_key(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("g,v\na,1\n,2\nNA,3\na,4\n")
    family = analyze_dataset(data, slices=["g"])["slices"]["g"]
    assert {k: e["rows"] for k, e in family.items()} == {"a": 2, "null": 2}
    assert family["null"]["features"]["v"]["mean"] == 2.5


# --------------------------------------------------------------------------- errors
def test_unknown_columns_and_settings_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="'nope' not in the dataset"):
        analyze_dataset(SENSORS_CSV, slices=["nope"])
    with pytest.raises(UsageError, match="exclude_columns"):
        analyze_dataset(SENSORS_CSV, exclude_columns=["nope"])
    with pytest.raises(UsageError, match="unknown outlier method"):
        analyze_dataset(SENSORS_CSV, outliers="mad")
    with pytest.raises(UsageError, match="positive"):
        analyze_dataset(SENSORS_CSV, threshold=0)
    with pytest.raises(UsageError, match="positive"):
        analyze_dataset(SENSORS_CSV, threshold=math.nan)
    wide = tmp_path / "wide.csv"
    wide.write_text("id\n" + "".join(f"{i}\n" for i in range(101)))
    with pytest.raises(UsageError, match="more than 100 distinct"):
        analyze_dataset(wide, slices=["id"])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("ragged.csv", "a,b\n1,2\n3\n", "ragged.csv:3: 1 fields, the header has 2"),
        ("dup.csv", "a,a\n1,2\n", "appears twice"),
        ("empty.csv", "", "empty file"),
        ("quote.csv", 'a,b\n"1,2\n', "malformed CSV"),
        ("list.jsonl", '{"a": 1}\n[1]\n', "list.jsonl:2: expected a JSON object"),
        ("nested.jsonl", '{"a": {"b": 1}}\n', "nested dict"),
        ("dupkey.jsonl", '{"a": 1, "a": 2}\n', "duplicate key"),
        ("nan.jsonl", '{"a": NaN}\n', "non-standard JSON constant"),
    ],
)
def test_malformed_data_is_bad_input(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(BadInputError, match=message):
        analyze_dataset(path)


def test_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such file"):
        analyze_dataset(tmp_path / "missing.csv")
    with pytest.raises(BadInputError, match="is a directory"):
        analyze_dataset(tmp_path)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("name\nJos\xe9\n".encode("latin-1"))
    with pytest.raises(BadInputError, match="not UTF-8"):
        analyze_dataset(latin)


def test_reader_limit_and_columns(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"a": 1}\n{"a": 2, "b": "x"}\n\n{"c": true}\n')
    with TabularReader(data, limit=2) as reader:
        rows = list(reader)
        assert reader.columns == ["a", "b"]  # the third row's key is never read
        assert reader.sha256 is None  # not read to the end
    assert rows == [{"a": 1}, {"a": 2, "b": "x"}]
    assert read_columns(data) == ["a", "b", "c"]
    sniffed = tmp_path / "records.data"
    sniffed.write_text('{"a": 1}\n')
    assert analyze_dataset(sniffed)["dataset"]["format"] == "jsonl"


# ------------------------------------------------------------------- transformation
def test_remove_outliers_writes_the_clean_dataset(
    tmp_path: Path, diabetes: tuple[Path, list[str], list[list[float]]]
) -> None:
    path, _, _ = diabetes
    report = analyze_dataset(path)
    out = tmp_path / "clean.csv"
    record = remove_outliers(path, out, report, mappings={"sex": {"1": 0, "2": 1}})
    removed = report["outliers"]["count"]
    assert record["input"] == {"rows": 442, "sha256": report["dataset"]["sha256"]}
    assert record["output"] == {
        "rows": 442 - removed,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
    }
    assert record["outliersRemoved"]["rows"] == removed
    assert record["outliersRemoved"]["perFeature"] == report["outliers"]["perFeature"]
    assert record["mappings"] == {"sex": {"1": 0, "2": 1}}
    with path.open() as fh:
        original = list(csv.reader(fh))
    with out.open() as fh:
        kept = list(csv.reader(fh))
    flagged = set(report["outliers"]["rows"])
    assert kept == [original[0]] + [r for i, r in enumerate(original[1:]) if i not in flagged]


def test_remove_outliers_jsonl_and_refuses_a_foreign_report(tmp_path: Path) -> None:
    out = tmp_path / "clean.jsonl"
    record = remove_outliers(SENSORS_JSONL, out, analyze_dataset(SENSORS_JSONL))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 29 == record["output"]["rows"]
    assert all(r["temp_c"] < 90 for r in lines)
    with pytest.raises(BadInputError, match="describes other data"):
        remove_outliers(SENSORS_CSV, tmp_path / "x.csv", analyze_dataset(SENSORS_JSONL))
    assert not (tmp_path / "x.csv").exists()


# ------------------------------------------------------------------------------ CLI
def test_cli_analyze_json_and_out(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "analysis.json"
    args = [str(SENSORS_CSV), "--slice", "site", "--outliers", "zscore", "--exclude-column", "id"]
    result = CliRunner().invoke(analyze, [*args, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == json.loads(out.read_text())
    assert printed["outliers"]["method"] == "zscore"
    assert printed["outliers"]["rows"] == [PLANTED]
    assert set(printed["slices"]["site"]) == {"north", "south", "east"}
    assert f"wrote {out}" in result.stderr


def test_cli_analyze_human_summary() -> None:
    result = CliRunner().invoke(analyze, [str(SENSORS_CSV), "--slice", "site", "--threshold", "3"])
    assert result.exit_code == 0, result.output
    assert "30 rows, 6 columns" in result.stdout
    assert "slice site: east (10 rows), north (10 rows), south (10 rows)" in result.stdout
    assert "outliers (iqr, threshold 3): 1 rows; temp_c 1" in result.stdout


def _register(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the data commands the way the lead wires them into cli/main.py."""
    monkeypatch.setitem(cli_main.COMMANDS, "analyze", ("data_cmd", "analyze", "Analyze data."))


def test_cli_analyze_exit_codes_through_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _register(monkeypatch)
    bad = tmp_path / "ragged.csv"
    bad.write_text("a,b\n1\n")
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["analyze", str(bad), "--json"])
    assert exit_info.value.code == 3
    out, err = capsys.readouterr()
    assert json.loads(out)["exitCode"] == 3
    assert "1 fields, the header has 2" in err and "Traceback" not in out + err
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["analyze", str(SENSORS_CSV), "--slice", "nope"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["analyze", str(SENSORS_CSV), "--outliers", "mad"])
    assert exit_info.value.code == 2
