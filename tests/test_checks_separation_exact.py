"""verify/checks/separation.py, exactly: every separation failure as a whole record.

The real signed pipeline of tests/mlpipeline.py, one cheat per case. Each case asserts the
failure record field by field (check, stage, message, expected, found, remedy), so a
changed text, a digest left out or a stage judged by the wrong rule is noticed (mutation
testing, docs/testing.md). Where a remedy names one of the caller's inputs (a role), only
the words around that name are asserted: the name is the caller's (library or CLI).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.report import Check, Failure, VerificationReport

from .mlpipeline import MLPipeline, csv, only
from .support import KeyPair, checks_of
from .test_checks_holdback_exact import EditedPolicy, finetune, sign_with_kind
from .test_holdback_content import until
from .test_mlchecks_failures import Statement, mlspec, run_editing

HOLDBACK = "data/split/holdback.csv"


def short_of(ml: MLPipeline, path: str) -> str:
    """How a report shows the digest of the workspace file ``path``."""
    return f"sha256:{hashlib.sha256((ml.ws / path).read_bytes()).hexdigest()[:16]}…"


def separation_failure(report: VerificationReport, check: Check) -> Failure:
    [failure] = [f for f in report.failures if f.check is check]
    return failure


def assert_remedy(failure: Failure, before: str, after: str = "") -> None:
    """The remedy's own words, around the caller's name of an input."""
    assert failure.remedy.startswith(before), failure.remedy
    assert failure.remedy.endswith(after), failure.remedy
    assert len(failure.remedy) > len(before) + len(after), failure.remedy


def without_remedy(failure: Failure) -> Failure:
    return Failure(failure.check, failure.stage, failure.message, failure.expected, failure.found)


# -- split, evaluate and test, and the split's hold-back product --------------------------
def missing_stages(found: str) -> Failure:
    return Failure(
        Check.HOLDBACK_NOT_TESTED,
        "test",
        "cannot prove evaluation/test separation",
        expected="verified attestations of split, evaluate and test",
        found=found,
        remedy="fix the stage failures above",
    )


def test_without_evaluate_and_test_separation_names_both_missing(ml: MLPipeline) -> None:
    until(ml, "train")
    report = ml.verify()
    assert separation_failure(report, Check.HOLDBACK_NOT_TESTED) == missing_stages(
        "missing: evaluate, test"
    )


def test_without_the_split_alone_separation_cannot_be_proven(ml: MLPipeline) -> None:
    """Evaluate and test are there; the split is not: reported, never looked into."""
    ml.sign_objectives()
    ml.sign_validate()
    ml.sign_split(store=AttestationStore(ml.root / "elsewhere"))  # the files, not the attestation
    for stage in ("train", "evaluate", "test"):
        getattr(ml, f"sign_{stage}")()
    report = ml.verify()
    assert separation_failure(report, Check.HOLDBACK_NOT_TESTED) == missing_stages("missing: split")


def test_a_split_without_a_holdback_role_is_reported_whole(ml: MLPipeline) -> None:
    def unrole(statement: Statement) -> None:
        del mlspec(statement)["roles"]["holdback"]

    report = run_editing(ml, "split", unrole).verify()
    assert checks_of(report) == {Check.HOLDBACK_NOT_TESTED, Check.LEAKAGE}
    failure = separation_failure(report, Check.HOLDBACK_NOT_TESTED)
    assert (failure.stage, failure.message, failure.found) == (
        "split",
        "split records no 'holdback' product",
        "roles ['train', 'validation']",
    )
    # the role as the library names it (the CLI says --role holdback=PATH)
    assert failure.expected == "roles['holdback'] = PATH on a product of split"
    assert failure.remedy == "sign the split stage with roles['holdback'] = <hold-back file>"


# -- the test stage consumed the hold-back split ----------------------------------------
def test_a_test_on_other_data_is_reported_with_both_files_and_digests(ml: MLPipeline) -> None:
    csv(ml.ws / "data/fresh.csv", ["60,30.0,F,300", "61,31.0,M,310"])
    [failure] = only(ml.run(test={"data": "data/fresh.csv"}).verify(), Check.HOLDBACK_NOT_TESTED)
    assert failure == Failure(
        Check.HOLDBACK_NOT_TESTED,
        "test",
        "test did not consume the hold-back split produced by split",
        expected=f"material with role 'holdback' = {HOLDBACK} ({short_of(ml, HOLDBACK)})",
        found=f"data/fresh.csv ({short_of(ml, 'data/fresh.csv')})",
        remedy="run test on exactly the hold-back file split produced, with roles['holdback'] = …",
    )


def test_a_test_without_a_holdback_role_is_reported_as_such(ml: MLPipeline) -> None:
    until(ml, "evaluate")
    (ml.ws / "reports/test.json").write_text(json.dumps({"metrics": {"mae": 50.0, "r2": 0.45}}))
    ml.sign(
        "test",
        materials=["model.bin", HOLDBACK],
        products=["reports/test.json"],
        roles={"model": "model.bin"},  # the hold-back file read, but not under its role
        metrics_file="reports/test.json",
    )
    report = ml.verify()
    assert checks_of(report) == {Check.HOLDBACK_NOT_TESTED, Check.OBJECTIVE}  # no slices
    failure = separation_failure(report, Check.HOLDBACK_NOT_TESTED)
    assert (failure.stage, failure.message) == (
        "test",
        "test did not consume the hold-back split produced by split",
    )
    assert failure.expected == (
        f"material with role 'holdback' = {HOLDBACK} ({short_of(ml, HOLDBACK)})"
    )
    assert failure.found == "no such role (none)"


def test_a_holdback_role_naming_no_material_of_the_test_is_reported(ml: MLPipeline) -> None:
    """The role names the stage's own product: no material of that name, so no digest."""
    until(ml, "evaluate")
    (ml.ws / "reports/test.json").write_text(json.dumps({"metrics": {"mae": 50.0, "r2": 0.45}}))
    ml.sign(
        "test",
        materials=["model.bin", HOLDBACK],
        products=["reports/test.json"],
        roles={"model": "model.bin", "holdback": "reports/test.json"},
        metrics_file="reports/test.json",
    )
    report = ml.verify()
    assert checks_of(report) == {Check.HOLDBACK_NOT_TESTED, Check.OBJECTIVE}  # no slices
    failure = separation_failure(report, Check.HOLDBACK_NOT_TESTED)
    assert (failure.stage, failure.found) == ("test", "reports/test.json (none)")


# -- no stage in notReadBy read the hold-back file ----------------------------------------
def test_a_holdback_read_by_evaluate_is_reported_with_its_whole_record(ml: MLPipeline) -> None:
    report = ml.run(evaluate={"extra_materials": [HOLDBACK]}).verify()
    assert only(report, Check.HOLDBACK_READ) == [read_by(ml, "evaluate")]


def test_a_stage_left_out_of_not_read_by_may_read_the_holdback_file(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """notReadBy [train]: evaluate is neither named nor of a listed kind."""
    ml = EditedPolicy(
        tmp_path / "p", keys, ("  test: test\n", "  test: test\n  notReadBy: [train]\n")
    )
    assert ml.run(evaluate={"extra_materials": [HOLDBACK]}).verify().failures == []


def read_by(ml: MLPipeline, stage: str) -> Failure:
    """The failure of ``stage`` reading the hold-back file itself (for 'finetune', its rows are
    the split's own product, which the row-level check leaves to the leakage proof)."""
    digest = short_of(ml, HOLDBACK)
    return Failure(
        Check.HOLDBACK_READ,
        stage,
        f"stage read the hold-back data ({HOLDBACK})",
        expected=f"no material equal to {HOLDBACK} ({digest})",
        found=f"material {HOLDBACK} ({digest})",
        remedy="hold-back data may only be read by the test stage; re-split and retrain",
    )


def test_a_stage_of_a_listed_kind_may_not_read_the_holdback_file(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """'finetune' is not named in notReadBy, but it is a train stage, which is."""
    ml = EditedPolicy(tmp_path / "p", keys, finetune("train"))
    until(ml, "train")
    sign_with_kind(ml, "finetune", "train", ["model.bin", HOLDBACK])
    ml.sign_evaluate()
    ml.sign_test()
    assert only(ml.verify(), Check.HOLDBACK_READ) == [read_by(ml, "finetune")]


def test_a_stage_named_in_not_read_by_may_not_read_the_holdback_file_whatever_its_kind(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    ml = EditedPolicy(
        tmp_path / "p",
        keys,
        finetune("custom"),
        ("  test: test\n", "  test: test\n  notReadBy: [train, finetune]\n"),
    )
    until(ml, "train")
    sign_with_kind(ml, "finetune", "custom", ["model.bin", HOLDBACK])
    ml.sign_evaluate()
    ml.sign_test()
    assert only(ml.verify(), Check.HOLDBACK_READ) == [read_by(ml, "finetune")]


# -- the same model, after evaluation, on other data ---------------------------------------
def test_another_model_under_test_is_reported_with_both_digests(ml: MLPipeline) -> None:
    until(ml, "evaluate")
    (ml.ws / "model-v2.bin").write_bytes(b"a better model, nobody evaluated it")
    ml.sign_test(model="model-v2.bin")
    [failure] = only(ml.verify(), Check.TEST_MODEL)
    assert failure == Failure(
        Check.TEST_MODEL,
        "test",
        "test and evaluation did not use the same model",
        expected=f"'model' material of evaluate: {short_of(ml, 'model.bin')}",
        found=f"'model' material of test: {short_of(ml, 'model-v2.bin')}",
        remedy="record the model with roles['model'] = … in both stages and test the evaluated "
        "model",
    )


def test_a_test_started_before_evaluation_finished_is_reported_whole(ml: MLPipeline) -> None:
    until(ml, "train")
    early = ml.clock()
    ml.sign_evaluate()
    ml.sign_test(started_on=early)
    finished = ml.signed_stages["evaluate"].statement.metadata.finished_on
    assert only(ml.verify(), Check.TEST_ORDER) == [
        Failure(
            Check.TEST_ORDER,
            "test",
            "test started before evaluate finished",
            expected=f"start at or after {finished}",
            found=f"started {early}",
            remedy="run the hold-back test only after evaluation is complete",
        )
    ]


def test_test_data_reused_from_evaluation_is_reported_whole(ml: MLPipeline) -> None:
    report = ml.run(test={"data": "data/split/validation.csv"}).verify()
    assert checks_of(report) == {Check.TEST_DATA_REUSED, Check.HOLDBACK_NOT_TESTED}
    assert separation_failure(report, Check.TEST_DATA_REUSED) == Failure(
        Check.TEST_DATA_REUSED,
        "test",
        "test used the same data as evaluation",
        expected="hold-back data different from the evaluation data",
        found=f"both {short_of(ml, 'data/split/validation.csv')}",
        remedy="evaluate on the validation split, test on the hold-back split",
    )
