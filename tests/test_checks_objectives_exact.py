"""verify/checks/objectives.py, exactly: every refusal as its whole failure record.

The real signed pipeline of tests/mlpipeline.py; where a case needs a wrong objectives
record, the objectives stage is signed for real, its statement edited and signed again
with the same key (tests/test_mlchecks_failures.py). Each case asserts the complete
failure record (stage, message, expected, found, remedy), so a changed text or a stage
left out is noticed (mutation testing, docs/testing.md).
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

from mlspec_attest.verify.report import Check, Failure, VerificationReport

from .mlpipeline import CHANGE_CRITERION, OBJECTIVES_YAML, TEST_METRICS, MakeML, MLPipeline, only
from .support import KeyPair, checks_of
from .test_mlchecks_failures import Statement, _point_at, mlspec, run_editing

OBJECTIVE_REMEDY = (
    "the model does not meet the signed objectives; do not launch "
    "(improve the model, or have the objectives owner sign new objectives)"
)


def document_failures(report: VerificationReport) -> list[Failure]:
    return only(report, Check.OBJECTIVES_DOCUMENT)


def objectives_sha256(ml: MLPipeline) -> str:
    return hashlib.sha256((ml.ws / "objectives.yaml").read_bytes()).hexdigest()


# An edit: the record, and the product it names, say the document has ``digest``.
point_at = _point_at


# -- the objectives stage and its record ------------------------------------------------
def test_no_verified_objectives_stage_is_reported_with_its_whole_record(ml: MLPipeline) -> None:
    for stage in ("validate", "split", "train", "evaluate", "test"):
        getattr(ml, f"sign_{stage}")()
    report = ml.verify()
    assert checks_of(report) == {Check.STAGE_MISSING, Check.OBJECTIVES_DOCUMENT}
    assert [f for f in report.failures if f.check is Check.OBJECTIVES_DOCUMENT] == [
        Failure(
            Check.OBJECTIVES_DOCUMENT,
            "objectives",
            "no verified objectives stage: launch criteria cannot be checked",
            expected="a valid attestation of 'objectives' carrying the objectives document",
            found="none",
            remedy="fix the failures of the objectives stage above",
        )
    ]


def test_a_stage_without_its_objectives_record_is_reported_whole(ml: MLPipeline) -> None:
    def drop(statement: Statement) -> None:
        del mlspec(statement)["details"]["objectives"]

    assert document_failures(run_editing(ml, "objectives", drop).verify()) == [
        Failure(
            Check.OBJECTIVES_DOCUMENT,
            "objectives",
            "the objectives attestation records no objectives document",
            expected="details.objectives with the document's sha256",
            found="none",
            remedy="sign the objectives stage with the objectives YAML as a product",
        )
    ]


def test_a_record_of_other_bytes_than_the_product_is_reported_whole(ml: MLPipeline) -> None:
    def other(statement: Statement) -> None:
        mlspec(statement)["details"]["objectives"]["sha256"] = "ab" * 32

    report = run_editing(ml, "objectives", other).verify()
    assert document_failures(report) == [
        Failure(
            Check.OBJECTIVES_DOCUMENT,
            "objectives",
            "the objectives record does not match the stage's products",
            expected=f"product objectives.yaml with sha256 {'ab' * 8}…",
            found=f"sha256:{objectives_sha256(ml)[:16]}…",
            remedy="re-sign the objectives stage",
        )
    ]
    assert report.objectives == []


def test_a_record_naming_no_product_of_the_stage_is_reported_whole(ml: MLPipeline) -> None:
    """The record's artifact is none of the stage's products: found says so, no crash."""

    def rename(statement: Statement) -> None:
        mlspec(statement)["details"]["objectives"]["artifact"] = "goals.yaml"

    report = run_editing(ml, "objectives", rename).verify()
    digest = objectives_sha256(ml)
    assert document_failures(report) == [
        Failure(
            Check.OBJECTIVES_DOCUMENT,
            "objectives",
            "the objectives record does not match the stage's products",
            expected=f"product goals.yaml with sha256 {digest[:16]}…",
            found="none",
            remedy="re-sign the objectives stage",
        )
    ]
    assert report.objectives == []


def test_a_document_missing_from_the_store_is_reported_whole(ml: MLPipeline) -> None:
    report = run_editing(ml, "objectives", point_at("cd" * 32)).verify()
    assert document_failures(report) == [
        Failure(
            Check.OBJECTIVES_DOCUMENT,
            "objectives",
            "the signed objectives document is not in the store",
            expected=f"blobs/sha256/{'cd' * 32}",
            found="missing or corrupted",
            remedy="copy the store with its blobs/ folder, or re-sign the objectives stage",
        )
    ]


def test_an_invalid_document_is_reported_whole_naming_its_artifact(ml: MLPipeline) -> None:
    """The loader's message names the document by the record's artifact."""
    digest = ml.store.put_blob(b"kind: Objectives\ncriteria: 7\n")
    report = run_editing(ml, "objectives", point_at(digest)).verify()
    assert document_failures(report) == [
        Failure(
            Check.OBJECTIVES_DOCUMENT,
            "objectives",
            "the signed objectives document is invalid: "
            "objectives objectives.yaml: invalid objectives document",
            remedy="fix the objectives document and re-run the pipeline",
        )
    ]


# -- the criteria -----------------------------------------------------------------------
def test_a_failing_criterion_is_reported_whole_with_every_observed_value(
    ml: MLPipeline,
) -> None:
    metrics = copy.deepcopy(TEST_METRICS)
    metrics["slices"]["sex"]["M"]["metrics"]["mae"] = 60.0  # gap 12 > 8
    report = ml.run(test={"metrics": metrics}).verify()
    observed = "sex=F=48, sex=M=60, gap=12"
    assert only(report, Check.OBJECTIVE) == [
        Failure(
            Check.OBJECTIVE,
            "test",
            f"launch criterion 'sex-gap' (gap): not met: {observed} (skipped for support < 20: X)",
            expected="gap <= 8",
            found=observed,
            remedy=OBJECTIVE_REMEDY,
        )
    ]


STAGES_AND_ABSENT = """\
  - id: split-seeded
    stage: evaluate
    expr: 'stages.split.parameters.seed == 7'
  - id: packaged-small
    stage: package
    metric: size
    max: 10
"""


def test_criteria_see_the_stage_records_and_one_without_evidence_fails_whole(
    make_ml: MakeML,
) -> None:
    """An expression reads ``stages``; a criterion of a stage with no verified attestation
    has no threshold text and no observed values: the record says so."""
    ml = make_ml(objectives=OBJECTIVES_YAML + STAGES_AND_ABSENT)
    report = ml.run().verify()
    by_id = {r.id: r.passed for r in report.objectives}
    assert (by_id["split-seeded"], by_id["packaged-small"]) == (True, False)
    message = "no verified attestation of stage 'package' to take metrics from"
    assert report.failures == [
        Failure(
            Check.OBJECTIVE,
            "package",
            f"launch criterion 'packaged-small' (threshold): {message}",
            expected="criterion holds",
            found=message,
            remedy=OBJECTIVE_REMEDY,
        )
    ]


# -- the baseline -----------------------------------------------------------------------
def test_a_baseline_of_another_stage_is_reported_whole(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    ml = MLPipeline(tmp_path, keys, objectives=OBJECTIVES_YAML + CHANGE_CRITERION).run()
    baseline = ml.baseline_bundle({"metrics": {"mae": 60.0}}, stage="test")
    [failure] = [f for f in ml.verify(baseline=baseline).failures if f.check is Check.BASELINE]
    assert failure == Failure(
        Check.BASELINE,
        "evaluate",
        "the baseline is an attestation of 'test', but the objectives compare 'evaluate' "
        "with its baseline",
        expected="a 'evaluate' attestation of the baseline run",
        found="test of run baseline-run",
        remedy="pass baseline with the baseline run's 'evaluate' attestation",
    )
