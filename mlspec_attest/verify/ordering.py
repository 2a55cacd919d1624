"""Step 6: each ``after`` edge needs consistent signed clocks AND causal evidence.

Clocks are the signer's word; the causal evidence is the predecessor record: a
stage names the payload digests of the attestations already in its run when it
started, which nobody can do before those exist.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.policy.model import Policy
from mlspec_attest.verify.accepted import AcceptedAttestation, StageEvidence
from mlspec_attest.verify.report import Check, VerificationReport


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
