"""The split stage's own splits are no blind spot of the hold-back content check.

A material equal to one of the split stage's proven splits (``train.csv``,
``validation.csv``) is not compared row by row like any other material: the split
itself is compared with the hold-back split, from the stored row digest sets the split
stage signed, whatever the policy's ``leakage.pairs`` compare (or whether the policy has
a ``leakage`` section at all). Before, such a material was simply skipped "for the
leakage proof", which with the default pairs never compares validation with the
hold-back, and without a ``leakage`` section compares nothing: a hold-back row in
``validation.csv``, read by evaluate, passed and the summary claimed
MLSPEC_HOLDBACK_ISOLATED.

The real signed pipeline of tests/mlpipeline.py (real keys, files and row digest sets),
with the policy edited where a case needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlspec_attest.verify.levels import family_results
from mlspec_attest.verify.report import Check, Failure
from mlspec_attest.verify.summary import SummaryOptions, build_summary

from .mlpipeline import MLPipeline, csv, only
from .support import KeyPair, checks_of
from .test_checks_holdback_exact import EVIDENCE_REMEDY, READ_REMEDY, EditedPolicy
from .test_holdback_content import details, resign

#: the test policy's leakage pairs compare validation with the hold-back: take them out
DEFAULT_PAIRS = (
    "  pairs: [[train, holdback], [train, validation], [validation, holdback]]\n",
    "",
)
#: no leakage section at all: separation alone
NO_LEAKAGE = (
    "leakage:\n  stage: split\n  tolerance: {tolerance}\n"
    "  pairs: [[train, holdback], [train, validation], [validation, holdback]]\n",
    "",
)
HOLDBACK = "data/split/holdback.csv"


def sign_split(ml: MLPipeline, *, leak_into: str | None = None, extra: bool = False) -> None:
    """Objectives, validate, then split 18/6/6 rows; ``leak_into`` copies the first hold-back
    row into that split; ``extra`` adds a split 'calibration' holding that row."""
    ml.sign_objectives()
    ml.sign_validate()
    rows = (ml.ws / "data/raw.csv").read_text().splitlines()[1:]
    parts = {"train": rows[:18], "validation": rows[18:24], "holdback": rows[24:]}
    if leak_into is not None:
        parts[leak_into] = [*parts[leak_into], rows[24]]
    if extra:
        parts["calibration"] = [rows[0], rows[24]]
    for role, part in parts.items():
        csv(ml.ws / f"data/split/{role}.csv", part)
    ml.sign(
        "split",
        materials=["data/raw.csv"],
        splits={role: f"data/split/{role}.csv" for role in parts},
        parameters={"seed": 7},
    )


def rest(ml: MLPipeline) -> MLPipeline:
    for stage in ("train", "evaluate", "test"):
        getattr(ml, f"sign_{stage}")()
    return ml


def overlaps(ml: MLPipeline) -> dict[str, Any]:
    found: dict[str, Any] = ml.signed_stages["split"].statement.metadata.details["leakage"][
        "overlaps"
    ]
    return found


def read_failure(stage: str, role: str, material: str) -> Failure:
    return Failure(
        Check.HOLDBACK_READ,
        stage,
        f"stage read 1 row(s) of the hold-back split {HOLDBACK} in material {material} "
        f"(the split stage's {role!r} split)",
        expected=f"at most 0 row(s) of the 'holdback' split ({HOLDBACK}) in a split the "
        "stage reads",
        found=f"1 hold-back row(s) in {material}",
        remedy=READ_REMEDY,
    )


def test_a_holdback_row_in_the_validation_split_denies_evaluate_under_the_default_pairs(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """The reported case: default pairs, the split's own record says holdback|validation: 1."""
    ml = EditedPolicy(tmp_path / "p", keys, DEFAULT_PAIRS)
    assert ml.signed.policy.leakage is not None
    assert ("validation", "holdback") not in ml.signed.policy.leakage.pairs
    sign_split(ml, leak_into="validation")
    assert overlaps(ml)["holdback|validation"] == 1
    report = rest(ml).verify()
    assert only(report, Check.HOLDBACK_READ) == [
        read_failure("evaluate", "validation", "data/split/validation.csv")
    ]
    summary = build_summary(report, SummaryOptions("https://models.example.org/m", "policy"))
    assert summary.levels == ("FAILED",)
    results = {f["level"]: f["result"] for f in family_results(report)}
    assert results["MLSPEC_HOLDBACK_ISOLATED"] == "failed"


def test_separation_without_a_leakage_section_denies_train_reading_holdback_rows(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """No leakage section: nothing compared the splits; train read a hold-back row."""
    ml = EditedPolicy(tmp_path / "p", keys, NO_LEAKAGE)
    assert ml.signed.policy.leakage is None
    sign_split(ml, leak_into="train")
    report = rest(ml).verify()
    assert only(report, Check.HOLDBACK_READ) == [
        read_failure("train", "train", "data/split/train.csv")
    ]


def test_without_a_leakage_section_the_tolerance_is_zero(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """The honest split passes; one shared row is one too many without a leakage tolerance."""
    honest = EditedPolicy(tmp_path / "honest", keys, NO_LEAKAGE)
    sign_split(honest)
    assert rest(honest).verify().failures == []
    leaked = EditedPolicy(tmp_path / "leaked", keys, NO_LEAKAGE)
    sign_split(leaked, leak_into="validation")
    assert checks_of(rest(leaked).verify()) == {Check.HOLDBACK_READ}


def test_within_the_leakage_tolerance_a_validation_row_shared_with_the_holdback_passes(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """The leakage section's tolerance governs the split stage's splits, all of them."""
    ml = EditedPolicy(tmp_path / "p", keys, DEFAULT_PAIRS)
    ml.write_policy(tolerance=1)
    sign_split(ml, leak_into="validation")
    assert rest(ml).verify().failures == []


def test_a_split_no_stage_reads_with_holdback_rows_denies_the_split_stage(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """Every split of the record is compared with the hold-back split, read or not."""
    ml = EditedPolicy(tmp_path / "p", keys, DEFAULT_PAIRS)
    sign_split(ml, extra=True)
    assert overlaps(ml)["calibration|holdback"] == 1
    assert only(rest(ml).verify(), Check.HOLDBACK_READ) == [
        Failure(
            Check.HOLDBACK_READ,
            "split",
            f"split 'calibration' (data/split/calibration.csv) holds 1 row(s) of the hold-back "
            f"split {HOLDBACK} (tolerance 0)",
            expected="at most 0 row(s) shared with the 'holdback' split",
            found="1 recomputed from the stored digest sets, 1 attested",
            remedy="hold-back rows were copied into another split: de-duplicate before "
            "splitting, re-split, and re-run every stage from split",
        )
    ]


def test_an_attested_holdback_overlap_the_stored_sets_do_not_show_is_denied(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """The split's signed record says validation holds 2 hold-back rows: never a pass,
    even where leakage.pairs do not compare the pair."""
    ml = EditedPolicy(tmp_path / "p", keys, DEFAULT_PAIRS)
    sign_split(ml)

    def claim(statement: dict[str, Any]) -> None:
        details(statement)["leakage"]["overlaps"]["holdback|validation"] = 2

    resign(ml, "split", claim)
    assert only(rest(ml).verify(), Check.HOLDBACK_EVIDENCE) == [
        Failure(
            Check.HOLDBACK_EVIDENCE,
            "split",
            "holdback|validation: the stored digest sets share 0 rows, the split stage's "
            "record says 2 [attested-count-wrong]",
            expected="0",
            found="2",
            remedy=EVIDENCE_REMEDY,
        )
    ]


def test_an_unusable_set_of_a_split_a_stage_reads_is_denied(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """The validation split's stored set is gone: its overlap cannot be recomputed (no
    leakage section, so nothing else reads that set)."""
    ml = EditedPolicy(tmp_path / "p", keys, NO_LEAKAGE)
    sign_split(ml)
    rest(ml)
    address = ml.signed_stages["split"].statement.metadata.details["leakage"]["splits"][
        "validation"
    ]["digestSet"]
    (ml.store_path / "blobs/sha256" / address.removeprefix("sha256:")).unlink()
    [failure] = only(ml.verify(), Check.HOLDBACK_EVIDENCE)
    assert failure.stage == "split"
    assert failure.message == (
        f"split 'validation': digest set {address} is not in the store (absent, or its bytes "
        "no longer match the address) [digest-set-missing]"
    )
