"""A signed summary claims a level only for a family of checks that ran and passed.

verify/levels.py: a family whose checks were ``not-run`` (their stage absent) or that
ran no check at all is ``not-run``, never ``passed``, so its ``MLSPEC_*`` level is not
in ``verifiedLevels``. And an ML section that names a stage with no accepted
attestation denies (data validation and leakage as separation and objectives do), so an
optional stage left out cannot turn a demanded check into a silent pass. The exception,
documented in docs/policy.md: ``objectives.required: false`` asks for the criteria to be
skipped without the stage; the run passes, but MLSPEC_OBJECTIVES_MET is not claimed.

The real signed pipeline of tests/mlpipeline.py, with the policy edited per case.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlspec_attest.verify.ledger import CheckRun
from mlspec_attest.verify.levels import family_results
from mlspec_attest.verify.report import Check, Failure, VerificationReport
from mlspec_attest.verify.summary import SummaryOptions, build_summary

from .mlpipeline import TEST_METRICS, MLPipeline, csv, only, raw_rows
from .support import KeyPair
from .test_checks_holdback_exact import EditedPolicy

OPTIONS = SummaryOptions("https://models.example.org/m", "policy")
VALIDATE = "  - name: validate\n    kind: validate\n"
OBJECTIVES = "  - name: objectives\n    kind: objectives\n"


def optional(stage_head: str) -> tuple[str, str]:
    """A policy edit: the stage whose first lines are ``stage_head`` is ``required: false``."""
    return stage_head, stage_head + "    required: false\n"


def results(report: VerificationReport) -> dict[str, Any]:
    return {str(f["level"]): f["result"] for f in family_results(report)}


def levels(report: VerificationReport) -> tuple[str, ...]:
    return build_summary(report, OPTIONS).levels


def sign_without(ml: MLPipeline, *absent: str, test: dict[str, Any] | None = None) -> None:
    """Every stage but ``absent`` (the raw data written as validate would have it)."""
    csv(ml.ws / "data/raw.csv", raw_rows())
    for stage in ("objectives", "validate", "split", "train", "evaluate", "test"):
        if stage in absent:
            continue
        kw = {"metrics": test} if stage == "test" and test is not None else {}
        getattr(ml, f"sign_{stage}")(**kw)


def test_the_honest_pipeline_claims_every_level_its_policy_demands(ml: MLPipeline) -> None:
    report = ml.run().verify()
    assert report.failures == []
    assert levels(report) == report.demanded
    assert "MLSPEC_DATA_VALIDATED" in report.demanded
    assert set(results(report).values()) == {"passed", "not-required"}


def test_data_validation_naming_an_absent_optional_stage_is_a_denial(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """The reported case: dataValidation on an optional validate stage that did not run
    passed, and the summary claimed MLSPEC_DATA_VALIDATED."""
    ml = EditedPolicy(tmp_path / "p", keys, optional(VALIDATE))
    sign_without(ml, "validate")
    report = ml.verify()
    assert only(report, Check.DATA_VALIDATION) == [
        Failure(
            Check.DATA_VALIDATION,
            "validate",
            "no verified validation stage: data validation cannot be checked",
            expected="an accepted attestation of 'validate' carrying details.validation",
            found="none",
            remedy="run and sign the 'validate' stage the policy's dataValidation names "
            "(or fix its failures above)",
        )
    ]
    # an optional stage left out is no root cause of its own: this failure is the cause
    assert [why for _, why in report.classified_failures()] == [""]
    assert results(report)["MLSPEC_DATA_VALIDATED"] == "failed"
    assert levels(report) == ("FAILED",)


def test_leakage_naming_an_absent_optional_stage_is_a_denial(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    resplit = (
        "  - name: train\n",
        "  - name: resplit\n    kind: split\n    required: false\n"
        "    functionaries: [data-engineer]\n    after: [validate]\n  - name: train\n",
    )
    ml = EditedPolicy(
        tmp_path / "p",
        keys,
        resplit,
        ("leakage:\n  stage: split\n", "leakage:\n  stage: resplit\n"),
    )
    report = ml.run().verify()
    assert only(report, Check.LEAKAGE) == [
        Failure(
            Check.LEAKAGE,
            "resplit",
            "no verified split stage: the leakage proof cannot be checked",
            expected="an accepted attestation of 'resplit' carrying details.leakage",
            found="none",
            remedy="run and sign the 'resplit' stage the policy's leakage section names "
            "(or fix its failures above)",
        )
    ]
    assert results(report)["MLSPEC_LEAKAGE_FREE"] == "failed"


def test_an_absent_optional_objectives_stage_is_not_claimed_as_objectives_met(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """objectives.required: false skips the criteria, as documented; with a test MAE of 500
    the run passes, but the summary does not say the objectives were met."""
    ml = EditedPolicy(
        tmp_path / "p",
        keys,
        optional(OBJECTIVES),
        (
            "objectives:\n  stage: objectives\n",
            "objectives:\n  stage: objectives\n  required: false\n",
        ),
    )
    assert ml.signed.policy.objectives_required is False
    awful = json.loads(json.dumps(TEST_METRICS))
    awful["metrics"]["mae"] = 500.0
    sign_without(ml, "objectives", test=awful)
    report = ml.verify()
    assert report.failures == []
    assert "MLSPEC_OBJECTIVES_MET" in report.demanded
    assert results(report)["MLSPEC_OBJECTIVES_MET"] == "not-run"
    assert levels(report) == tuple(
        level for level in report.demanded if level != "MLSPEC_OBJECTIVES_MET"
    )


def test_a_check_that_did_not_run_never_counts_as_passed() -> None:
    """family_results on the ledger alone: not run, or nothing listed, is not a pass."""

    def report(*runs: CheckRun) -> VerificationReport:
        return VerificationReport(
            "p", "sha256:" + "0" * 64, "run", "2098-01-01T00:00:00Z",
            checks=list(runs), demanded=("MLSPEC_SIGNED_CHAIN", "MLSPEC_DATA_VALIDATED"),
        )  # fmt: skip

    ran = CheckRun("data-validation", "validate", "pass")
    skipped = CheckRun("data-validation", "validate", "not-run", {"why": "absent"})
    assert results(report(ran))["MLSPEC_DATA_VALIDATED"] == "passed"
    assert results(report(skipped))["MLSPEC_DATA_VALIDATED"] == "not-run"
    assert results(report())["MLSPEC_DATA_VALIDATED"] == "not-run"
    assert results(report(ran, skipped))["MLSPEC_DATA_VALIDATED"] == "not-run"
    assert levels(report(skipped)) == ("MLSPEC_SIGNED_CHAIN",)
    assert results(report(skipped))["MLSPEC_OBJECTIVES_MET"] == "not-required"
