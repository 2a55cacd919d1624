"""Codified objectives: every criterion kind, failing closed, and the document's validation.

Evidence objects are built directly (NaN and infinities included: signing
refuses them, so only a direct construction reaches the evaluator with one).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.attestation.stage import StageRecord, sign_stage
from mlspec_attest.errors import MalformedDocumentError, PolicyError, UsageError
from mlspec_attest.policy.criteria import (
    CriterionResult,
    Evidence,
    evaluate_criterion,
    evidence_from_metrics_files,
)
from mlspec_attest.policy.objectives import (
    evaluate_objectives,
    load_objectives,
    load_objectives_text,
    looks_like_objectives,
    parse_objectives,
)
from mlspec_attest.policy.templates import template_text
from mlspec_attest.store.ledger import AttestationStore

from .support import FakeClock, KeyPair

DIGEST = "sha256:" + "ab" * 32

SLICES: dict[str, Any] = {
    "sex": {
        "F": {"count": 60, "metrics": {"mae": 48.0}},
        "M": {"count": 55, "metrics": {"mae": 53.0}},
        "X": {"count": 3, "metrics": {"mae": 95.0}},
    }
}


def evidence(
    metrics: dict[str, Any] | None = None,
    slices: dict[str, Any] | None = None,
    stage: str = "test",
) -> dict[str, Evidence]:
    ev = Evidence(
        stage,
        {"mae": 50.0, "r2": 0.45, "rows": 7} if metrics is None else metrics,
        SLICES if slices is None else slices,
        digest=DIGEST,
    )
    return {stage: ev}


def with_slice_value(family: str, value: str, metric: str, number: float) -> dict[str, Any]:
    slices = copy.deepcopy(SLICES)
    slices[family][value]["metrics"][metric] = number
    return slices


def document(*criteria: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mlspec-attest/v1",
        "kind": "Objectives",
        "metadata": {"name": "unit", "version": "1"},
        "criteria": list(criteria),
    }


def run(
    criterion: dict[str, Any],
    ev: dict[str, Evidence] | None = None,
    *,
    baseline: dict[str, float] | None = None,
    stages: dict[str, Any] | None = None,
) -> CriterionResult:
    """Validate the criterion as a document would be, then evaluate it."""
    objectives = parse_objectives(document({"id": "c1", "stage": "test", **criterion}))
    [result] = evaluate_objectives(
        objectives, evidence() if ev is None else ev, baseline=baseline, stages=stages
    )
    return result


def problems_of(doc: Any) -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_objectives(doc)
    return info.value.problems


# -- threshold ---------------------------------------------------------------------
def test_threshold_max_passes_with_full_record() -> None:
    result = run({"metric": "mae", "max": 60})
    assert result.passed
    assert (result.id, result.kind, result.stage) == ("c1", "threshold", "test")
    assert result.expression == 'metrics["mae"] <= 60.0'
    assert result.threshold == "<= 60"
    assert result.observed == {"mae": 50.0}
    assert result.evidence == DIGEST
    assert result.message == "met: mae=50"
    doc = result.to_json()
    assert doc["result"] == "pass"
    assert set(doc) == {
        "id",
        "kind",
        "stage",
        "result",
        "message",
        "expression",
        "threshold",
        "observed",
        "evidence",
    }


def test_threshold_max_fails() -> None:
    result = run({"metric": "mae", "max": 45})
    assert not result.passed
    assert result.message == "not met: mae=50"
    assert result.observed == {"mae": 50.0}
    assert result.expression == 'metrics["mae"] <= 45.0'
    assert result.to_json()["result"] == "fail"


def test_threshold_bounds_are_inclusive() -> None:
    assert run({"metric": "mae", "max": 50}).passed
    assert run({"metric": "mae", "min": 50}).passed
    assert not run({"metric": "mae", "max": 49.999}).passed


def test_threshold_min_passes_and_fails() -> None:
    ok = run({"metric": "r2", "min": 0.3})
    assert ok.passed
    assert ok.expression == 'metrics["r2"] >= 0.3'
    assert ok.threshold == ">= 0.3"
    bad = run({"metric": "r2", "min": 0.5})
    assert not bad.passed
    assert bad.observed == {"r2": 0.45}


def test_threshold_min_and_max_together() -> None:
    result = run({"metric": "r2", "min": 0.3, "max": 0.9})
    assert result.passed
    assert result.expression == 'metrics["r2"] >= 0.3 && metrics["r2"] <= 0.9'
    assert result.threshold == ">= 0.3 and <= 0.9"
    assert not run({"metric": "r2", "min": 0.3, "max": 0.4}).passed


def test_threshold_integer_metric_against_integer_bound() -> None:
    # an int metric and an int bound both become doubles: no int/double trap
    assert run({"metric": "rows", "max": 7}).passed
    assert not run({"metric": "rows", "max": 6}).passed


def test_threshold_missing_metric_fails_closed() -> None:
    result = run({"metric": "rmse", "max": 60})
    assert not result.passed
    assert result.message == "metric 'rmse' missing from test's attestation"
    assert result.evidence == DIGEST


@pytest.mark.parametrize(
    ("value", "shown"), [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")]
)
@pytest.mark.parametrize("bound", [{"max": 60}, {"min": 0}])
def test_threshold_non_finite_fails_naming_the_value(
    value: float, shown: str, bound: dict[str, float]
) -> None:
    result = run({"metric": "mae", **bound}, evidence({"mae": value}))
    assert not result.passed
    assert f"metric 'mae' in test's attestation is not finite ({shown})" in result.message
    assert list(result.observed) == ["mae"]


def test_threshold_non_number_metric_fails() -> None:
    result = run({"metric": "mae", "max": 60}, evidence({"mae": "fifty"}))
    assert not result.passed
    assert "is not a number ('fifty')" in result.message


def test_stage_without_evidence_fails_closed() -> None:
    result = run({"metric": "mae", "max": 60}, evidence(stage="evaluate"))
    assert not result.passed
    assert result.message == "no verified attestation of stage 'test' to take metrics from"
    assert result.evidence == ""


# -- change ------------------------------------------------------------------------
def change(metric: str, direction: str, max_worsening: float, **extra: Any) -> dict[str, Any]:
    return {
        "change": {
            "metric": metric,
            "direction": direction,
            "maxWorsening": max_worsening,
            **extra,
        }
    }


def test_change_absolute_lower_is_better() -> None:
    crit = change("mae", "lower-is-better", 1.0)
    ok = run(crit, baseline={"mae": 49.5})  # worsened by 0.5
    assert ok.passed
    assert ok.kind == "change"
    assert ok.expression == '(metrics["mae"] - baseline["mae"]) <= 1.0'
    assert ok.threshold == "worsening <= 1.0"
    assert ok.observed == {"mae": 50.0, "baseline.mae": 49.5}
    assert ok.evidence == DIGEST
    bad = run(crit, baseline={"mae": 48.0})  # worsened by 2
    assert not bad.passed
    assert bad.observed == {"mae": 50.0, "baseline.mae": 48.0}


def test_change_absolute_higher_is_better() -> None:
    crit = change("r2", "higher-is-better", 0.1)
    ok = run(crit, baseline={"r2": 0.5})  # dropped by 0.05
    assert ok.passed
    assert ok.expression == '(baseline["r2"] - metrics["r2"]) <= 0.1'
    assert not run(crit, baseline={"r2": 0.6}).passed  # dropped by 0.15
    # direction matters: the same numbers judged lower-is-better are an improvement
    assert run(change("r2", "lower-is-better", 0.0), baseline={"r2": 0.6}).passed
    assert not run(change("r2", "higher-is-better", 0.0), baseline={"r2": 0.6}).passed


def test_change_negative_max_worsening_demands_improvement() -> None:
    crit = change("mae", "lower-is-better", -1.0)
    assert run(crit, baseline={"mae": 52.0}).passed  # improved by 2
    assert not run(crit, baseline={"mae": 50.5}).passed  # improved by only 0.5


def test_change_relative_lower_is_better() -> None:
    # 50 vs 48: worsened by 2, i.e. 2/48 = 4.2 %
    ok = run(change("mae", "lower-is-better", 0.05, relative=True), baseline={"mae": 48.0})
    assert ok.passed
    assert ok.expression == '(metrics["mae"] - baseline["mae"]) / abs(baseline["mae"]) <= 0.05'
    assert ok.threshold == "worsening <= 0.05 (relative)"
    bad = run(change("mae", "lower-is-better", 0.04, relative=True), baseline={"mae": 48.0})
    assert not bad.passed


def test_change_relative_higher_is_better() -> None:
    # 0.45 vs 0.5: dropped by 10 %
    assert run(change("r2", "higher-is-better", 0.11, relative=True), baseline={"r2": 0.5}).passed
    assert not run(
        change("r2", "higher-is-better", 0.09, relative=True), baseline={"r2": 0.5}
    ).passed


def test_change_relative_uses_the_baseline_magnitude() -> None:
    # a negative baseline: -10 -> -12 is a 20 % worsening of a higher-is-better metric
    ev = evidence({"profit": -12.0})
    crit = change("profit", "higher-is-better", 0.25, relative=True)
    assert run(crit, ev, baseline={"profit": -10.0}).passed
    crit = change("profit", "higher-is-better", 0.15, relative=True)
    assert not run(crit, ev, baseline={"profit": -10.0}).passed


def test_change_without_baseline_fails_closed() -> None:
    result = run(change("mae", "lower-is-better", 100.0), baseline=None)
    assert not result.passed
    assert "no baseline metrics" in result.message
    assert "(baseline) or metrics (baseline_metrics)" in result.message


def test_change_metric_missing_from_baseline_fails() -> None:
    result = run(change("mae", "lower-is-better", 100.0), baseline={"r2": 0.5})
    assert not result.passed
    assert result.message == "metric 'mae' missing from the baseline attestation"


def test_change_metric_missing_from_evidence_fails() -> None:
    result = run(change("rmse", "lower-is-better", 100.0), baseline={"rmse": 1.0})
    assert not result.passed
    assert result.message == "metric 'rmse' missing from test's attestation"


def test_change_relative_with_zero_baseline_fails() -> None:
    crit = change("mae", "lower-is-better", 100.0, relative=True)
    result = run(crit, baseline={"mae": 0.0})
    assert not result.passed
    assert result.message == "relative change undefined: baseline mae is 0"
    assert result.observed == {"mae": 50.0}
    # an absolute change from 0 is well defined
    assert run(change("mae", "lower-is-better", 100.0), baseline={"mae": 0.0}).passed


@pytest.mark.parametrize(("value", "shown"), [(math.nan, "nan"), (math.inf, "inf")])
def test_change_non_finite_fails_naming_the_value(value: float, shown: str) -> None:
    crit = change("mae", "lower-is-better", 1.0)
    current = run(crit, evidence({"mae": value}), baseline={"mae": 50.0})
    assert not current.passed
    assert f"in test's attestation is not finite ({shown})" in current.message
    base = run(crit, baseline={"mae": value})
    assert not base.passed
    assert f"metric 'mae' in the baseline attestation is not finite ({shown})" in base.message


# -- gap ---------------------------------------------------------------------------
def gap(max_gap: float, **extra: Any) -> dict[str, Any]:
    return {"gap": {"family": "sex", "metric": "mae", "max": max_gap, **extra}}


def test_gap_passes_and_skips_small_slices() -> None:
    result = run(gap(8, minCount=20))
    assert result.passed
    assert result.kind == "gap"
    listing = 'slices["sex"]["F"]["mae"], slices["sex"]["M"]["mae"]'
    assert result.expression == f"max([{listing}]) - min([{listing}]) <= 8.0"
    assert result.threshold == "gap <= 8"
    assert result.observed == {"sex=F": 48.0, "sex=M": 53.0, "gap": 5.0}
    assert result.evidence == DIGEST
    assert "skipped for support < 20: X" in result.message


def test_gap_fails() -> None:
    result = run(gap(4, minCount=20))
    assert not result.passed
    assert result.message.startswith("not met:")
    assert "gap=5" in result.message
    assert result.observed["gap"] == 5.0


def test_gap_min_count_is_what_excludes_the_small_slice() -> None:
    # without minCount the 3-row slice X (mae 95) counts and blows the gap
    result = run(gap(8))
    assert not result.passed
    assert result.observed["gap"] == 47.0
    assert "sex=X" in result.observed


def test_gap_exclude_list() -> None:
    result = run(gap(8, exclude=["X"]))
    assert result.passed
    assert "sex=X" not in result.observed
    assert "X" not in result.expression
    # excluding a real slice leaves one: fewer than two is a failure
    assert not run(gap(8, exclude=["X", "M"])).passed


def test_gap_needs_two_eligible_slices() -> None:
    result = run(gap(100, minCount=56))  # only F (60 rows) is large enough
    assert not result.passed
    assert "1 slice(s) of 'sex' with count >= 56; need at least 2" in result.message
    assert "skipped for support < 56: M, X" in result.message


def test_gap_missing_family_fails() -> None:
    result = run({"gap": {"family": "age", "metric": "mae", "max": 8}})
    assert not result.passed
    assert result.message == "slice family 'age' missing from test's attestation"


def test_gap_missing_slice_metric_fails() -> None:
    slices = copy.deepcopy(SLICES)
    del slices["sex"]["M"]["metrics"]["mae"]
    result = run(gap(8, minCount=20), evidence(slices=slices))
    assert not result.passed
    assert result.message == "metric 'mae' missing from slice sex=M of test's attestation"


@pytest.mark.parametrize(("value", "shown"), [(math.nan, "nan"), (-math.inf, "-inf")])
def test_gap_non_finite_slice_fails_naming_the_value(value: float, shown: str) -> None:
    result = run(gap(8, minCount=20), evidence(slices=with_slice_value("sex", "F", "mae", value)))
    assert not result.passed
    assert f"metric 'mae' in slice sex=F of test's attestation is not finite ({shown})" in (
        result.message
    )


# -- eachSlice ---------------------------------------------------------------------
def each(**bounds: Any) -> dict[str, Any]:
    return {"eachSlice": {"family": "sex", "metric": "mae", "minCount": 20, **bounds}}


def test_each_slice_passes() -> None:
    result = run(each(max=60))
    assert result.passed
    assert result.kind == "eachSlice"
    assert result.expression == (
        'slices["sex"]["F"]["mae"] <= 60.0 && slices["sex"]["M"]["mae"] <= 60.0'
    )
    assert result.threshold == "each slice <= 60"
    assert result.observed == {"sex=F": 48.0, "sex=M": 53.0}
    assert result.evidence == DIGEST


def test_each_slice_fails_on_one_slice() -> None:
    result = run(each(max=50))  # M is 53
    assert not result.passed
    assert result.message.startswith("not met:")
    assert not run(each(min=49)).passed  # F is 48
    assert run(each(min=40, max=55)).passed


def test_each_slice_missing_slice_metric_fails() -> None:
    slices = copy.deepcopy(SLICES)
    slices["sex"]["F"]["metrics"] = {"rmse": 3.0}
    result = run(each(max=60), evidence(slices=slices))
    assert not result.passed
    assert result.message == "metric 'mae' missing from slice sex=F of test's attestation"


def test_each_slice_with_no_eligible_slice_fails() -> None:
    result = run(each(max=60, minCount=1000))
    assert not result.passed
    assert "0 slice(s) of 'sex' with count >= 1000; need at least 1" in result.message


def test_each_slice_missing_family_fails() -> None:
    result = run(each(max=60), evidence(slices={}))
    assert not result.passed
    assert "slice family 'sex' missing" in result.message


@pytest.mark.parametrize(("value", "shown"), [(math.nan, "nan"), (math.inf, "inf")])
def test_each_slice_non_finite_fails_naming_the_value(value: float, shown: str) -> None:
    result = run(each(max=60), evidence(slices=with_slice_value("sex", "M", "mae", value)))
    assert not result.passed
    assert f"slice sex=M of test's attestation is not finite ({shown})" in result.message


# -- expr --------------------------------------------------------------------------
def test_expr_passes_and_fails() -> None:
    ok = run({"expr": 'metrics["mae"] < 55.0 && metrics["r2"] > 0.4'})
    assert ok.passed
    assert ok.kind == "expr"
    assert ok.expression == 'metrics["mae"] < 55.0 && metrics["r2"] > 0.4'
    assert ok.threshold == "expression is true"
    assert ok.evidence == DIGEST
    assert ok.message == "met"
    bad = run({"expr": 'metrics["mae"] < 45.0'})
    assert not bad.passed
    assert bad.message == 'not met; observed: metrics["mae"] = 50.0'  # every term it read
    missing = run({"expr": 'metrics["mae"] < 45.0 || metrics["nope"] < 1.0'})
    assert not missing.passed
    assert missing.message.endswith(
        'observed: metrics["mae"] = 50.0, metrics["nope"] = missing value: no such key'
    )


def test_expr_sees_slices_counts_baseline_and_stages() -> None:
    assert run({"expr": 'slices["sex"]["F"]["mae"] < slices["sex"]["M"]["mae"]'}).passed
    assert run({"expr": 'counts["sex"]["F"] >= 60'}).passed
    assert not run({"expr": 'counts["sex"]["X"] >= 20'}).passed
    assert run({"expr": 'metrics["mae"] <= baseline["mae"]'}, baseline={"mae": 51.0}).passed
    assert not run({"expr": 'metrics["mae"] <= baseline["mae"]'}, baseline={"mae": 49.0}).passed
    stages = {"train": {"parameters": {"seed": 7}}}
    assert run({"expr": 'stages.train.parameters["seed"] == 7'}, stages=stages).passed


def test_expr_integer_metrics_are_doubles() -> None:
    # metrics arrive as ints when whole (RFC 8785 writes 7.0 as 7); criteria see doubles
    assert run({"expr": 'metrics["rows"] == 7.0'}).passed


def test_expr_syntax_error_is_rejected_at_parse_time() -> None:
    problems = problems_of(document({"id": "c1", "stage": "test", "expr": 'metrics["mae"] <'}))
    assert len(problems) == 1
    assert problems[0].startswith("criteria/0/expr: invalid CEL expression")


def test_expr_runtime_missing_key_fails() -> None:
    result = run({"expr": 'metrics["nope"] < 1.0'})
    assert not result.passed
    assert result.message.startswith("cannot evaluate: missing value")
    assert result.evidence == DIGEST


def test_expr_int_versus_double_gives_a_hint() -> None:
    result = run({"expr": 'metrics["mae"] == 50'})
    assert not result.passed
    assert "CEL compares integers and doubles strictly" in result.message
    assert run({"expr": 'metrics["mae"] == 50.0'}).passed


def test_expr_non_boolean_fails() -> None:
    result = run({"expr": 'metrics["mae"] + 1.0'})
    assert not result.passed
    assert "not a boolean" in result.message


@pytest.mark.parametrize(
    ("ev", "baseline", "path"),
    [
        (evidence({"mae": math.nan, "r2": 0.4}), None, "metrics.mae"),
        (evidence({"mae": 50.0, "r2": math.inf}), None, "metrics.r2"),
        (evidence(slices=with_slice_value("sex", "F", "mae", math.nan)), None, "slices.sex.F.mae"),
        (evidence(), {"mae": -math.inf}, "baseline.mae"),
    ],
)
def test_expr_non_finite_evidence_fails_closed(
    ev: dict[str, Evidence], baseline: dict[str, float] | None, path: str
) -> None:
    # the expression does not even read the bad value: any NaN/inf fails it
    result = run({"expr": "true"}, ev, baseline=baseline)
    assert not result.passed
    assert "non-finite" in result.message
    assert path in result.message


def test_nan_cannot_pass_a_negated_comparison() -> None:
    # NaN compares false both ways; !(x > 60.0) would let it through if it reached CEL
    result = run({"expr": '!(metrics["mae"] > 60.0)'}, evidence({"mae": math.nan}))
    assert not result.passed


# -- documents ---------------------------------------------------------------------
def test_one_result_per_criterion_in_order() -> None:
    objectives = parse_objectives(
        document(
            {"id": "b", "stage": "test", "metric": "mae", "max": 60},
            {"id": "a", "stage": "test", "metric": "mae", "max": 1},
            {"id": "c", "stage": "evaluate", "expr": "true"},
        )
    )
    results = evaluate_objectives(objectives, evidence())
    assert [(r.id, r.passed) for r in results] == [("b", True), ("a", False), ("c", False)]
    assert objectives.stages() == {"test", "evaluate"}
    assert (objectives.name, objectives.version) == ("unit", "1")


def test_evaluate_criterion_directly() -> None:
    result = evaluate_criterion(
        {"id": "x", "stage": "test", "metric": "mae", "max": 60}, evidence(), None
    )
    assert result.passed


def test_unknown_field_is_rejected() -> None:
    doc = document({"id": "c1", "stage": "test", "metric": "mae", "max": 60, "maximum": 1})
    assert problems_of(doc) == ["criteria/0/maximum: unknown field 'maximum'"]
    doc = document({"id": "c1", "stage": "test", "metric": "mae", "max": 60})
    doc["owner"] = "me"
    assert any("owner" in p for p in problems_of(doc))
    doc = document({"id": "c1", "stage": "test", **gap(8, minSupport=3)})
    assert any(p.startswith("criteria/0/gap") and "minSupport" in p for p in problems_of(doc))


@pytest.mark.parametrize(
    "criterion",
    [
        {"metric": "mae", "max": 60, "expr": "true"},
        {**gap(8), **each(max=60)},
        {**change("mae", "lower-is-better", 1.0), "metric": "mae", "max": 60},
        {**gap(8), "expr": "true"},
    ],
    ids=["threshold+expr", "gap+eachSlice", "change+threshold", "gap+expr"],
)
def test_two_kinds_in_one_criterion_are_rejected(criterion: dict[str, Any]) -> None:
    problems = problems_of(document({"id": "c1", "stage": "test", **criterion}))
    assert problems
    assert all(p.startswith("criteria/0") for p in problems)


def test_duplicate_ids_are_rejected() -> None:
    doc = document(
        {"id": "same", "stage": "test", "metric": "mae", "max": 60},
        {"id": "other", "stage": "test", "metric": "r2", "min": 0.1},
        {"id": "same", "stage": "test", "metric": "r2", "min": 0.3},
    )
    assert problems_of(doc) == ["criteria/2/id: duplicate criterion id 'same'"]


def test_min_above_max_is_rejected() -> None:
    doc = document({"id": "c1", "stage": "test", "metric": "r2", "min": 0.9, "max": 0.3})
    assert problems_of(doc) == ["criteria/0: min 0.9 is above max 0.3"]
    # equal bounds are a legitimate exact requirement
    parse_objectives(document({"id": "c1", "stage": "test", "metric": "r2", "min": 1, "max": 1}))


def test_each_slice_min_above_max_is_rejected() -> None:
    """BUG: the min > max check only looks at threshold criteria, not eachSlice bounds."""
    doc = document({"id": "c1", "stage": "test", **each(min=60, max=50)})
    assert any("min 60 is above max 50" in p for p in problems_of(doc))


@pytest.mark.parametrize(
    ("criterion", "where"),
    [
        ({"metric": "mae"}, "criteria/0"),  # no bound
        ({"max": 60}, "criteria/0"),  # bound without metric
        ({"gap": {"family": "sex", "metric": "mae", "max": -1}}, "criteria/0/gap/max"),
        ({"eachSlice": {"family": "sex", "metric": "mae"}}, "criteria/0/eachSlice"),
        (
            {"change": {"metric": "mae", "direction": "sideways", "maxWorsening": 1}},
            "criteria/0/change/direction",
        ),
        ({"expr": ""}, "criteria/0/expr"),
    ],
)
def test_schema_rejects_incomplete_criteria(criterion: dict[str, Any], where: str) -> None:
    problems = problems_of(document({"id": "c1", "stage": "test", **criterion}))
    assert any(p.startswith(where) for p in problems), problems


def test_schema_rejects_bad_document_shapes() -> None:
    assert problems_of(document())  # no criteria
    bad_id = document({"id": "has space", "stage": "test", "metric": "mae", "max": 1})
    assert any(p.startswith("criteria/0/id") for p in problems_of(bad_id))
    wrong_kind = document({"id": "c1", "stage": "test", "metric": "mae", "max": 1})
    wrong_kind["kind"] = "Policy"
    assert any(p.startswith("kind") for p in problems_of(wrong_kind))
    assert problems_of([1, 2])


def test_every_problem_is_reported_at_once() -> None:
    doc = document(
        {"id": "a", "stage": "test", "metric": "r2", "min": 2, "max": 1},
        {"id": "a", "stage": "test", "expr": "1 +"},
    )
    problems = problems_of(doc)
    assert len(problems) == 3
    assert any("duplicate criterion id 'a'" in p for p in problems)
    assert any("min 2 is above max 1" in p for p in problems)
    assert any(p.startswith("criteria/1/expr") for p in problems)


YAML_DOC = """\
apiVersion: mlspec-attest/v1
kind: Objectives
metadata:
  name: lines
  version: "1"
criteria:
  - id: a
    stage: test
    metric: mae
    max: 60
    typo: true
"""


def test_yaml_problems_carry_line_numbers() -> None:
    with pytest.raises(PolicyError) as info:
        load_objectives_text(YAML_DOC, what="objectives.yaml")
    assert info.value.problems == ["line 11: criteria/0/typo: unknown field 'typo'"]
    assert "objectives.yaml" in info.value.message


def test_semantic_problems_carry_line_numbers() -> None:
    """BUG: duplicate ids, min > max and CEL syntax errors are reported without a line."""
    text = YAML_DOC.replace("    typo: true\n", "  - id: a\n    stage: test\n    expr: '1 +'\n")
    with pytest.raises(PolicyError) as info:
        load_objectives_text(text, what="objectives.yaml")
    assert len(info.value.problems) == 2
    assert all(p.startswith("line 1") for p in info.value.problems), info.value.problems


def test_yaml_syntax_error_has_a_line() -> None:
    with pytest.raises(PolicyError) as info:
        load_objectives_text("kind: Objectives\ncriteria: [\n  - a: b\n", what="x.yaml")
    assert any("line" in p for p in info.value.problems)


def test_load_objectives_file(tmp_path: Path) -> None:
    path = tmp_path / "objectives.yaml"
    path.write_text(YAML_DOC.replace("    typo: true\n", ""))
    objectives = load_objectives(path)
    assert objectives.name == "lines"
    assert objectives.criteria[0]["id"] == "a"
    with pytest.raises(MalformedDocumentError, match="not found"):
        load_objectives(tmp_path / "absent.yaml")
    # JSON is YAML too
    json_path = tmp_path / "objectives.json"
    json_path.write_text(json.dumps(objectives.document))
    assert load_objectives(json_path).document == objectives.document


def test_shipped_template_is_valid_and_evaluable() -> None:
    objectives = load_objectives_text(template_text("objectives"), what="template")
    assert len(objectives.criteria) == 5
    assert {c["stage"] for c in objectives.criteria} == {"test", "evaluate"}
    ev = {
        "test": Evidence("test", {"mae": 50.0, "r2": 0.4}, SLICES),
        "evaluate": Evidence("evaluate", {"mae": 50.0, "baseline_mae": 70.0}, SLICES),
    }
    results = evaluate_objectives(objectives, ev)
    assert [r.passed for r in results] == [True] * 5


def test_evidence_from_metrics_files(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"metrics": {"mae": 50}, "slices": SLICES}))
    ev = evidence_from_metrics_files([("test", path)])
    assert ev["test"].digest == f"file:{path}"
    assert ev["test"].metric_values() == {"mae": 50.0}
    assert isinstance(ev["test"].metric_values()["mae"], float)
    assert ev["test"].slice_counts() == {"sex": {"F": 60, "M": 55, "X": 3}}


# -- the document as the signed product of the objectives stage ----------------------
@pytest.mark.parametrize(
    "data",
    [
        b"apiVersion: mlspec-attest/v1\nkind: Objectives\n",
        b"kind: 'Objectives'\n",
        b'kind: "Objectives"\n',
        b'{"apiVersion": "mlspec-attest/v1", "kind": "Objectives"}',
    ],
)
def test_looks_like_objectives(data: bytes) -> None:
    assert looks_like_objectives(data)


@pytest.mark.parametrize(
    "data", [b"kind: Policy\n", b"# kind: Objectives is what we are not\nkind: Other\n"]
)
def test_does_not_look_like_objectives(data: bytes) -> None:
    assert not looks_like_objectives(data)


def sign_objectives(tmp_path: Path, signer: KeyPair, *files: tuple[str, str]) -> Any:
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    for name, text in files:
        (ws / name).write_text(text)
    clock = FakeClock()
    record = StageRecord(
        stage="objectives",
        kind="objectives",
        products=[ws / name for name, _ in files],
        started_on=clock(),
    )
    store = AttestationStore(tmp_path / "store")
    return store, sign_stage(
        record, signer.signer, store, run_id="r1", base_dir=ws, clock=clock, environment={}
    )


def test_objectives_stage_stores_the_signed_document(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    text = YAML_DOC.replace("    typo: true\n", "")
    store, signed = sign_objectives(
        tmp_path, keys["ml-reviewer"], ("objectives.yaml", text), ("notes.txt", "x")
    )
    record = signed.statement.metadata.details["objectives"]
    assert record["artifact"] == "objectives.yaml"
    assert (record["name"], record["version"], record["criteria"]) == ("lines", "1", 1)
    assert store.get_blob(record["sha256"]) == text.encode()
    product = next(p for p in signed.statement.products if p.name == "objectives.yaml")
    assert product.digest["sha256"] == record["sha256"]


def test_objectives_stage_refuses_an_invalid_document(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    with pytest.raises(PolicyError):
        sign_objectives(tmp_path, keys["ml-reviewer"], ("objectives.yaml", YAML_DOC))
    assert not (tmp_path / "store" / "runs").exists()


def test_objectives_stage_needs_exactly_one_document(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    with pytest.raises(UsageError, match="must produce an objectives document"):
        sign_objectives(tmp_path, keys["ml-reviewer"], ("readme.yaml", "kind: Readme\n"))
    text = YAML_DOC.replace("    typo: true\n", "")
    with pytest.raises(UsageError, match="only one objectives document"):
        sign_objectives(tmp_path, keys["ml-reviewer"], ("a.yaml", text), ("b.yaml", text))


def test_objectives_document_with_a_trailing_comment_is_recognised(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """BUG: ``kind: Objectives  # ...`` is valid YAML but the signing-time sniff misses it."""
    text = YAML_DOC.replace("    typo: true\n", "").replace(
        "kind: Objectives\n", "kind: Objectives  # launch criteria\n"
    )
    assert load_objectives_text(text, what="x").name == "lines"  # a valid document
    _, signed = sign_objectives(tmp_path, keys["ml-reviewer"], ("objectives.yaml", text))
    assert signed.statement.metadata.details["objectives"]["criteria"] == 1


# -- ratio (the four-fifths rule) and support --------------------------------------
def ratio(minimum: float, **selection: Any) -> dict[str, Any]:
    return {"ratio": {"family": "sex", "metric": "mae", "min": minimum, **selection}}


def test_ratio_is_the_worst_slice_over_the_best() -> None:
    result = run(ratio(0.8, minCount=20))
    assert result.passed and result.kind == "ratio"
    listing = 'slices["sex"]["F"]["mae"], slices["sex"]["M"]["mae"]'
    assert result.expression == f"min([{listing}]) / max([{listing}]) >= 0.8"
    assert result.threshold == "worst / best slice >= 0.8"
    assert result.observed == {"sex=F": 48.0, "sex=M": 53.0, "ratio": 48.0 / 53.0}
    strict = run(ratio(0.95, minCount=20))
    assert not strict.passed and "ratio=0.90566" in strict.message


def test_ratio_refuses_what_has_no_ratio() -> None:
    zero = run(ratio(0.8), evidence(slices=with_slice_value("sex", "F", "mae", 0.0)))
    assert zero.passed is False  # 0 / 95: the worst slice has nothing
    all_zero = {"sex": {v: {"count": 50, "metrics": {"mae": 0.0}} for v in ("F", "M")}}
    undefined = run(ratio(0.8), evidence(slices=all_zero))
    assert not undefined.passed and "ratio undefined" in undefined.message
    negative = run(ratio(0.8), evidence(slices=with_slice_value("sex", "M", "mae", -1.0)))
    assert not negative.passed and "not negative" in negative.message
    single = run(ratio(0.8, minCount=58))
    assert not single.passed and "need at least 2" in single.message


def test_support_counts_every_slice() -> None:
    result = run({"support": {"family": "sex", "min": 50}})
    assert not result.passed and result.kind == "support"
    assert result.observed == {"sex=F.count": 60.0, "sex=M.count": 55.0, "sex=X.count": 3.0}
    assert result.threshold == "each slice count >= 50"
    assert run({"support": {"family": "sex", "min": 50, "exclude": ["X"]}}).passed
    missing = run({"support": {"family": "age", "min": 1}})
    assert not missing.passed and "slice family 'age' missing" in missing.message


def test_ratio_and_support_are_in_the_objectives_schema() -> None:
    ok = document({"id": "r", "stage": "test", **ratio(0.8)})
    assert parse_objectives(ok).criteria[0]["ratio"]["min"] == 0.8
    both = document(
        {"id": "r", "stage": "test", **ratio(0.8), "support": {"family": "sex", "min": 5}}
    )
    with pytest.raises(PolicyError):
        parse_objectives(both)
    above_one = document({"id": "r", "stage": "test", **ratio(1.5)})
    with pytest.raises(PolicyError):
        parse_objectives(above_one)
