"""The verifier's steps one at a time, at their boundaries: signed times, agreement, ordering.

Each step lives in its own module of ``mlspec_attest/verify/`` and takes what it reads
as arguments; these tests call it directly with statements built in memory (the end-to-end
tests, with real keys and files, are tests/test_verify.py and tests/test_signed_time.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.formats.stages import StageKind
from mlspec_attest.formats.statement import (
    CommandRecord,
    ResourceDescriptor,
    StageMetadata,
    StageStatement,
)
from mlspec_attest.policy.model import Functionary, StagePolicy
from mlspec_attest.verify.accepted import AcceptedAttestation, StageEvidence
from mlspec_attest.verify.agreement import select
from mlspec_attest.verify.ordering import check_causal
from mlspec_attest.verify.report import Check, VerificationReport
from mlspec_attest.verify.signed_times import MAX_CLOCK_SKEW, check_signed_times, time_problems

from .support import KeyPair

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
D1 = "1" * 64


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _statement(started: datetime, finished: datetime, **meta: Any) -> StageStatement:
    fields: dict[str, Any] = {
        "stage": "train",
        "kind": "train",
        "run_id": "run-a",
        "started_on": _iso(started),
        "finished_on": _iso(finished),
    }
    fields.update(meta)
    return StageStatement(
        products=(ResourceDescriptor("model", {"sha256": D1}),),
        materials=(),
        metadata=StageMetadata(**fields),
        command=CommandRecord(("python", "train.py"), 0, D1, D1),
        environment={},
    )


def _report() -> VerificationReport:
    return VerificationReport("p", "sha256:" + "0" * 64, "run-a", _iso(NOW))


# -- signed times ------------------------------------------------------------------------
def test_start_equal_to_finish_and_finish_now_are_consistent() -> None:
    assert time_problems(_statement(NOW, NOW), NOW, ()) == []


def test_a_start_one_second_after_the_finish_is_refused() -> None:
    statement = _statement(NOW + timedelta(seconds=1), NOW)
    assert time_problems(statement, NOW + MAX_CLOCK_SKEW, ()) == [
        (
            "started after it finished",
            "startedOn <= finishedOn",
            "2025-06-01T12:00:01Z > 2025-06-01T12:00:00Z",
        )
    ]


def test_the_clock_skew_is_admitted_up_to_its_limit() -> None:
    at_limit = _statement(NOW, NOW + MAX_CLOCK_SKEW)
    assert time_problems(at_limit, NOW, ()) == []
    past = _statement(NOW, NOW + MAX_CLOCK_SKEW + timedelta(seconds=1))
    assert time_problems(past, NOW, ()) == [
        (
            "finished in the future",
            "finishedOn at most 2025-06-01T12:05:00Z",
            "2025-06-01T12:05:01Z",
        )
    ]


def test_a_finish_after_a_logged_time_is_refused_past_the_skew() -> None:
    logged = NOW - timedelta(hours=1)
    at_limit = _statement(logged, logged + MAX_CLOCK_SKEW)
    assert time_problems(at_limit, NOW, (logged,)) == []
    past = _statement(logged, logged + MAX_CLOCK_SKEW + timedelta(seconds=1))
    assert time_problems(past, NOW, (NOW, logged)) == [
        (
            "claims to have finished after its signature was logged",
            "finishedOn at most 2025-06-01T11:00:00Z (+ skew)",
            "2025-06-01T11:05:01Z",
        )
    ]


def test_every_time_problem_is_reported_with_the_file() -> None:
    report = _report()
    statement = _statement(NOW + timedelta(hours=2), NOW + timedelta(hours=1))
    assert not check_signed_times(statement, "train.x.json", NOW, (NOW,), report)
    assert [(f.check, f.stage, f.message, f.source) for f in report.failures] == [
        (Check.SIGNED_TIME, "train", f"signed times are inconsistent: {m}", "train.x.json")
        for m in (
            "started after it finished",
            "finished in the future",
            "claims to have finished after its signature was logged",
        )
    ]
    assert all(
        f.remedy == "check the signing machine's clock and re-sign the stage"
        for f in report.failures
    )
    assert check_signed_times(_statement(NOW, NOW), "train.y.json", NOW, (), _report())


# -- agreement -----------------------------------------------------------------------------
def _accepted(signer: KeyPair, statement: StageStatement, name: str) -> AcceptedAttestation:
    functionary = Functionary(signer.name, public_key=signer.public)
    return AcceptedAttestation(statement, functionary, Path(name), "sha256:" + name.encode().hex())


def _stage(threshold: int, *, required: bool = True) -> StagePolicy:
    return StagePolicy(
        "train",
        StageKind("train"),
        functionaries=("alice", "bob"),
        threshold=threshold,
        required=required,
    )


@pytest.mark.parametrize("threshold", [1, 2])
def test_a_threshold_is_met_by_exactly_that_many_agreeing_keys(
    keys: dict[str, KeyPair], threshold: int
) -> None:
    statement = _statement(NOW, NOW)
    signers = list(keys.values())[:threshold]
    accepted = [_accepted(k, statement, f"train.{k.name}.json") for k in signers]
    report = _report()
    evidence = select(_stage(threshold), accepted, "run-a", report)
    assert evidence is not None and len(evidence.keyids) == threshold
    assert report.failures == []


def test_one_key_short_of_the_threshold_is_refused_but_still_chosen(
    keys: dict[str, KeyPair],
) -> None:
    key = next(iter(keys.values()))
    statement = _statement(NOW, NOW)
    accepted = [_accepted(key, statement, "a.json"), _accepted(key, statement, "b.json")]
    report = _report()
    evidence = select(_stage(2), accepted, "run-a", report)
    assert evidence is not None
    [failure] = report.failures
    assert (failure.check, failure.stage) == (Check.THRESHOLD, "train")
    assert failure.found == f"1 agreeing key(s) among 2 attestation(s) by {key.name}"


def test_a_missing_stage_fails_only_when_required() -> None:
    report = _report()
    assert select(_stage(1, required=False), [], "run-a", report) is None
    assert report.failures == []
    assert select(_stage(1), [], "run-a", report) is None
    [failure] = report.failures
    assert failure.check is Check.STAGE_MISSING
    assert failure.expected == "an attestation signed by alice, bob in run run-a"


# -- ordering ------------------------------------------------------------------------------
def _seeing(keys: dict[str, KeyPair], seen: Any) -> AcceptedAttestation:
    details = {} if seen is None else {"predecessors": {"split": seen}}
    return _accepted(next(iter(keys.values())), _statement(NOW, NOW, details=details), "t.json")


def _before(keys: dict[str, KeyPair]) -> StageEvidence:
    split = _statement(NOW, NOW, stage="split", kind="split")
    return StageEvidence((_accepted(next(iter(keys.values())), split, "split.json"),))


def test_a_stage_that_saw_the_verified_predecessor_is_in_order(keys: dict[str, KeyPair]) -> None:
    before = _before(keys)
    report = _report()
    seen = [*before.payload_digests, "sha256:" + "9" * 64]  # and a rejected one
    check_causal("train", _seeing(keys, seen), "split", before, report)
    assert report.failures == []


@pytest.mark.parametrize(
    ("seen", "message", "found"),
    [
        (
            None,
            "no evidence that it started after 'split' had been attested",
            "no predecessor record",
        ),
        (
            [],
            "no evidence that it started after 'split' had been attested",
            "no 'split' attestation seen",
        ),
        (
            ["sha256:" + "9" * 64],
            "started after a different version of 'split' than the one verified",
            "sha256:" + "9" * 64,
        ),
    ],
)
def test_a_stage_without_causal_evidence_is_out_of_order(
    keys: dict[str, KeyPair], seen: Any, message: str, found: str
) -> None:
    report = _report()
    check_causal("train", _seeing(keys, seen), "split", _before(keys), report)
    [failure] = report.failures
    assert (failure.check, failure.stage, failure.message) == (Check.ORDERING, "train", message)
    assert failure.found == found
    assert failure.source == "t.json"
