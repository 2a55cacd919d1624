"""A ``--baseline`` stands for the model the policy means, not one chosen to make a
regression pass (verify/baseline.py, docs/verification.md § 8a).

A reviewer replayed baselines: the test attestation of an abandoned run (MAE 9 against
a candidate's 5) and one from another store bound to another policy (MAE 500) both let a
regression pass, while the production baseline (MAE 3) denied it. Now:

* a policy that names its previous release (``rollback.summary``: the sha256 of that
  release's verification summary) accepts only an input attestation of that summary,
  and only if the summary says PASSED;
* a policy that names none accepts only a baseline bound to itself.

Every run here is signed for real (tests/mlpipeline.py) and every summary is the one
``verify --vsa-out`` writes (:func:`mlspec_attest.verify.summary.write_summary`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from msgspec import Struct

from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.policy import load_policy_yaml, load_signed_policy, sign_policy
from mlspec_attest.verify.accepted import Baseline
from mlspec_attest.verify.baseline import BaselineLoader
from mlspec_attest.verify.report import Check, Failure, VerificationReport
from mlspec_attest.verify.signers import SignerLookup
from mlspec_attest.verify.summary import SummaryOptions, write_summary

from .mlpipeline import CHANGE_CRITERION, EVALUATE_METRICS, OBJECTIVES_YAML, MLPipeline
from .support import VERIFY_NOW, KeyPair, checks_of

NO_METRICS = "no baseline metrics"


def _evaluate_metrics(mae: float) -> dict[str, Any]:
    return {**EVALUATE_METRICS, "metrics": {**EVALUATE_METRICS["metrics"], "mae": mae}}


def _summary(ml: MLPipeline, name: str) -> str:
    """Verify ``ml``'s current run and keep its signed summary in its store: its digest."""
    report = ml.verify()
    options = SummaryOptions("https://models.example.org/diabetes", "file:///policy.json")
    written = write_summary(
        report, options, ml.keys["owner"].signer, ml.store, ml.root / f"{name}.vsa.json"
    )
    return written.digest


class Releases(Struct, frozen=True):
    """One store under one policy: a released run and an abandoned one, each verified."""

    ml: MLPipeline
    production: Path  # evaluate attestation of the released run (MAE 47)
    production_summary: str  # its PASSED summary
    abandoned: Path  # evaluate attestation of a run that failed its objectives (MAE 80)
    abandoned_summary: str  # its FAILED summary


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> Releases:
    ml = MLPipeline(tmp_path_factory.mktemp("releases"), keys, run_id="release-1")
    ml.run(evaluate={"metrics": _evaluate_metrics(47.0)})
    production = ml.signed_stages["evaluate"].path
    production_summary = _summary(ml, "release-1")
    assert ml.verify().passed
    ml.run_id = "abandoned"  # the same store and policy; worse than the mean baseline
    ml.run(evaluate={"metrics": _evaluate_metrics(80.0)})
    abandoned = ml.signed_stages["evaluate"].path
    assert checks_of(ml.verify()) == {Check.OBJECTIVE}
    abandoned_summary = _summary(ml, "abandoned")
    return Releases(ml, production, production_summary, abandoned, abandoned_summary)


def _pin(ml: MLPipeline, summary: str) -> None:
    """Have the owner sign ``ml``'s policy again, naming ``summary`` as its previous release."""
    ml.policy_yaml.write_text(
        ml.policy_yaml.read_text() + f"rollback:\n  summary: sha256:{summary}\n"
    )
    envelope = sign_policy(
        load_policy_yaml(ml.policy_yaml, now=VERIFY_NOW), [ml.keys["owner"].signer]
    )
    ml.signed_policy_path.write_bytes(canonical(envelope.to_json()))
    ml.signed = load_signed_policy(ml.signed_policy_path)


def _candidate(root: Path, keys: dict[str, KeyPair], pinned: str | None, **kw: Any) -> MLPipeline:
    """A run whose evaluate MAE is 49, with a change criterion (at most 1 worse)."""
    ml = MLPipeline(
        root, keys, run_id="candidate", objectives=OBJECTIVES_YAML + CHANGE_CRITERION, **kw
    )
    if pinned is not None:
        _pin(ml, pinned)
    return ml.run()


def _baseline_failures(report: VerificationReport) -> list[Failure]:
    return [f for f in report.failures if f.check is Check.BASELINE]


def _objective(report: VerificationReport) -> str:
    [result] = [r for r in report.objectives if r.id == "no-regression"]
    return f"{'pass' if result.passed else 'FAIL'} {result.message}"


# -- a policy that names its previous release ------------------------------------------
def test_the_release_the_policy_names_is_the_baseline(
    releases: Releases, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """The released run's evaluate attestation, bound to the previous policy, is taken
    because the summary the new policy pins lists it; the regression (49 vs 47) is denied."""
    candidate = _candidate(tmp_path, keys, releases.production_summary)
    report = candidate.verify(baseline=releases.production)
    assert _baseline_failures(report) == []
    assert checks_of(report) == {Check.OBJECTIVE}
    assert _objective(report).startswith("FAIL ")
    assert f"baseline: evaluate of run release-1 ({releases.production})" in report.notes


def test_an_abandoned_run_is_no_baseline_when_the_policy_names_the_release(
    releases: Releases, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """The finding: an attestation of a run that never shipped (MAE 80) made the
    regression pass; it is not an input of the pinned summary, so it is refused."""
    candidate = _candidate(tmp_path, keys, releases.production_summary)
    report = candidate.verify(baseline=releases.abandoned)
    [failure] = _baseline_failures(report)
    assert failure.stage == "evaluate" and failure.source == str(releases.abandoned)
    assert failure.message.startswith(
        "baseline refused: it is not an input attestation of 'evaluate' in the verification "
        f"summary the policy's rollback.summary names (sha256:{releases.production_summary})"
    )
    assert not report.passed
    assert NO_METRICS in _objective(report)


def test_a_pinned_summary_that_failed_names_no_baseline(
    releases: Releases, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    candidate = _candidate(tmp_path, keys, releases.abandoned_summary)
    report = candidate.verify(baseline=releases.abandoned)
    assert [f.message for f in _baseline_failures(report)] == [
        "baseline refused: the rollback target the policy names "
        f"(sha256:{releases.abandoned_summary}) did not pass verification (FAILED)"
    ]
    assert NO_METRICS in _objective(report)


def _load(ml: MLPipeline, path: Path, **kw: Any) -> tuple[Baseline | None, list[Failure]]:
    signed = load_signed_policy(ml.signed_policy_path)
    report = VerificationReport(signed.policy.name, signed.digest, "candidate", "now")
    loader = BaselineLoader(SignerLookup(signed.policy), "candidate", report, **kw)
    return loader.load(path), report.failures


def test_the_pinned_summary_must_be_in_the_store_with_the_pinned_bytes(
    releases: Releases, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    pinned = MLPipeline(tmp_path / "pinned", keys, run_id="candidate")
    _pin(pinned, releases.production_summary)
    stored = releases.ml.store.summary_path(releases.production_summary)
    assert stored is not None
    original = stored.read_bytes()
    try:
        stored.unlink()  # the store was copied without its summaries/
        baseline, failures = _load(pinned, releases.production)
        assert baseline is None
        [failure] = failures
        assert f"summaries/{releases.production_summary}.sigstore.json" in failure.message
        assert "that summary is not in the store" in failure.message

        # another summary at the pinned name: its payload decides, not its place
        other = releases.ml.store.summary_path(releases.abandoned_summary)
        assert other is not None
        stored.write_bytes(other.read_bytes())
        baseline, failures = _load(pinned, releases.production)
        assert baseline is None
        assert [f.message for f in failures] == [
            f"baseline refused: {stored} is not the summary rollback.summary names: its "
            f"payload has sha256:{releases.abandoned_summary}, not "
            f"sha256:{releases.production_summary}"
        ]
    finally:
        stored.write_bytes(original)
    baseline, failures = _load(pinned, releases.production)
    assert failures == []
    assert baseline is not None and baseline.metrics["mae"] == 47.0


def test_the_verification_store_is_searched_for_the_pinned_summary(
    releases: Releases, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """A baseline file copied out of its store is found through the store being verified."""
    pinned = MLPipeline(tmp_path / "pinned", keys, run_id="candidate")
    _pin(pinned, releases.production_summary)
    copied = shutil.copy(releases.production, tmp_path / "baseline.sigstore.json")
    baseline, failures = _load(pinned, Path(copied))
    assert baseline is None and "not in the store" in failures[0].message
    baseline, failures = _load(pinned, Path(copied), store=releases.ml.store)
    assert failures == []
    assert baseline == Baseline("evaluate", "release-1", dict(_evaluate_metrics(47.0)["metrics"]))


# -- a policy that names none ------------------------------------------------------------
def test_a_baseline_bound_to_another_policy_is_refused(
    releases: Releases, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """The reviewer's MAE-500 case: signed by the stage's functionary, another run, and
    bound to some policy, but not this one (here: the same pipeline, tolerance 1)."""
    candidate = _candidate(tmp_path, keys, None, tolerance=1)
    report = candidate.verify(baseline=releases.abandoned)
    [failure] = _baseline_failures(report)
    assert failure.message == (
        "baseline refused: it is bound to policy "
        f"{releases.ml.signed.digest}, not to the policy being verified "
        f"({candidate.signed.digest}); a baseline from another policy is accepted only as an "
        "input of the summary the policy's rollback.summary names"
    )
    assert NO_METRICS in _objective(report)


def test_a_baseline_bound_to_this_policy_is_taken(
    releases: Releases, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """Without a rollback target, any run under this very policy may be the baseline: the
    limit docs/threat-model.md states (name the release to close it)."""
    candidate = _candidate(tmp_path, keys, None)
    assert candidate.signed.digest == releases.ml.signed.digest
    report = candidate.verify(baseline=releases.abandoned)
    assert report.passed, [f.to_json() for f in report.failures]
    assert _objective(report).startswith("pass ")
