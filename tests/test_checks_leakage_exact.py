"""verify/checks/leakage.py, exactly: every leakage failure as a whole record.

The real signed pipeline of tests/mlpipeline.py; where a case needs a leakage record a
correct signer never writes, the split stage's statement is edited and signed again with
its own key (tests/test_mlchecks_failures.py). Each case asserts the failure records field
by field, so a changed text, a finding's expected or found left out, or the wrong remedy
for its kind is noticed (mutation testing, docs/testing.md). Where a remedy names one of
the caller's inputs (the splits), only the words around that name are asserted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from mlspec_attest.errors import PolicyError
from mlspec_attest.policy.signed import load_signed_policy
from mlspec_attest.verify.pipeline import verify_pipeline
from mlspec_attest.verify.report import Check, Failure

from .mlpipeline import MakeML, MLPipeline, only
from .support import VERIFY_NOW, KeyPair, checks_of
from .test_checks_holdback_exact import EditedPolicy
from .test_mlchecks_failures import Statement, mlspec, run_editing

PAIRS = "pairs: [[train, holdback], [train, validation], [validation, holdback]]"


def leakage(statement: Statement) -> dict[str, Any]:
    record: dict[str, Any] = mlspec(statement)["details"]["leakage"]
    return record


def leakage_failure(message: str, expected: str, found: str, remedy: str) -> Failure:
    return Failure(Check.LEAKAGE, "split", message, expected=expected, found=found, remedy=remedy)


def assert_remedy(failure: Failure, before: str, after: str) -> None:
    """The remedy's own words, around the caller's name of an input."""
    assert failure.remedy.startswith(before), failure.remedy
    assert failure.remedy.endswith(after), failure.remedy
    assert len(failure.remedy) > len(before) + len(after), failure.remedy


def without_remedy(failure: Failure) -> Failure:
    return Failure(failure.check, failure.stage, failure.message, failure.expected, failure.found)


def test_a_split_without_a_leakage_proof_is_reported_whole(ml: MLPipeline) -> None:
    def unprove(statement: Statement) -> None:
        del mlspec(statement)["details"]["leakage"]

    report = run_editing(ml, "split", unprove).verify()
    [failure] = [f for f in report.failures if f.check is Check.LEAKAGE]
    assert without_remedy(failure) == Failure(
        Check.LEAKAGE,
        "split",
        "the split attestation carries no leakage proof",
        expected="details.leakage with per-split row digest sets",
        found="none",
    )
    assert_remedy(failure, "sign the split stage with ", " for each split")


def test_a_proof_bound_to_another_file_is_reported_whole(ml: MLPipeline) -> None:
    def rename(statement: Statement) -> None:
        leakage(statement)["splits"]["validation"]["artifact"] = "data/elsewhere.csv"

    products = ["data/split/holdback.csv", "data/split/train.csv", "data/split/validation.csv"]
    assert only(run_editing(ml, "split", rename).verify(), Check.LEAKAGE) == [
        leakage_failure(
            "leakage proof for 'validation' covers 'data/elsewhere.csv', "
            "but the stage's 'validation' role is 'data/split/validation.csv'",
            "data/split/validation.csv",
            "data/elsewhere.csv",
            "re-sign the split stage",
        ),
        leakage_failure(
            "leakage proof for 'validation' names 'data/elsewhere.csv', not a product",
            "each proven split is a product of the split stage",
            str(products),
            "re-sign the split stage",
        ),
    ]


def test_a_policy_pair_naming_one_split_twice_is_refused_with_the_policy(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """[[train, train]] is the policy's fault, so the policy is refused, not the split."""
    with pytest.raises(PolicyError) as info:
        EditedPolicy(tmp_path / "p", keys, (PAIRS, "pairs: [[train, train]]"))
    assert [str(p).split(": error: ", 1)[1] for p in info.value.problems] == [
        "leakage.pairs[0]: a pair compares two different splits, not 'train' with itself"
    ]


# -- each finding of the recomputation, with the remedy of its kind ------------------------
def test_an_overlap_beyond_the_tolerance_is_reported_whole(make_ml: MakeML) -> None:
    report = make_ml(tolerance=0).run(split={"duplicate_row": True}).verify()
    # train read that row, too: the hold-back content check denies it (test_holdback_exemption)
    assert checks_of(report) == {Check.LEAKAGE, Check.HOLDBACK_READ}
    assert [f.stage for f in report.failures if f.check is Check.HOLDBACK_READ] == ["train"]
    assert [f for f in report.failures if f.check is Check.LEAKAGE] == [
        leakage_failure(
            "holdback|train: 1 row(s) appear in both splits (tolerance 0) "
            "[overlap-exceeds-tolerance]",
            "at most 0",
            "1",
            "rows are shared between splits: de-duplicate before splitting and re-run from split",
        )
    ]


def test_a_wrong_attested_overlap_count_is_reported_whole(ml: MLPipeline) -> None:
    def miscount(statement: Statement) -> None:
        leakage(statement)["overlaps"]["holdback|train"] = 3

    report = run_editing(ml, "split", miscount).verify()
    # the hold-back content check reads the same count (test_holdback_exemption)
    assert checks_of(report) == {Check.LEAKAGE, Check.HOLDBACK_EVIDENCE}
    assert [f for f in report.failures if f.check is Check.LEAKAGE] == [
        leakage_failure(
            "holdback|train: the stored digest sets share 0 rows, the attestation says 3 "
            "[attested-count-wrong]",
            "0",
            "3",
            "the signed overlap counts do not match the stored digest sets; re-run the split stage",
        )
    ]


def test_a_digest_set_missing_from_the_store_is_reported_whole(ml: MLPipeline) -> None:
    ml.run()
    record = ml.signed_stages["split"].statement.metadata.details["leakage"]
    address = record["splits"]["holdback"]["digestSet"]
    (ml.store_path / "blobs/sha256" / address.removeprefix("sha256:")).unlink()
    report = ml.verify()
    assert checks_of(report) == {Check.LEAKAGE, Check.HOLDBACK_EVIDENCE}
    failure = leakage_failure(
        f"split 'holdback': digest set {address} is not in the store (absent, or its bytes no "
        "longer match the address) [digest-set-missing]",
        address,
        "nothing",
        "copy the store with its blobs/ folder, or re-run the split stage",
    )
    # both pairs with the hold-back need the set
    assert [f for f in report.failures if f.check is Check.LEAKAGE] == [failure, failure]


def test_a_split_left_out_of_the_proof_is_reported_whole(ml: MLPipeline) -> None:
    def drop(statement: Statement) -> None:
        del leakage(statement)["splits"]["validation"]

    failures = only(run_editing(ml, "split", drop).verify(), Check.LEAKAGE)
    assert [without_remedy(f) for f in failures] == [
        without_remedy(
            leakage_failure(
                f"the stage attests split(s) 'validation' but the leakage record has no digest "
                f"set for them, so {pair} cannot be checked [split-missing]",
                f"digest sets for {a!r} and {b!r}",
                "no digest set for 'validation'",
                "",
            )
        )
        for pair, a, b in [
            ("train|validation", "train", "validation"),
            ("holdback|validation", "validation", "holdback"),
        ]
    ]
    for failure in failures:
        assert_remedy(failure, "sign the split stage with ", " for every split the policy names")


def test_a_malformed_leakage_record_is_reported_whole(ml: MLPipeline) -> None:
    def malform(statement: Statement) -> None:
        del leakage(statement)["overlaps"]

    report = run_editing(ml, "split", malform).verify()
    assert checks_of(report) == {Check.LEAKAGE, Check.HOLDBACK_EVIDENCE}
    assert [f for f in report.failures if f.check is Check.LEAKAGE] == [
        leakage_failure(
            "the leakage record does not match leakage/v2: (root): 'overlaps' is a required "
            "property [record-malformed]",
            "https://mlspec-attest.dev/leakage/v2 (mlspec-rows/v2)",
            "",
            "the signed leakage record is not a leakage/v2 document; re-run the split stage",
        )
    ]


def test_a_retired_canonicalization_is_reported_with_its_remedy(ml: MLPipeline) -> None:
    def to_v1(statement: Statement) -> None:
        record = leakage(statement)
        record["schemaVersion"] = "https://mlspec-attest.dev/leakage/v1"
        record["canonicalization"] = "mlspec-rows/v1"

    report = run_editing(ml, "split", to_v1).verify()
    [failure] = [f for f in report.failures if f.check is Check.LEAKAGE]
    assert failure.message.endswith(
        "(expected 'https://mlspec-attest.dev/leakage/v2' with "
        "'mlspec-rows/v2') [canonicalization-retired]"
    )
    assert (failure.stage, failure.expected, failure.found) == (
        "split",
        "https://mlspec-attest.dev/leakage/v2 (mlspec-rows/v2)",
        "",
    )
    assert failure.remedy == (
        "re-run the split stage, and every stage after it, with this version of mlspec-attest "
        "(mlspec-rows/v2; docs/leakage.md, backward compatibility)"
    )


# -- what only a hand-built policy or a forged record reaches --------------------------------
def test_a_rule_the_policy_compiler_refuses_is_a_denial_not_a_crash(ml: MLPipeline) -> None:
    """A Policy built in Python, not compiled, may pair a split with itself: still denied."""
    ml.run()
    signed = load_signed_policy(ml.signed_policy_path)
    assert signed.policy.leakage is not None
    rule = replace(signed.policy.leakage, pairs=(("train", "train"),))
    odd = replace(signed, policy=replace(signed.policy, leakage=rule))
    report = verify_pipeline(
        odd, [ml.keys["owner"].public], ml.store, run_id=ml.run_id, now=VERIFY_NOW
    )
    assert only(report, Check.LEAKAGE) == [
        Failure(
            Check.LEAKAGE,
            "split",
            "leakage proof unreadable: leakage pair ('train', 'train') names the same split twice",
            remedy="re-sign the split stage",
        )
    ]


MALFORMED_REMEDY = "the signed leakage record is not a leakage/v2 document; re-run the split stage"


def malformed(where: str) -> Failure:
    return leakage_failure(
        f"the leakage record does not match leakage/v2: {where}: 'not a map' is not of type "
        "'object' [record-malformed]",
        "https://mlspec-attest.dev/leakage/v2 (mlspec-rows/v2)",
        "",
        MALFORMED_REMEDY,
    )


def leakage_failures(ml: MLPipeline, splits: Any) -> list[Failure]:
    def forge(statement: Statement) -> None:
        leakage(statement)["splits"] = splits

    report = run_editing(ml, "split", forge).verify()
    return [f for f in report.failures if f.check is Check.LEAKAGE]


def test_a_record_whose_splits_are_no_map_is_malformed_not_a_crash(ml: MLPipeline) -> None:
    assert leakage_failures(ml, "not a map") == [malformed("splits")]


def test_a_split_entry_that_is_no_map_binds_to_nothing_and_is_malformed(ml: MLPipeline) -> None:
    products = "['data/split/holdback.csv', 'data/split/train.csv', 'data/split/validation.csv']"
    assert leakage_failures(ml, {"train": "not a map"}) == [
        leakage_failure(
            "leakage proof for 'train' covers None, but the stage's 'train' role is "
            "'data/split/train.csv'",
            "data/split/train.csv",
            "None",
            "re-sign the split stage",
        ),
        leakage_failure(
            "leakage proof for 'train' names None, not a product",
            "each proven split is a product of the split stage",
            products,
            "re-sign the split stage",
        ),
        malformed("splits/train"),
    ]
