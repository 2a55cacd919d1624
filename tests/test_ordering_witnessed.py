"""The predecessor record is a witness: what a later stage saw must still be in the run.

A reviewer signed two versions of a stage in one run (one of them failing), ran the
next stages, which recorded both in ``details.predecessors``, and got the conflict
denied; deleting the failing version's file then made the run pass, because the
ordering check only asked for *one* verified predecessor. Now every digest an accepted
attestation recorded for a stage of the policy must be in the run, verified or refused
and reported (verify/ordering.py, ``check_witnessed``).

Every attestation here is signed for real by tests/support.py's pipeline.
"""

from __future__ import annotations

from pathlib import Path

from mlspec_attest.verify.report import Check, Failure

from .support import Pipeline, checks_of
from .test_mlchecks_failures import resign

GONE = "started after 'split' attestation(s) that are no longer in the run"


def _split_files(pipeline: Pipeline) -> list[Path]:
    return sorted(pipeline.store.run_dir(pipeline.run_id).glob("split.*"))


def _payload_digest(pipeline: Pipeline, path: Path) -> str:
    [stored] = [s for s in pipeline.store.attestations(pipeline.run_id) if s.path == path]
    assert stored.payload_digest is not None
    return stored.payload_digest


def _run_with_two_splits(pipeline: Pipeline, *, differ: bool) -> Path:
    """ingest, split signed twice (a second, different claim if ``differ``), then the rest:
    train and package start while both split versions are in the run. Returns the second."""
    pipeline.sign("ingest")
    pipeline.sign("split")
    first = _split_files(pipeline)
    pipeline.sign("split", metrics={"rows_dropped": 3.0} if differ else None)
    [second] = [p for p in _split_files(pipeline) if p not in first]
    pipeline.sign_all_signers("train")
    pipeline.sign("package", via_api=True)
    return second


def test_deleting_one_of_two_conflicting_versions_does_not_make_the_run_pass(
    pipeline: Pipeline,
) -> None:
    second = _run_with_two_splits(pipeline, differ=True)
    report = pipeline.verify()
    assert Check.CONFLICT in checks_of(report)
    assert Check.ORDERING not in checks_of(report)  # the conflict is the reason, once

    gone = _payload_digest(pipeline, second)
    second.unlink()  # keep the version that passes
    report = pipeline.verify()
    assert not report.passed
    witnesses = sorted(
        p.name
        for p in pipeline.store.run_dir(pipeline.run_id).iterdir()
        if p.name.startswith(("train.", "package."))
    )
    remedy = (
        "an attestation {stage!r} saw was removed after it started (a removed version may be "
        "the one that failed): restore it, or re-run the pipeline in a new run"
    )
    expected = (
        "every 'split' attestation it recorded at its start (details.predecessors) in the "
        "run: verified, or refused and reported"
    )
    assert sorted(report.failures, key=lambda f: f.source) == [
        Failure(
            Check.ORDERING,
            name.split(".", 1)[0],
            GONE,
            expected=expected,
            found=f"missing: {gone}",
            remedy=remedy.format(stage=name.split(".", 1)[0]),
            source=name,
        )
        for name in witnesses
    ]


def test_re_signed_identical_versions_pass(pipeline: Pipeline) -> None:
    _run_with_two_splits(pipeline, differ=False)
    assert len(_split_files(pipeline)) == 2
    report = pipeline.verify()
    assert report.passed, [f.to_json() for f in report.failures]


def test_deleting_an_identical_copy_after_later_stages_saw_it_is_denied(
    pipeline: Pipeline,
) -> None:
    """Fail closed: a removed attestation cannot be told apart from a removed failing one."""
    second = _run_with_two_splits(pipeline, differ=False)
    second.unlink()
    report = pipeline.verify()
    assert checks_of(report) == {Check.ORDERING}
    assert {f.message for f in report.failures} == {GONE}
    assert {f.stage for f in report.failures} == {"train", "package"}


def test_a_refused_version_is_present_and_reported_once(pipeline: Pipeline) -> None:
    """A version the later stages saw that is refused (here: re-signed by a key not allowed
    for split) is in the run and reported as such; it is not reported missing as well."""
    second = _run_with_two_splits(pipeline, differ=True)
    resign(second, pipeline.keys["intruder"], lambda statement: None)
    report = pipeline.verify()
    assert Check.SIGNER_NOT_ALLOWED in checks_of(report)
    assert Check.ORDERING not in checks_of(report)
