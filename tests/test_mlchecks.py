"""The ML verification checks end to end: a real signed pipeline, one cheat at a time.

objectives -> validate -> split -> train -> evaluate -> test, real keys, real
files, real signatures (see tests/mlpipeline.py); only the clock is fake. Each
case asserts the exact set of checks that deny it, so a cheat caught only by a
side effect, or a check firing on an honest pipeline, fails the test.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.errors import ObjectiveNotMetError
from mlspec_attest.evidence.dataschema import validate_dataset
from mlspec_attest.policy import load_signed_policy
from mlspec_attest.verify.pipeline import require_verified
from mlspec_attest.verify.report import Check

from .mlpipeline import (
    CHANGE_CRITERION,
    DATA_SCHEMA,
    OBJECTIVES_YAML,
    TEST_METRICS,
    MakeML,
    MLPipeline,
    csv,
    only,
    raw_rows,
)
from .support import VERIFY_NOW, KeyPair, checks_of, rewrite_payload


def payload_digest(p: MLPipeline, stage: str) -> str:
    return "sha256:" + hashlib.sha256(p.signed_stages[stage].bundle.envelope.payload).hexdigest()


# -- honest ---------------------------------------------------------------------------
def test_honest_pipeline_passes_with_one_result_per_criterion(ml: MLPipeline) -> None:
    report = ml.run().verify()
    assert report.failures == []
    assert report.passed
    assert [(s.name, s.status) for s in report.stages] == [
        (name, "ok") for name in ("objectives", "validate", "split", "train", "evaluate", "test")
    ]
    assert [(r.id, r.kind, r.stage, r.passed) for r in report.objectives] == [
        ("holdback-mae", "threshold", "test", True),
        ("holdback-r2", "threshold", "test", True),
        ("sex-gap", "gap", "test", True),
        ("validation-every-sex", "eachSlice", "evaluate", True),
        ("beats-mean-baseline", "expr", "evaluate", True),
    ]
    by_id = {r.id: r for r in report.objectives}
    # evidence is the digest of the exact signed statement the metrics came from
    assert by_id["holdback-mae"].evidence == payload_digest(ml, "test")
    assert by_id["validation-every-sex"].evidence == payload_digest(ml, "evaluate")
    assert by_id["holdback-mae"].observed == {"mae": 50.0}
    assert by_id["sex-gap"].observed == {"sex=F": 48.0, "sex=M": 53.0, "gap": 5.0}
    assert "skipped for support < 20: X" in by_id["sex-gap"].message
    doc = report.to_json()
    assert doc["result"] == "PASSED"
    assert [o["id"] for o in doc["objectives"]] == [r.id for r in report.objectives]
    assert all(o["result"] == "pass" for o in doc["objectives"])
    assert doc["objectives"][0]["expression"] == 'metrics["mae"] <= 60.0'


def test_honest_pipeline_with_inline_validation_details_passes(ml: MLPipeline) -> None:
    report = ml.run(validate={"inline": True}).verify()
    assert report.failures == []


# -- objectives -----------------------------------------------------------------------
def unfair_test_metrics() -> dict[str, Any]:
    metrics = copy.deepcopy(TEST_METRICS)
    metrics["slices"]["sex"]["M"]["metrics"]["mae"] = 60.0  # gap 12 > 8; overall still fine
    return metrics


def test_failing_fairness_gap_is_denied_naming_the_criterion(ml: MLPipeline) -> None:
    report = ml.run(test={"metrics": unfair_test_metrics()}).verify()
    [failure] = only(report, Check.OBJECTIVE)
    assert failure.stage == "test"
    assert "'sex-gap'" in failure.message
    assert "(gap)" in failure.message
    assert failure.expected == "gap <= 8"
    assert "gap=12" in failure.found
    assert failure.error == "ObjectiveNotMetError"
    assert [(r.id, r.passed) for r in report.objectives] == [
        ("holdback-mae", True),
        ("holdback-r2", True),
        ("sex-gap", False),
        ("validation-every-sex", True),
        ("beats-mean-baseline", True),
    ]


def test_fail_closed_form_raises_objective_not_met(ml: MLPipeline) -> None:
    ml.run(test={"metrics": unfair_test_metrics()})
    with pytest.raises(ObjectiveNotMetError, match="sex-gap"):
        require_verified(
            load_signed_policy(ml.signed_policy_path),
            [ml.keys["owner"].public],
            ml.store,
            run_id=ml.run_id,
            now=VERIFY_NOW,
        )


def test_missing_metric_in_the_attestation_is_denied(ml: MLPipeline) -> None:
    metrics = copy.deepcopy(TEST_METRICS)
    del metrics["metrics"]["r2"]
    report = ml.run(test={"metrics": metrics}).verify()
    [failure] = only(report, Check.OBJECTIVE)
    assert "'holdback-r2'" in failure.message
    assert "metric 'r2' missing from test's attestation" in failure.message


def test_objectives_blob_deleted_from_the_store(ml: MLPipeline) -> None:
    ml.run()
    record = ml.signed_stages["objectives"].statement.metadata.details["objectives"]
    blob = ml.store_path / "blobs" / "sha256" / record["sha256"]
    assert blob.is_file()
    blob.unlink()
    report = ml.verify()
    [failure] = only(report, Check.OBJECTIVES_DOCUMENT)
    assert failure.stage == "objectives"
    assert "not in the store" in failure.message
    assert report.objectives == []


def test_objectives_blob_altered_in_the_store(ml: MLPipeline) -> None:
    ml.run()
    record = ml.signed_stages["objectives"].statement.metadata.details["objectives"]
    blob = ml.store_path / "blobs" / "sha256" / record["sha256"]
    # loosen every criterion: the content no longer matches its address
    blob.write_text(OBJECTIVES_YAML.replace("max: 60", "max: 600"))
    only(ml.verify(), Check.OBJECTIVES_DOCUMENT)


def test_objectives_stage_missing(ml: MLPipeline) -> None:
    for stage in ("validate", "split", "train", "evaluate", "test"):
        getattr(ml, f"sign_{stage}")()
    report = ml.verify()
    assert checks_of(report) == {Check.STAGE_MISSING, Check.OBJECTIVES_DOCUMENT}
    assert report.objectives == []


# -- separation -----------------------------------------------------------------------
def test_test_consumes_a_file_other_than_the_holdback(ml: MLPipeline) -> None:
    csv(ml.ws / "data/fresh.csv", ["60,30.0,F,300", "61,31.0,M,310"])
    report = ml.run(test={"data": "data/fresh.csv"}).verify()
    [failure] = only(report, Check.HOLDBACK_NOT_TESTED)
    assert failure.stage == "test"
    assert "data/split/holdback.csv" in failure.expected
    assert "data/fresh.csv" in failure.found


def test_holdback_copy_read_by_train_under_another_name(ml: MLPipeline) -> None:
    ml.sign_objectives()
    ml.sign_validate()
    ml.sign_split()
    shutil.copy(ml.ws / "data/split/holdback.csv", ml.ws / "data/extra-rows.csv")
    ml.sign_train(extra_materials=["data/extra-rows.csv"])
    ml.sign_evaluate()
    ml.sign_test()
    [failure] = only(ml.verify(), Check.HOLDBACK_READ)
    assert failure.stage == "train"
    assert "data/extra-rows.csv" in failure.message


def test_holdback_read_by_evaluate(ml: MLPipeline) -> None:
    report = ml.run(evaluate={"extra_materials": ["data/split/holdback.csv"]}).verify()
    [failure] = only(report, Check.HOLDBACK_READ)
    assert failure.stage == "evaluate"
    assert "data/split/holdback.csv" in failure.message


def test_test_uses_a_different_model_than_evaluate(ml: MLPipeline) -> None:
    ml.sign_objectives()
    ml.sign_validate()
    ml.sign_split()
    ml.sign_train()
    ml.sign_evaluate()
    (ml.ws / "model-v2.bin").write_bytes(b"a better model, nobody evaluated it")
    ml.sign_test(model="model-v2.bin")
    [failure] = only(ml.verify(), Check.TEST_MODEL)
    assert failure.stage == "test"
    assert failure.expected != failure.found


def test_test_started_before_evaluate_finished(ml: MLPipeline) -> None:
    ml.sign_objectives()
    ml.sign_validate()
    ml.sign_split()
    ml.sign_train()
    early = ml.clock()  # the test run starts here, before evaluation is done
    ml.sign_evaluate()
    ml.sign_test(started_on=early)
    evaluate_end = ml.signed_stages["evaluate"].statement.metadata.finished_on
    assert early < evaluate_end
    [failure] = only(ml.verify(), Check.TEST_ORDER)
    assert failure.stage == "test"
    assert failure.found == f"started {early}"
    assert evaluate_end in failure.expected


def test_test_starting_exactly_when_evaluate_finished_is_allowed(ml: MLPipeline) -> None:
    ml.sign_objectives()
    ml.sign_validate()
    ml.sign_split()
    ml.sign_train()
    ml.sign_evaluate()
    ml.sign_test(started_on=ml.signed_stages["evaluate"].statement.metadata.finished_on)
    assert ml.verify().failures == []


def test_test_data_equal_to_evaluation_data(ml: MLPipeline) -> None:
    report = ml.run(test={"data": "data/split/validation.csv"}).verify()
    # reusing the validation split is also not testing the hold-back split
    assert checks_of(report) == {Check.TEST_DATA_REUSED, Check.HOLDBACK_NOT_TESTED}
    [failure] = [f for f in report.failures if f.check is Check.TEST_DATA_REUSED]
    assert failure.stage == "test"


# -- leakage --------------------------------------------------------------------------
def test_one_duplicated_row_between_train_and_holdback(make_ml: MakeML) -> None:
    report = make_ml(tolerance=0).run(split={"duplicate_row": True}).verify()
    # train read the leaked row: the hold-back content check denies it as well
    assert checks_of(report) == {Check.LEAKAGE, Check.HOLDBACK_READ}
    [failure] = [f for f in report.failures if f.check is Check.LEAKAGE]
    assert failure.stage == "split"
    assert "holdback|train" in failure.message
    assert "1 row(s) appear in both splits (tolerance 0)" in failure.message
    assert failure.found == "1"


def test_one_duplicated_row_within_tolerance_passes(make_ml: MakeML) -> None:
    report = make_ml(tolerance=1).run(split={"duplicate_row": True}).verify()
    assert report.failures == []


def test_leakage_digest_set_deleted_from_the_store(ml: MLPipeline) -> None:
    ml.run()
    record = ml.signed_stages["split"].statement.metadata.details["leakage"]
    address = record["splits"]["holdback"]["digestSet"].removeprefix("sha256:")
    (ml.store_path / "blobs" / "sha256" / address).unlink()
    report = ml.verify()
    # The set is the leakage proof's and the hold-back content check's: both cannot look.
    assert checks_of(report) == {Check.LEAKAGE, Check.HOLDBACK_EVIDENCE}
    assert all(f.stage == "split" for f in report.failures)
    assert all("not in the store" in f.message for f in report.failures)


# -- requirements ---------------------------------------------------------------------
def test_requirement_false_is_denied(ml: MLPipeline) -> None:
    report = ml.run(split={"parameters": {"shuffle": True}}).verify()
    [failure] = only(report, Check.REQUIREMENT)
    assert "'split-is-seeded'" in failure.message
    assert "expression is false" in failure.message
    assert failure.expected == '"seed" in stages.split.parameters'


def test_requirement_that_cannot_be_evaluated_is_denied(make_ml: MakeML) -> None:
    reqs = "  - id: sized\n    expr: 'stages.train.metrics[\"size\"] < 10.0'\n"
    report = make_ml(requirements=reqs).run().verify()
    [failure] = only(report, Check.REQUIREMENT)
    assert "cannot evaluate" in failure.message
    assert 'stages.train.metrics["size"] = missing value' in failure.message


def test_requirement_over_a_whole_number_metric(make_ml: MakeML) -> None:
    """BUG: stage records hand CEL the metrics as parsed from the canonical payload,
    where RFC 8785 writes 50.0 as 50 (an int); a requirement comparing it with a
    double (``<= 60.0``) then cannot be evaluated and an honest pipeline is denied.
    The objectives evaluator converts metrics to doubles; stage_records does not."""
    reqs = "  - id: test-mae\n    expr: 'stages.test.metrics[\"mae\"] <= 60.0'\n"
    report = make_ml(requirements=reqs).run().verify()
    assert report.failures == [], [str(f) for f in report.failures]


# -- policy binding -------------------------------------------------------------------
def test_unbound_attestation_with_require_policy_digest(make_ml: MakeML) -> None:
    report = make_ml(require_digest=True).run(validate={"bind": False}).verify()
    # with validate refused, data validation cannot be checked: a consequence
    assert checks_of(report) == {Check.POLICY_DIGEST, Check.STAGE_MISSING, Check.DATA_VALIDATION}
    causes = {f.check: why for f, why in report.classified_failures()}
    assert causes[Check.DATA_VALIDATION] == "stage 'validate' was not verified"
    [failure] = [f for f in report.failures if f.check is Check.POLICY_DIGEST]
    assert failure.stage == "validate"
    assert failure.found == "no policyDigest"


def test_unbound_attestation_without_require_policy_digest(make_ml: MakeML) -> None:
    report = make_ml(require_digest=False).run(validate={"bind": False}).verify()
    assert report.failures == []


# -- data validation ------------------------------------------------------------------
def test_failed_data_validation(ml: MLPipeline) -> None:
    rows = [*raw_rows(), "17,20.0,F,100"]  # age below the schema's min 18
    report = ml.run(validate={"data_rows": rows}).verify()
    [failure] = only(report, Check.DATA_VALIDATION)
    assert failure.stage == "validate"
    assert failure.found == "1 violation(s)"


def test_failed_data_validation_inline_details(ml: MLPipeline) -> None:
    rows = [*raw_rows(), "30,20.0,Q,100"]  # sex not in the enum
    report = ml.run(validate={"data_rows": rows, "inline": True}).verify()
    only(report, Check.DATA_VALIDATION)


def test_validation_against_another_schema_version(make_ml: MakeML) -> None:
    report = make_ml(schema_version="4").run().verify()
    [failure] = only(report, Check.DATA_VALIDATION)
    assert failure.expected == "version 4"
    assert failure.found == "version 3"


def test_validation_against_another_schema(ml: MLPipeline) -> None:
    report = ml.run(validate={"schema": {**DATA_SCHEMA, "name": "other-features"}}).verify()
    [failure] = only(report, Check.DATA_VALIDATION)
    assert "different schema" in failure.message


def test_validation_against_a_deprecated_schema(ml: MLPipeline) -> None:
    report = ml.run(validate={"schema": {**DATA_SCHEMA, "deprecated": True}}).verify()
    [failure] = only(report, Check.DEPRECATED_DATA)
    assert failure.stage == "validate"
    assert "deprecated" in failure.message


def test_validation_record_missing(ml: MLPipeline) -> None:
    report = ml.run(validate={"detail_files": {}}).verify()
    [failure] = only(report, Check.DATA_VALIDATION)
    assert "no validation record" in failure.message


def test_validation_of_another_file_than_the_material_is_denied(ml: MLPipeline) -> None:
    """A clean file was validated, but the stage signed (and passed on) another one."""
    clean = csv(ml.ws / "data/clean.csv", raw_rows())
    record = validate_dataset(clean, DATA_SCHEMA).to_json()
    assert record["passed"] is True
    dirty = [*raw_rows(), "17,20.0,F,100"]
    report = ml.run(
        validate={"data_rows": dirty, "inline": True, "details": {"validation": record}}
    ).verify()
    [failure] = only(report, Check.DATA_VALIDATION)
    assert "did not read" in failure.message
    assert "data/raw.csv" in failure.expected


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda r: r.update(passed="false"), "passed: 'false' is not of type 'boolean'"),
        (lambda r: r.update(passed=1), "passed: 1 is not of type 'boolean'"),
        (lambda r: r.pop("dataset"), "'dataset' is a required property"),
        (lambda r: r["dataset"].update(sha256="ab"), "dataset/sha256: 'ab' does not match"),
        (lambda r: r["schema"].update(version=3), "schema/version: 3 is not of type 'string'"),
    ],
    ids=["passed-string", "passed-int", "no-dataset", "short-digest", "version-number"],
)
def test_malformed_validation_record_is_denied(
    ml: MLPipeline, edit: Callable[[dict[str, Any]], object], reason: str
) -> None:
    record = validate_dataset(csv(ml.ws / "data/raw.csv", raw_rows()), DATA_SCHEMA).to_json()
    edit(record)
    report = ml.run(validate={"inline": True, "details": {"validation": record}}).verify()
    [failure] = only(report, Check.DATA_VALIDATION)
    assert "malformed" in failure.message
    assert reason in failure.message


def test_training_on_a_deprecated_dataset(ml: MLPipeline) -> None:
    """BUG: the trainStage gate reads ``deprecatedDatasets`` from the validation record,
    but validate_dataset(...).to_json() never carries that list, so a train stage
    consuming a dataset the schema deprecates is not denied."""
    train_bytes = ("\n".join(["age,bmi,sex,target", *raw_rows()[:18]]) + "\n").encode()
    deprecated = "sha256:" + hashlib.sha256(train_bytes).hexdigest()
    schema = {**DATA_SCHEMA, "deprecatedDatasets": [deprecated]}
    ml.run(validate={"schema": schema})
    assert (ml.ws / "data/split/train.csv").read_bytes() == train_bytes
    failures = only(ml.verify(), Check.DEPRECATED_DATA)
    assert [f.stage for f in failures] == ["train"]


# -- baseline -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def with_change(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> MLPipeline:
    """Shared by the baseline tests: they add baseline bundles elsewhere, never touch its store."""
    root = tmp_path_factory.mktemp("with-change")
    return MLPipeline(root, keys, objectives=OBJECTIVES_YAML + CHANGE_CRITERION).run()


def test_change_criterion_without_baseline_fails_closed(with_change: MLPipeline) -> None:
    report = with_change.verify()
    [failure] = only(report, Check.OBJECTIVE)
    assert "'no-regression'" in failure.message
    assert "no baseline metrics" in failure.message


def test_baseline_makes_the_change_criterion_evaluable(with_change: MLPipeline) -> None:
    baseline = with_change.baseline_bundle({"metrics": {"mae": 48.5}})
    report = with_change.verify(baseline=baseline)
    assert report.failures == []
    result = report.objectives[-1]
    assert (result.id, result.passed) == ("no-regression", True)
    assert result.observed == {"mae": 49.0, "baseline.mae": 48.5}
    assert any("baseline: evaluate of run baseline-run" in n for n in report.notes)


def test_baseline_shows_a_regression(with_change: MLPipeline) -> None:
    baseline = with_change.baseline_bundle({"metrics": {"mae": 47.0}})  # worse by 2 > 1
    [failure] = only(with_change.verify(baseline=baseline), Check.OBJECTIVE)
    assert "'no-regression'" in failure.message
    assert failure.expected == "worsening <= 1.0"


@pytest.mark.parametrize("signer", ["intruder", "ml-engineer"])
def test_baseline_signed_by_a_key_not_allowed(with_change: MLPipeline, signer: str) -> None:
    # the intruder is unknown; the ML engineer is known but may not sign evaluate
    baseline = with_change.baseline_bundle(
        {"metrics": {"mae": 48.5}}, signer=with_change.keys[signer]
    )
    report = with_change.verify(baseline=baseline)
    assert checks_of(report) == {Check.BASELINE, Check.OBJECTIVE}
    [failure] = [f for f in report.failures if f.check is Check.BASELINE]
    assert failure.stage == "evaluate"
    assert "not signed by a functionary of its stage" in failure.message
    assert failure.source == str(baseline)


def test_baseline_altered_after_signing(with_change: MLPipeline) -> None:
    baseline = with_change.baseline_bundle({"metrics": {"mae": 40.0}})

    def flatter(statement: dict[str, Any]) -> None:
        statement["predicate"]["byproducts"]["mlspec"]["metrics"]["mae"] = 48.5

    rewrite_payload(baseline, flatter)
    report = with_change.verify(baseline=baseline)
    assert checks_of(report) == {Check.BASELINE, Check.OBJECTIVE}


def test_baseline_of_another_stage_is_refused(with_change: MLPipeline) -> None:
    """The change criterion compares evaluate; a test attestation is no baseline for it."""
    baseline = with_change.baseline_bundle({"metrics": {"mae": 60.0}}, stage="test")
    report = with_change.verify(baseline=baseline)
    assert checks_of(report) == {Check.BASELINE, Check.OBJECTIVE}
    [failure] = [f for f in report.failures if f.check is Check.BASELINE]
    assert failure.stage == "evaluate"
    assert "baseline is an attestation of 'test'" in failure.message
    assert (
        "no baseline metrics"
        in next(f for f in report.failures if f.check is Check.OBJECTIVE).message
    )


def test_the_run_itself_is_no_baseline(with_change: MLPipeline) -> None:
    """Comparing a model with itself always shows no worsening: refused."""
    own = next(
        p
        for p in with_change.store.run_dir(with_change.run_id).iterdir()
        if p.name.startswith("evaluate.")
    )
    report = with_change.verify(baseline=own)
    assert checks_of(report) == {Check.BASELINE, Check.OBJECTIVE}
    [failure] = [f for f in report.failures if f.check is Check.BASELINE]
    assert "comes from the run being verified" in failure.message
    assert (
        "no baseline metrics"
        in next(f for f in report.failures if f.check is Check.OBJECTIVE).message
    )


def test_baseline_unreadable(with_change: MLPipeline, tmp_path: Path) -> None:
    garbage = tmp_path / "baseline.json"
    garbage.write_text(json.dumps({"not": "a bundle"}))
    report = with_change.verify(baseline=garbage)
    assert checks_of(report) == {Check.BASELINE, Check.OBJECTIVE}
    assert any("baseline unreadable" in f.message for f in report.failures)
