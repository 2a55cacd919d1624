"""``mlspec-attest objectives init|lint|check`` and ``verify --baseline`` / objectives in ``--json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.errors import ExitCode

from ..mlpipeline import CHANGE_CRITERION, OBJECTIVES_YAML, MLPipeline
from ..support import KeyPair
from .conftest import Cli

CHECK_SCHEMA = "https://mlspec-attest.dev/objectives-check/v1"

TEST_EVIDENCE: dict[str, Any] = {
    "metrics": {"mae": 50.0, "r2": 0.45},
    "slices": {
        "sex": {
            "F": {"count": 60, "metrics": {"mae": 48.0}},
            "M": {"count": 55, "metrics": {"mae": 53.0}},
        }
    },
}
EVALUATE_EVIDENCE: dict[str, Any] = {
    "metrics": {"mae": 49.0, "baseline_mae": 70.0},
    "slices": TEST_EVIDENCE["slices"],
}


@pytest.fixture
def template(cli: Cli, tmp_path: Path) -> Path:
    result = cli("objectives", "init")
    assert result.code == 0
    path = tmp_path / "objectives.yaml"
    path.write_text(result.out)
    return path


def write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def evidence(tmp_path: Path) -> list[str]:
    test = write_json(tmp_path / "test-metrics.json", TEST_EVIDENCE)
    evaluate = write_json(tmp_path / "evaluate-metrics.json", EVALUATE_EVIDENCE)
    return ["--evidence", f"test={test}", "--evidence", f"evaluate={evaluate}"]


# -- init / lint ----------------------------------------------------------------------
def test_init_prints_a_template_that_lint_accepts(cli: Cli, template: Path) -> None:
    text = template.read_text()
    assert "kind: Objectives" in text
    assert "criteria:" in text
    result = cli("objectives", "lint", template)
    assert result.code == 0, result.err
    assert "ok (diabetes-progression v2026.11-1, 5 criteria)" in result.err
    assert result.clean


def test_lint_of_a_broken_file_exits_3_with_the_line(
    cli: Cli, template: Path, tmp_path: Path
) -> None:
    lines = template.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == "max: 60")
    lines.insert(at + 1, "    maximum: 60")
    broken = tmp_path / "broken.yaml"
    broken.write_text("\n".join(lines) + "\n")
    result = cli("objectives", "lint", broken)
    assert result.code == ExitCode.BAD_INPUT
    assert f"line {at + 2}: criteria/0/maximum: unknown field 'maximum'" in result.err
    assert result.clean


def test_lint_of_invalid_yaml_exits_3_with_the_line(cli: Cli, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: mlspec-attest/v1\nkind: Objectives\ncriteria: [\n  - a: b\n")
    result = cli("objectives", "lint", broken)
    assert result.code == ExitCode.BAD_INPUT
    assert "not valid YAML" in result.err
    assert "line " in result.err
    assert result.clean


def test_lint_reports_every_problem(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "o.yaml"
    path.write_text(
        OBJECTIVES_YAML
        + "  - id: holdback-mae\n    stage: test\n    metric: r2\n    min: 0.9\n    max: 0.1\n"
    )
    result = cli("objectives", "lint", path)
    assert result.code == ExitCode.BAD_INPUT
    assert "duplicate criterion id 'holdback-mae'" in result.err
    assert "min 0.9 is above max 0.1" in result.err


def test_lint_of_a_missing_file(cli: Cli, tmp_path: Path) -> None:
    result = cli("objectives", "lint", tmp_path / "absent.yaml")
    assert result.code == ExitCode.BAD_INPUT
    assert "not found" in result.err


# -- check ----------------------------------------------------------------------------
def test_check_exits_0_when_every_criterion_is_met(
    cli: Cli, template: Path, evidence: list[str]
) -> None:
    result = cli("objectives", "check", template, *evidence)
    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    assert len(lines) == 5
    assert all(line.startswith("[pass]") for line in lines)
    assert any("sex-fairness-gap" in line and "gap=5" in line for line in lines)


def test_check_exits_1_when_a_criterion_is_not_met(
    cli: Cli, template: Path, tmp_path: Path, evidence: list[str]
) -> None:
    worse = write_json(
        tmp_path / "worse.json", {**TEST_EVIDENCE, "metrics": {"mae": 75.0, "r2": 0.45}}
    )
    result = cli("objectives", "check", template, *evidence[2:], "--evidence", f"test={worse}")
    assert result.code == ExitCode.DENIED
    failed = [line for line in result.out.splitlines() if line.startswith("[FAIL]")]
    assert len(failed) == 1
    assert "holdback-mae" in failed[0]
    assert "mae=75" in failed[0]


def test_check_json(cli: Cli, template: Path, evidence: list[str]) -> None:
    result = cli("objectives", "check", template, *evidence, "--json")
    assert result.code == 0
    doc = result.json()
    assert doc["schemaVersion"] == CHECK_SCHEMA
    assert doc["objectives"] == {"name": "diabetes-progression", "version": "2026.11-1"}
    assert doc["passed"] is True
    assert [c["id"] for c in doc["criteria"]] == [
        "holdback-mae",
        "holdback-r2",
        "sex-fairness-gap",
        "validation-every-sex",
        "beats-mean-baseline",
    ]
    first = doc["criteria"][0]
    assert first["result"] == "pass"
    assert first["expression"] == 'metrics["mae"] <= 60.0'
    assert first["observed"] == {"mae": 50.0}
    assert first["evidence"].startswith("file:")


def test_check_json_when_not_met(
    cli: Cli, template: Path, tmp_path: Path, evidence: list[str]
) -> None:
    unfair = json.loads(json.dumps(TEST_EVIDENCE))
    unfair["slices"]["sex"]["M"]["metrics"]["mae"] = 60.0
    path = write_json(tmp_path / "unfair.json", unfair)
    result = cli(
        "objectives", "check", template, *evidence[2:], f"--evidence=test={path}", "--json"
    )
    assert result.code == ExitCode.DENIED
    doc = result.json()
    assert doc["passed"] is False
    results = {c["id"]: c["result"] for c in doc["criteria"]}
    assert results["sex-fairness-gap"] == "fail"
    assert list(results.values()).count("fail") == 1


def test_check_judges_only_stages_with_evidence(
    cli: Cli, template: Path, tmp_path: Path, evidence: list[str]
) -> None:
    result = cli("objectives", "check", template, *evidence[:2], "--json")  # test only
    assert result.code == 0, result.out
    doc = result.json()
    assert {c["stage"] for c in doc["criteria"]} == {"test"}
    assert len(doc["criteria"]) == 3
    assert doc["skipped"] == ["validation-every-sex", "beats-mean-baseline"]
    text = cli("objectives", "check", template, *evidence[:2])
    assert "[skip] validation-every-sex" in text.out
    # a skipped stage does not hide a failure of a judged one
    worse = write_json(tmp_path / "worse.json", {**TEST_EVIDENCE, "metrics": {"mae": 99.0}})
    denied = cli("objectives", "check", template, "--evidence", f"test={worse}", "--json")
    assert denied.code == ExitCode.DENIED
    failed = {c["id"] for c in denied.json()["criteria"] if c["result"] == "fail"}
    assert failed == {"holdback-mae", "holdback-r2"}  # r2 is missing: fails closed


def test_check_refuses_non_finite_evidence(cli: Cli, template: Path, tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text('{"metrics": {"mae": NaN, "r2": 0.5}}')
    result = cli("objectives", "check", template, "--evidence", f"test={path}")
    assert result.code == ExitCode.BAD_INPUT
    assert result.clean


def test_check_with_baseline_metrics(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "o.yaml"
    path.write_text(OBJECTIVES_YAML + CHANGE_CRITERION)
    current = write_json(tmp_path / "current.json", {"mae": 49.0, "baseline_mae": 70.0})
    evaluate = ["--evidence", f"evaluate={current}"]
    base_ok = write_json(tmp_path / "base-ok.json", {"mae": 48.5})
    base_better = write_json(tmp_path / "base-better.json", {"mae": 45.0})

    def no_regression(*extra: str) -> tuple[int, dict[str, Any]]:
        result = cli("objectives", "check", path, *evaluate, *extra, "--json")
        doc = result.json()
        return result.code, next(c for c in doc["criteria"] if c["id"] == "no-regression")

    _, missing = no_regression()
    assert missing["result"] == "fail"
    assert "no baseline metrics" in missing["message"]
    _, ok = no_regression("--baseline-metrics", str(base_ok))
    assert ok["result"] == "pass"
    assert ok["observed"] == {"mae": 49.0, "baseline.mae": 48.5}
    _, regressed = no_regression("--baseline-metrics", str(base_better))
    assert regressed["result"] == "fail"


def test_check_evidence_must_be_stage_equals_file(cli: Cli, template: Path) -> None:
    result = cli("objectives", "check", template, "--evidence", "test")
    assert result.code == ExitCode.USAGE
    assert "KEY=VALUE" in result.err


# -- verify ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ml_honest(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> MLPipeline:
    """Read-only: shared by the tests that only verify it."""
    return MLPipeline(tmp_path_factory.mktemp("honest"), keys).run()


def test_verify_json_contains_objective_results(cli: Cli, ml_honest: MLPipeline) -> None:
    result = cli(*ml_honest.cli_verify_args("--json"))
    assert result.code == 0, result.out
    doc = result.json()
    assert doc["result"] == "PASSED"
    objectives = doc["objectives"]
    assert [o["id"] for o in objectives] == [
        "holdback-mae",
        "holdback-r2",
        "sex-gap",
        "validation-every-sex",
        "beats-mean-baseline",
    ]
    assert all(o["result"] == "pass" for o in objectives)
    assert all(o["evidence"].startswith("sha256:") for o in objectives)
    assert objectives[2]["observed"] == {"sex=F": 48.0, "sex=M": 53.0, "gap": 5.0}


def test_verify_text_lists_the_launch_criteria(cli: Cli, ml_honest: MLPipeline) -> None:
    result = cli(*ml_honest.cli_verify_args())
    assert result.code == 0
    assert "launch criteria:" in result.out
    assert "[pass] sex-gap" in result.out


@pytest.fixture(scope="module")
def with_change(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> MLPipeline:
    root = tmp_path_factory.mktemp("with-change")
    return MLPipeline(root, keys, objectives=OBJECTIVES_YAML + CHANGE_CRITERION).run()


def test_verify_baseline_flag(cli: Cli, with_change: MLPipeline) -> None:
    without = cli(*with_change.cli_verify_args("--json"))
    assert without.code == ExitCode.DENIED
    [failure] = without.json()["failures"]
    assert failure["check"] == "objective"
    assert "no-regression" in failure["message"]

    baseline = with_change.baseline_bundle({"metrics": {"mae": 48.5}})
    with_baseline = cli(*with_change.cli_verify_args("--baseline", str(baseline), "--json"))
    assert with_baseline.code == 0, with_baseline.out
    doc = with_baseline.json()
    assert doc["failures"] == []
    result = next(o for o in doc["objectives"] if o["id"] == "no-regression")
    assert result["result"] == "pass"
    assert result["observed"] == {"mae": 49.0, "baseline.mae": 48.5}
    assert any("baseline-run" in note for note in doc["notes"])


def test_verify_baseline_signed_by_an_unknown_key(cli: Cli, with_change: MLPipeline) -> None:
    baseline = with_change.baseline_bundle(
        {"metrics": {"mae": 48.5}}, signer=with_change.keys["intruder"]
    )
    result = cli(*with_change.cli_verify_args("--baseline", str(baseline), "--json"))
    assert result.code == ExitCode.DENIED
    checks = {f["check"] for f in result.json()["failures"]}
    assert checks == {"baseline", "objective"}
