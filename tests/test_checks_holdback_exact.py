"""verify/checks/holdback.py, exactly: which stages it judges and the whole failure record.

The real signed pipeline of tests/mlpipeline.py, with the policy edited where a case needs
another separation rule (no rule, another ``notReadBy``, a stage whose name is not its
kind). Each case asserts the complete report or the complete failure record, so a changed
remedy, expected or found text, or a stage judged or left out, is noticed (mutation
testing, docs/testing.md).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from mlspec_attest.attestation.record import StageRecord
from mlspec_attest.attestation.stage import SignedStage, sign_stage
from mlspec_attest.policy.signed import SignedPolicy
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.report import Check, Failure

from . import mlpipeline
from .mlpipeline import MLPipeline, only, write
from .support import KeyPair, checks_of
from .test_holdback_content import details, holdback_text, resign, until

SEPARATION = "separation:\n  split: split\n  evaluate: evaluate\n  test: test\n"
READ_REMEDY = (
    "hold-back data may only be read by the test stage; re-split, retrain and re-evaluate "
    "without it"
)
EVIDENCE_REMEDY = (
    "re-sign the stage with this version of mlspec-attest, which records the row digest sets "
    "of every split and material (docs/leakage.md)"
)


class EditedPolicy(MLPipeline):
    """The test pipeline with each ``(old, new)`` replacement made in its policy template."""

    def __init__(self, root: Path, keys: dict[str, KeyPair], *edits: tuple[str, str]) -> None:
        self.edits = edits
        super().__init__(root, keys)

    def write_policy(self, **kw: Any) -> SignedPolicy:
        template = mlpipeline.POLICY_TEMPLATE
        patched = template
        for old, new in self.edits:
            assert old in patched, old
            patched = patched.replace(old, new)
        mlpipeline.POLICY_TEMPLATE = patched
        try:
            return super().write_policy(**kw)
        finally:
            mlpipeline.POLICY_TEMPLATE = template


def evaluate_reading_a_holdback_copy(ml: MLPipeline) -> None:
    """Sign objectives to train, then evaluate with a gzip'd copy of the hold-back as material."""
    until(ml, "train")
    write(ml.ws / "data/extra.csv.gz", gzip.compress(holdback_text(ml).encode()))
    ml.sign_evaluate(extra_materials=["data/extra.csv.gz"])


def sign_with_kind(ml: MLPipeline, stage: str, kind: str, materials: list[str]) -> SignedStage:
    """Sign ``stage`` as a ``kind`` stage (MLPipeline.sign gives every stage its name as kind)."""
    write(ml.ws / f"{stage}.bin", stage.encode())
    record = StageRecord(
        stage=stage,
        kind=kind,
        materials=[ml.ws / m for m in materials],
        products=[ml.ws / f"{stage}.bin"],
        policy_digest=ml.signed.digest,
        started_on=ml.clock(),
    )
    signed = sign_stage(
        record,
        ml.keys["ml-engineer"].signer,
        ml.store,
        run_id=ml.run_id,
        base_dir=ml.ws,
        clock=ml.clock,
        environment={"test": True},
    )
    ml.signed_stages[stage] = signed
    return signed


# -- the whole failure records ----------------------------------------------------------
def test_a_holdback_read_is_reported_with_its_whole_record(ml: MLPipeline) -> None:
    evaluate_reading_a_holdback_copy(ml)
    ml.sign_test()
    assert only(ml.verify(), Check.HOLDBACK_READ) == [
        Failure(
            Check.HOLDBACK_READ,
            "evaluate",
            "stage read 6 row(s) of the hold-back split data/split/holdback.csv "
            "in material data/extra.csv.gz",
            expected="no row of the 'holdback' split (data/split/holdback.csv) in any material",
            found="6 hold-back row(s) in data/extra.csv.gz (csv, 6 rows)",
            remedy=READ_REMEDY,
        )
    ]


def test_missing_row_evidence_is_reported_with_its_whole_record(ml: MLPipeline) -> None:
    until(ml, "evaluate")
    resign(ml, "evaluate", lambda st: details(st).pop("materialRows"))
    ml.sign_test()
    assert only(ml.verify(), Check.HOLDBACK_EVIDENCE) == [
        Failure(
            Check.HOLDBACK_EVIDENCE,
            "evaluate",
            "the stage records no row fingerprints of its materials, so hold-back rows in "
            "them cannot be recognised",
            expected="details.materialRows (https://mlspec-attest.dev/material-rows/v1) "
            "naming every signed material",
            found="none",
            remedy=EVIDENCE_REMEDY,
        )
    ]


def test_unusable_holdback_evidence_of_the_split_is_reported_with_its_whole_record(
    ml: MLPipeline,
) -> None:
    until(ml, "split")

    def grow(st: dict[str, Any]) -> None:
        details(st)["leakage"]["splits"]["holdback"]["contentSets"]["all"]["unique"] = 7

    resign(ml, "split", grow)
    for stage in ("train", "evaluate", "test"):
        getattr(ml, f"sign_{stage}")()
    assert only(ml.verify(), Check.HOLDBACK_EVIDENCE) == [
        Failure(
            Check.HOLDBACK_EVIDENCE,
            "split",
            "split 'holdback': the stored digest set holds 6 distinct rows, the attestation "
            "says 7 [attested-count-wrong]",
            expected="6",
            found="7",
            remedy=EVIDENCE_REMEDY,
        )
    ]


# -- which stages are judged ------------------------------------------------------------
def test_without_a_separation_rule_holdback_content_is_not_checked(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    ml = EditedPolicy(tmp_path / "p", keys, (SEPARATION, ""))
    assert ml.signed.policy.separation is None
    evaluate_reading_a_holdback_copy(ml)
    ml.sign_test()
    assert ml.verify().failures == []


def test_without_a_signed_split_the_separation_check_reports_it_not_this_one(
    ml: MLPipeline,
) -> None:
    """Hold-back rows cannot be recognised without the split's digest sets: no crash, no guess."""
    ml.sign_objectives()
    ml.sign_validate()
    ml.sign_split(store=AttestationStore(ml.root / "elsewhere"))  # the files, not the attestation
    ml.sign_train()
    write(ml.ws / "data/extra.csv.gz", gzip.compress(holdback_text(ml).encode()))
    ml.sign_evaluate(extra_materials=["data/extra.csv.gz"])
    ml.sign_test()
    report = ml.verify()
    assert Check.STAGE_MISSING in checks_of(report)
    assert Check.HOLDBACK_NOT_TESTED in checks_of(report)
    assert not checks_of(report) & {Check.HOLDBACK_READ, Check.HOLDBACK_EVIDENCE}


def test_a_stage_left_out_of_not_read_by_may_read_holdback_rows(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """notReadBy [train]: evaluate is neither named nor of a listed kind, so it is not judged."""
    ml = EditedPolicy(
        tmp_path / "p", keys, ("  test: test\n", "  test: test\n  notReadBy: [train]\n")
    )
    assert ml.signed.policy.separation is not None
    assert ml.signed.policy.separation.not_read_by == ("train",)
    evaluate_reading_a_holdback_copy(ml)
    ml.sign_test()
    assert ml.verify().failures == []


def finetune(kind: str) -> tuple[str, str]:
    """A policy edit: a stage 'finetune' of ``kind``, after train, signed by the ml-engineer."""
    stage = f"  - name: finetune\n    kind: {kind}\n    functionaries: [ml-engineer]\n"
    return ("  - name: evaluate\n", stage + "    after: [train]\n  - name: evaluate\n")


def test_a_stage_is_judged_by_its_kind_when_its_name_is_not_listed(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """notReadBy lists kinds too: 'finetune' is a train stage, so it may not read the hold-back."""
    ml = EditedPolicy(tmp_path / "p", keys, finetune("train"))
    until(ml, "train")
    write(ml.ws / "data/extra.csv.gz", gzip.compress(holdback_text(ml).encode()))
    sign_with_kind(ml, "finetune", "train", ["model.bin", "data/extra.csv.gz"])
    ml.sign_evaluate()
    ml.sign_test()
    [failure] = only(ml.verify(), Check.HOLDBACK_READ)
    assert (failure.stage, failure.remedy) == ("finetune", READ_REMEDY)
    assert failure.message == (
        "stage read 6 row(s) of the hold-back split data/split/holdback.csv "
        "in material data/extra.csv.gz"
    )


def test_a_stage_of_another_kind_is_judged_when_its_name_is_listed(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """notReadBy [train, finetune]: a stage named there is judged whatever its kind."""
    ml = EditedPolicy(
        tmp_path / "p",
        keys,
        finetune("custom"),
        ("  test: test\n", "  test: test\n  notReadBy: [train, finetune]\n"),
    )
    until(ml, "train")
    write(ml.ws / "data/extra.csv.gz", gzip.compress(holdback_text(ml).encode()))
    sign_with_kind(ml, "finetune", "custom", ["model.bin", "data/extra.csv.gz"])
    ml.sign_evaluate()
    ml.sign_test()
    [failure] = only(ml.verify(), Check.HOLDBACK_READ)
    assert (failure.stage, failure.remedy) == ("finetune", READ_REMEDY)
