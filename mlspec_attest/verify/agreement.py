"""Steps 4-5: each stage present, its attestations in agreement, signed by enough keys.

The result never depends on file names or the order the store lists them:
attestations are grouped by what they claim, and two different claims about one
stage in one run are a denial (:mod:`mlspec_attest.verify.accepted` explains what
a claim is).
"""

from __future__ import annotations

from collections.abc import Sequence

from mlspec_attest.formats.inputs import named
from mlspec_attest.policy.model import StagePolicy
from mlspec_attest.verify.accepted import AcceptedAttestation, Conflict, StageEvidence, resolve
from mlspec_attest.verify.report import Check, VerificationReport


def select(
    stage: StagePolicy,
    accepted: Sequence[AcceptedAttestation],
    run_id: str,
    report: VerificationReport,
) -> StageEvidence | None:
    """The stage's one agreeing group of attestations; a conflict or too few keys fail."""
    outcome = resolve(accepted)
    if outcome is None:
        if stage.required:
            report.fail(
                Check.STAGE_MISSING,
                stage.name,
                "no valid attestation for this required stage",
                expected=f"an attestation signed by {', '.join(stage.functionaries)} in run {run_id}",
                found="none",
                remedy=f"run the stage with {named('sign_stage', stage=stage.name)}",
            )
        return None
    if isinstance(outcome, Conflict):
        report_conflict(stage, outcome, report)
        return None
    if len(outcome.keyids) < stage.threshold:
        signers = sorted({f.name for a in accepted for f in a.signers})
        report.fail(
            Check.THRESHOLD,
            stage.name,
            "not enough distinct functionaries signed matching attestations",
            expected=f"{stage.threshold} distinct keys agreeing on materials and products",
            found=f"{len(outcome.keyids)} agreeing key(s) among {len(accepted)} attestation(s) by {', '.join(signers)}",
            remedy="have more of the stage's functionaries run and sign it with their own keys",
        )
    return outcome


def report_conflict(stage: StagePolicy, conflict: Conflict, report: VerificationReport) -> None:
    versions = "; ".join(
        f"version {i}: " + ", ".join(a.describe() for a in group.attestations)
        for i, group in enumerate(conflict.groups, 1)
    )
    report.fail(
        Check.CONFLICT,
        stage.name,
        f"{len(conflict.groups)} different versions of this stage were signed in one run "
        f"(they differ in {', '.join(conflict.differing)})",
        expected="every attestation of the stage in the run to make the same claim",
        found=versions,
        remedy="find out why the stage was signed twice with different results; re-run the "
        "pipeline in a new run (remove the attestation that must not ship only if no later "
        "stage has started: one that saw it is denied without it)",
    )
