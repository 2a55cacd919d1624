"""Step 6: each ``after`` edge needs consistent signed clocks AND causal evidence.

Clocks are the signer's word; the causal evidence is the predecessor record: a
stage names the payload digests of the attestations already in its run when it
started, which nobody can do before those exist.

The record is also a witness: every attestation of a stage of this policy that an
accepted attestation saw at its start must still be in the run, accepted or refused
(and reported). Otherwise deleting one of two conflicting versions (the one whose
metrics fail) would turn the conflict into a pass, although a later stage saw both.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.policy.model import Policy
from mlspec_attest.verify.accepted import AcceptedAttestation, StageEvidence
from mlspec_attest.verify.report import ADMISSION, Check, VerificationReport


def check_ordering(
    policy: Policy, evidence: Mapping[str, StageEvidence], report: VerificationReport
) -> None:
    """Every stage started after each of its predecessors finished, and saw them."""
    for stage in policy.stages:
        own = evidence.get(stage.name)
        if own is None:
            continue
        for prior in stage.after:
            before = evidence.get(prior)
            if before is None:
                continue
            if own.earliest_start < before.latest_finish:
                report.fail(
                    Check.ORDERING,
                    stage.name,
                    f"started before {prior!r} finished",
                    expected=f"start at or after {format_rfc3339(before.latest_finish)}",
                    found=f"started {format_rfc3339(own.earliest_start)}",
                    remedy=f"run {stage.name!r} after {prior!r} completes",
                )
            for att in own.attestations:
                check_causal(stage.name, att, prior, before, report)
    check_witnessed(policy, evidence, report)


def check_causal(
    stage: str,
    att: AcceptedAttestation,
    prior: str,
    before: StageEvidence,
    report: VerificationReport,
) -> None:
    """``att`` recorded a verified attestation of ``prior`` when it started."""
    seen = att.predecessors(prior)
    if seen and seen & before.payload_digests:
        # It saw a verified version; any other digest it saw is an attestation
        # this verification rejected, and that rejection is reported already.
        return
    if not seen:
        message = f"no evidence that it started after {prior!r} had been attested"
        found = "no predecessor record" if seen is None else f"no {prior!r} attestation seen"
    else:
        message = f"started after a different version of {prior!r} than the one verified"
        found = ", ".join(sorted(seen))
    report.fail(
        Check.ORDERING,
        stage,
        message,
        expected=f"the start of {stage!r} to record {prior!r} attestation "
        + ", ".join(sorted(before.payload_digests)),
        found=found,
        remedy=f"run and sign {stage!r} after {prior!r} in the same store and run "
        "(signed clocks alone do not prove order)",
        source=att.source.name,
    )


def check_witnessed(
    policy: Policy, evidence: Mapping[str, StageEvidence], report: VerificationReport
) -> None:
    """Every attestation of a policy stage that an accepted one saw is still in the run.

    A digest counts as present when it is accepted, or when the stage it was seen
    under has an attestation refused or in conflict, already reported (the digest may
    be that one, and the run is denied either way). A digest :func:`check_causal`
    already reports (the stage saw no verified version of an ``after`` stage) is not
    reported twice.
    """
    accepted = {name: ev.payload_digests for name, ev in evidence.items()}
    refused = {f.stage for f in report.failures if f.check in ADMISSION}
    for stage in policy.stages:
        own = evidence.get(stage.name)
        if own is None:
            continue
        for att in own.attestations:
            for prior in policy.stages:
                seen = att.predecessors(prior.name) or frozenset()
                verified = accepted.get(prior.name, frozenset())
                gone = seen - verified
                if not gone or prior.name in refused:
                    continue
                if prior.name in stage.after and verified and not seen & verified:
                    continue  # check_causal: "started after a different version"
                _report_gone(stage.name, att, prior.name, gone, report)


def _report_gone(
    stage: str,
    att: AcceptedAttestation,
    prior: str,
    gone: frozenset[str],
    report: VerificationReport,
) -> None:
    report.fail(
        Check.ORDERING,
        stage,
        f"started after {prior!r} attestation(s) that are no longer in the run",
        expected=f"every {prior!r} attestation it recorded at its start (details.predecessors) "
        "in the run: verified, or refused and reported",
        found="missing: " + ", ".join(sorted(gone)),
        remedy=f"an attestation {stage!r} saw was removed after it started (a removed version "
        "may be the one that failed): restore it, or re-run the pipeline in a new run",
        source=att.source.name,
    )
