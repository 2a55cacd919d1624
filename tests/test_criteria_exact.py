"""The criteria evaluator to the letter: whole results of failures, exact messages and
notes, support boundaries, and each criterion described in words (what ``policy show``
prints). Companion to tests/test_objectives.py, written against the mutants it left."""

from __future__ import annotations

from typing import Any

import pytest

from mlspec_attest.policy.criteria import (
    CriterionResult,
    Evidence,
    describe_criterion,
    evaluate_criterion,
    evidence_from_metrics_files,
    terms_seen,
)

DIGEST = "sha256:" + "cd" * 32
SLICES: dict[str, Any] = {
    "sex": {
        "F": {"count": 60, "metrics": {"mae": 48.0, "r2": 0.5}},
        "M": {"count": 30, "metrics": {"mae": 53.0, "r2": 0.4}},
        "X": {"count": 29, "metrics": {"mae": 95.0, "r2": 0.1}},
        "Z": {"count": 0, "metrics": {"mae": 1.0, "r2": 0.9}},
    }
}


def judge(criterion: dict[str, Any], slices: dict[str, Any] | None = None) -> CriterionResult:
    ev = Evidence("test", {"mae": 50.0, "r2": 0.45}, SLICES if slices is None else slices, DIGEST)
    return evaluate_criterion({"id": "c", "stage": "test", **criterion}, {"test": ev}, None)


def test_a_slice_with_exactly_min_count_rows_counts_and_one_below_is_named() -> None:
    result = judge({"gap": {"family": "sex", "metric": "mae", "max": 10, "minCount": 30}})
    assert result.observed == {"sex=F": 48.0, "sex=M": 53.0, "gap": 5.0}
    assert result.message == "met: sex=F=48, sex=M=53, gap=5 (skipped for support < 30: X, Z)"


def test_without_min_count_every_slice_counts_even_an_empty_one() -> None:
    result = judge({"eachSlice": {"family": "sex", "metric": "mae", "max": 100}})
    assert set(result.observed) == {"sex=F", "sex=M", "sex=X", "sex=Z"}
    assert result.threshold == "each slice <= 100" and result.passed


def test_exclude_skips_a_slice_in_the_middle_and_keeps_the_rest() -> None:
    result = judge({"eachSlice": {"family": "sex", "metric": "mae", "min": 0, "exclude": ["M"]}})
    assert set(result.observed) == {"sex=F", "sex=X", "sex=Z"}
    assert result.threshold == "each slice >= 0"


def test_too_few_slices_is_a_whole_failed_result() -> None:
    result = judge({"ratio": {"family": "sex", "metric": "r2", "min": 0.8, "minCount": 50}})
    assert result == CriterionResult(
        "c", "ratio", "test", False,
        "1 slice(s) of 'sex' with count >= 50; need at least 2 "
        "(skipped for support < 50: M, X, Z)",
        "", "", {}, DIGEST,
    )  # fmt: skip
    bare = judge({"gap": {"family": "sex", "metric": "mae", "max": 1}}, {"sex": {}})
    assert bare.message == "0 slice(s) of 'sex' with count >= 0; need at least 2"


def test_ratio_failures_keep_what_they_observed() -> None:
    negative = {
        "sex": {
            "F": {"count": 5, "metrics": {"r2": -0.1}},
            "M": {"count": 5, "metrics": {"r2": 0.3}},
        }
    }
    result = judge({"ratio": {"family": "sex", "metric": "r2", "min": 0.8}}, negative)
    assert result == CriterionResult(
        "c", "ratio", "test", False, "a ratio of slices needs metrics that are not negative",
        "", "", {"sex=F": -0.1, "sex=M": 0.3}, DIGEST,
    )  # fmt: skip
    zero = {"sex": {v: {"count": 5, "metrics": {"r2": 0.0}} for v in ("F", "M")}}
    undefined = judge({"ratio": {"family": "sex", "metric": "r2", "min": 0.8}}, zero)
    assert undefined.message == "ratio undefined: the best slice's metric is 0"
    assert undefined.observed == {"sex=F": 0.0, "sex=M": 0.0}


def test_ratio_keeps_the_note_of_skipped_slices() -> None:
    result = judge({"ratio": {"family": "sex", "metric": "r2", "min": 0.5, "minCount": 30}})
    assert result.passed
    assert result.message == "met: sex=F=0.5, sex=M=0.4, ratio=0.8 (skipped for support < 30: X, Z)"


def test_support_results() -> None:
    result = judge({"support": {"family": "sex", "min": 30, "exclude": ["X", "Z"]}})
    assert result == CriterionResult(
        "c", "support", "test", True, "met: sex=F.count=60, sex=M.count=30",
        'counts["sex"]["F"] >= 30 && counts["sex"]["M"] >= 30', "each slice count >= 30",
        {"sex=F.count": 60.0, "sex=M.count": 30.0}, DIGEST,
    )  # fmt: skip
    nothing = judge({"support": {"family": "sex", "min": 1, "exclude": ["F", "M", "X", "Z"]}})
    assert nothing.message == "no slice of 'sex' to count"


def test_a_cel_criterion_that_cannot_be_evaluated_is_a_whole_result() -> None:
    result = judge({"expr": 'metrics["auc"] > 0.5'})
    assert result == CriterionResult(
        "c", "expr", "test", False,
        'cannot evaluate: missing value: no such key; observed: metrics["auc"] = missing value: '
        "no such key",
        'metrics["auc"] > 0.5', "expression is true", {}, DIGEST,
    )  # fmt: skip


def test_non_finite_evidence_names_every_path() -> None:
    slices = {"sex": {"F": {"count": 5, "metrics": {"mae": float("nan")}},
                      "M": {"count": 5, "metrics": {"mae": float("inf")}}}}  # fmt: skip
    result = judge({"expr": "true"}, slices)
    assert result.message == (
        "non-finite value(s) in the evidence: slices.sex.F.mae, slices.sex.M.mae"
    )
    assert (result.expression, result.threshold) == ("true", "expression is true")


def test_terms_seen_says_nothing_when_there_is_nothing_to_show() -> None:
    assert terms_seen("", {}) == ""
    assert terms_seen("true", {}) == ""
    assert terms_seen("((", {}) == ""  # not CEL: no terms, no error
    assert terms_seen("metrics.a > 1.0", {"metrics": {"a": 2.0}}) == "; observed: metrics.a = 2.0"


@pytest.mark.parametrize(
    ("criterion", "words"),
    [
        ({"metric": "r2", "min": 0.4}, "r2 >= 0.4"),
        ({"metric": "mae", "max": 60}, "mae <= 60"),
        ({"metric": "mae", "min": 1, "max": 60}, "mae >= 1 and mae <= 60"),
        ({"expr": "metrics.a > 1.0"}, "metrics.a > 1.0"),
        ({"change": {"metric": "mae", "direction": "lower-is-better", "maxWorsening": 0.5}},
         "mae (lower-is-better) worsens by at most 0.5 against the baseline"),
        ({"change": {"metric": "auc", "direction": "higher-is-better", "maxWorsening": 0.1,
                     "relative": True}},
         "auc (higher-is-better) worsens by at most 0.1 (relative) against the baseline"),
        ({"support": {"family": "sex", "min": 30}}, "every sex slice has at least 30 rows"),
        ({"gap": {"family": "sex", "metric": "mae", "max": 5}},
         "mae best minus worst sex slice <= 5"),
        ({"gap": {"family": "sex", "metric": "mae", "max": 5, "minCount": 30}},
         "mae best minus worst sex slice <= 5 (slices with >= 30 rows)"),
        ({"ratio": {"family": "sex", "metric": "r2", "min": 0.8, "minCount": 30}},
         "r2 worst over best sex slice >= 0.8 (slices with >= 30 rows)"),
        ({"eachSlice": {"family": "sex", "metric": "mae", "min": 1, "max": 60}},
         "mae of every sex slice >= 1 and <= 60"),
        ({"eachSlice": {"family": "sex", "metric": "mae", "max": 60, "minCount": 5}},
         "mae of every sex slice <= 60 (slices with >= 5 rows)"),
    ],
)  # fmt: skip
def test_each_criterion_in_words(criterion: dict[str, Any], words: str) -> None:
    assert describe_criterion({"id": "c", "stage": "test", **criterion}) == words


def test_evidence_views_convert_every_family() -> None:
    ev = Evidence("s", {"n": 3}, {"a": {"1": {"count": 2, "metrics": {"m": 1}}},
                                  "b": {"2": {"metrics": {"m": 2.5}}}})  # fmt: skip
    assert ev.slice_metrics() == {"a": {"1": {"m": 1.0}}, "b": {"2": {"m": 2.5}}}
    assert type(ev.slice_metrics()["a"]["1"]["m"]) is float
    assert ev.slice_counts() == {"a": {"1": 2}, "b": {"2": 0}}
    assert ev.metric_values() == {"n": 3.0}


def test_each_slice_with_a_single_slice_left() -> None:
    result = judge({"eachSlice": {"family": "sex", "metric": "mae", "max": 50, "minCount": 31}})
    assert result.observed == {"sex=F": 48.0}
    assert result.threshold == "each slice <= 50"
    assert result.message == "met: sex=F=48 (skipped for support < 31: M, X, Z)"


def test_change_needs_a_baseline_and_says_how() -> None:
    change = {"change": {"metric": "mae", "direction": "lower-is-better", "maxWorsening": 1}}
    result = judge(change)
    assert result.message == (
        "no baseline metrics: pass the baseline model's attestation (baseline) or metrics "
        "(baseline_metrics)"
    )
    ev = Evidence("test", {"mae": 50.0}, {}, DIGEST)
    met = evaluate_criterion({"id": "c", "stage": "test", **change}, {"test": ev}, {"mae": 49.5})
    assert met.message == "met: mae=50, baseline.mae=49.5"  # no note after the values


def test_metrics_files_are_evidence_of_their_stage(tmp_path: Any) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"metrics": {"mae": 70.0}}')
    evidence = evidence_from_metrics_files([("evaluate", path)])
    assert evidence["evaluate"].stage == "evaluate"
    assert evidence["evaluate"].digest == f"file:{path}"
    result = evaluate_criterion(
        {"id": "c", "stage": "evaluate", "metric": "r2", "min": 0}, evidence, None
    )
    assert result.message == "metric 'r2' missing from evaluate's attestation"


def test_a_slice_without_metrics_has_none() -> None:
    ev = Evidence("s", {}, {"a": {"1": {"count": 3}}})
    assert ev.slice_metrics() == {"a": {"1": {}}}
