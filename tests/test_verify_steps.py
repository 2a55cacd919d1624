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
from mlspec_attest.policy.model import Functionary, Policy, StagePolicy
from mlspec_attest.verify.accepted import AcceptedAttestation, StageEvidence
from mlspec_attest.verify.agreement import select
from mlspec_attest.verify.ordering import check_causal, check_ordering
from mlspec_attest.verify.report import Check, Failure, VerificationReport
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


# -- whole failure records (the CLI prints every field) --------------------------------------
def test_a_missing_stage_record() -> None:
    report = _report()
    select(_stage(1), [], "run-b", report)
    assert report.failures == [
        Failure(
            Check.STAGE_MISSING,
            "train",
            "no valid attestation for this required stage",
            expected="an attestation signed by alice, bob in run run-b",
            found="none",
            remedy="run the stage with sign_stage() for stage 'train'",
        )
    ]


def test_a_threshold_record_names_the_signers_once_each_sorted(keys: dict[str, KeyPair]) -> None:
    statement = _statement(NOW, NOW)
    accepted = [
        _accepted(keys["owner"], statement, "a.json"),
        _accepted(keys["data-engineer"], statement, "b.json"),
        _accepted(keys["owner"], statement, "c.json"),
    ]
    report = _report()
    evidence = select(_stage(3), accepted, "run-a", report)
    assert evidence is not None and len(evidence.attestations) == 3
    assert report.failures == [
        Failure(
            Check.THRESHOLD,
            "train",
            "not enough distinct functionaries signed matching attestations",
            expected="3 distinct keys agreeing on materials and products",
            found="2 agreeing key(s) among 3 attestation(s) by data-engineer, owner",
            remedy="have more of the stage's functionaries run and sign it with their own keys",
        )
    ]


def test_a_conflict_record_lists_every_version(keys: dict[str, KeyPair]) -> None:
    one = _statement(NOW, NOW)
    other = StageStatement(
        products=(ResourceDescriptor("model", {"sha256": "2" * 64}),),
        materials=(),
        metadata=one.metadata,
        command=one.command,
        environment={},
    )
    accepted = [
        _accepted(keys["owner"], one, "a.json"),
        _accepted(keys["data-engineer"], other, "b.json"),
        _accepted(keys["ml-engineer"], one, "c.json"),
    ]
    report = _report()
    assert select(_stage(1), accepted, "run-a", report) is None
    [failure] = report.failures
    versions = (
        "version 1: b.json (signed by data-engineer); "
        "version 2: a.json (signed by owner), c.json (signed by ml-engineer)"
    )
    assert failure == Failure(
        Check.CONFLICT,
        "train",
        "2 different versions of this stage were signed in one run (they differ in products)",
        expected="every attestation of the stage in the run to make the same claim",
        found=versions,
        remedy="find out why the stage was signed twice with different results; re-run the "
        "pipeline in a new run (remove the attestation that must not ship only if no later "
        "stage has started: one that saw it is denied without it)",
    )


def _policy(*stages: StagePolicy) -> Policy:
    return Policy(expires=NOW + timedelta(days=1), functionaries={}, stages=stages)


def _evidence(
    keys: dict[str, KeyPair], stage: str, start: datetime, finish: datetime
) -> StageEvidence:
    statement = _statement(start, finish, stage=stage, kind=stage)
    return StageEvidence((_accepted(keys["owner"], statement, f"{stage}.json"),))


@pytest.mark.parametrize("gap", [timedelta(seconds=-1), timedelta(0), timedelta(seconds=1)])
def test_a_stage_may_start_when_its_predecessor_finished_not_before(
    keys: dict[str, KeyPair], gap: timedelta
) -> None:
    split = StagePolicy("split", StageKind("split"), functionaries=("alice",))
    train = StagePolicy("train", StageKind("train"), functionaries=("alice",), after=("split",))
    before = _evidence(keys, "split", NOW - timedelta(hours=1), NOW)
    seen = sorted(before.payload_digests)
    statement = _statement(
        NOW + gap, NOW + timedelta(hours=1), details={"predecessors": {"split": seen}}
    )
    own = StageEvidence((_accepted(keys["owner"], statement, "train.json"),))
    report = _report()
    check_ordering(_policy(split, train), {"split": before, "train": own}, report)
    if gap >= timedelta(0):
        assert report.failures == []
        return
    assert report.failures == [
        Failure(
            Check.ORDERING,
            "train",
            "started before 'split' finished",
            expected="start at or after 2025-06-01T12:00:00Z",
            found="started 2025-06-01T11:59:59Z",
            remedy="run 'train' after 'split' completes",
        )
    ]


@pytest.mark.parametrize("after", [("ingest", "split"), ("split", "ingest")])
def test_ordering_checks_every_edge_and_skips_absent_stages(
    keys: dict[str, KeyPair], after: tuple[str, ...]
) -> None:
    ingest = StagePolicy("ingest", StageKind("ingest"), functionaries=("alice",))
    split = StagePolicy("split", StageKind("split"), functionaries=("alice",), after=("ingest",))
    train = StagePolicy("train", StageKind("train"), functionaries=("alice",), after=after)
    evidence = {
        "ingest": _evidence(keys, "ingest", NOW, NOW + timedelta(hours=2)),
        "train": _evidence(keys, "train", NOW + timedelta(hours=1), NOW + timedelta(hours=3)),
    }
    report = _report()
    check_ordering(_policy(ingest, split, train), evidence, report)
    # split is absent (nothing to order); train started before ingest finished, and
    # recorded no predecessors
    assert [(f.check, f.stage, f.message) for f in report.failures] == [
        (Check.ORDERING, "train", "started before 'ingest' finished"),
        (Check.ORDERING, "train", "no evidence that it started after 'ingest' had been attested"),
    ]


def test_a_causal_record_names_every_verified_predecessor(keys: dict[str, KeyPair]) -> None:
    split_a = _statement(NOW, NOW, stage="split", kind="split")
    before = StageEvidence(
        (
            _accepted(keys["owner"], split_a, "split.b.json"),
            _accepted(keys["data-engineer"], split_a, "split.a.json"),
        )
    )
    report = _report()
    seen = ["sha256:" + "9" * 64, "sha256:" + "8" * 64]
    check_causal("train", _seeing(keys, seen), "split", before, report)
    assert report.failures == [
        Failure(
            Check.ORDERING,
            "train",
            "started after a different version of 'split' than the one verified",
            expected="the start of 'train' to record 'split' attestation "
            + ", ".join(sorted(before.payload_digests)),
            found=f"sha256:{'8' * 64}, sha256:{'9' * 64}",
            remedy="run and sign 'train' after 'split' in the same store and run "
            "(signed clocks alone do not prove order)",
            source="t.json",
        )
    ]
    assert len(before.payload_digests) == 2


def test_a_conflict_names_every_field_that_differs(keys: dict[str, KeyPair]) -> None:
    one = _statement(NOW, NOW)
    other = StageStatement(
        products=(ResourceDescriptor("model", {"sha256": "2" * 64}),),
        materials=(ResourceDescriptor("data.csv", {"sha256": "3" * 64}),),
        metadata=one.metadata,
        command=one.command,
        environment={},
    )
    report = _report()
    accepted = [_accepted(keys["owner"], one, "a.json"), _accepted(keys["owner"], other, "b.json")]
    assert select(_stage(1), accepted, "run-a", report) is None
    [failure] = report.failures
    assert failure.message == (
        "2 different versions of this stage were signed in one run "
        "(they differ in materials, products)"
    )
