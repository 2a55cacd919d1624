"""A draft policy tried against a recorded run: what it would decide, never a verdict.

Compliance authors try a stricter rule without re-running the pipeline (``policy test``,
as ``conftest verify`` or ``kyverno test`` let policy authors do). Every check of
``verify`` runs, the same code, with two differences that make the result unusable as
a verdict and say so:

* the draft is not signed, so no owner signature is checked; the report is marked
  :data:`DRAFT_NOTE` and carries the draft's digest, which no stage was bound to;
* each stage attestation is bound to the policy the run was *recorded under*; any one
  digest is admitted in place of the draft's, but a run whose attestations were made
  under two different policies is refused (``policy-digest``): it is not one recorded run;
* a deploy artifact not given is noted rather than denied (a recorded run's files may be
  gone); those given are re-hashed as ``verify`` does.

Nothing here writes a verification summary, and the gate accepts only signed summaries
of signed policies, so a draft's "would pass" can never open a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from mlspec_attest.formats.dsse import Envelope
from mlspec_attest.formats.jsonio import canonical, loads_strict
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.policy.model import DeployArtifact, Policy, StagePolicy
from mlspec_attest.policy.signed import POLICY_PAYLOAD_TYPE, SignedPolicy
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.accepted import AcceptedAttestation
from mlspec_attest.verify.admission import Admission
from mlspec_attest.verify.artifacts import DeployArtifacts
from mlspec_attest.verify.pipeline import PipelineVerifier, VerifyOptions
from mlspec_attest.verify.report import ArtifactSummary, Check, VerificationReport

DRAFT_NOTE = (
    "DRAFT: an unsigned policy tried against a recorded run; this is not a verdict, no "
    "verification summary is written and no gate accepts it"
)


def draft_policy(policy: Policy) -> SignedPolicy:
    """``policy`` as the payload ``policy sign`` would sign, with no signature."""
    payload = canonical(policy.to_json())
    document = loads_strict(payload, what="draft policy")
    return SignedPolicy(Envelope(payload, POLICY_PAYLOAD_TYPE, ()), policy, document)


class _RecordedBinding(Admission):
    """Admits an attestation bound to any one policy: the one its run was recorded under."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.recorded_under: dict[str, list[str]] = {}

    def _policy_same(self, statement: StageStatement, stage: StagePolicy, source: str) -> bool:
        digest = statement.metadata.policy_digest
        if digest:
            self.recorded_under.setdefault(digest, []).append(source)
        return True


class _GivenArtifactsOnly(DeployArtifacts):
    """Re-hashes the deploy artifacts given; one not given is noted, not a denial (a
    recorded run's files may be gone: the trial is about the policy's rules)."""

    def not_supplied(self, role: str, spec: DeployArtifact) -> ArtifactSummary:
        self.report.notes.append(
            f"deploy artifact {role!r} not given: its bytes were not compared "
            "(verify would require it)"
        )
        return ArtifactSummary(role, None, "not-checked")


class DraftVerifier(PipelineVerifier):
    """``verify``'s checks for an unsigned draft (see the module docstring)."""

    admission_class = _RecordedBinding
    needs_owner_keys = False

    def check_policy(self) -> bool:
        self.report.notes.insert(0, DRAFT_NOTE)
        if self.policy.expires <= self.now:
            self.report.fail(
                Check.POLICY_EXPIRED,
                None,
                "the draft has expired: signed as it is, every run would be denied",
                expected=f"now before {format_rfc3339(self.policy.expires)}",
                found=f"now is {format_rfc3339(self.now)}",
                remedy="set a later 'expires' in the draft",
            )
        return True

    def collect(self) -> dict[str, list[AcceptedAttestation]]:
        by_stage = super().collect()
        admission = self.admission
        assert isinstance(admission, _RecordedBinding)
        under = admission.recorded_under
        if len(under) > 1:
            found = "; ".join(f"{d} ({', '.join(sorted(s))})" for d, s in sorted(under.items()))
            self.report.fail(
                Check.POLICY_DIGEST,
                None,
                f"the run's attestations were made under {len(under)} different policies",
                expected="one policy for the whole recorded run",
                found=found,
                remedy="try the draft against a run recorded under one policy",
            )
        for digest in sorted(under):
            self.report.notes.append(f"recorded under policy {digest}")
        return by_stage

    def check_artifacts(self, chosen: Mapping[str, AcceptedAttestation]) -> None:
        _GivenArtifactsOnly(
            self.policy, self.artifacts, self.store, self.report, self.progress
        ).check(chosen)

    @property
    def recorded_under(self) -> Mapping[str, list[str]]:
        """Policy digest -> the attestations bound to it."""
        admission = self.admission
        assert isinstance(admission, _RecordedBinding)
        return admission.recorded_under


def try_draft(
    policy: Policy, store: AttestationStore, **options: Unpack[VerifyOptions]
) -> VerificationReport:
    """What ``policy`` would decide about a recorded run of ``store`` (the options of
    :class:`~mlspec_attest.verify.pipeline.VerifyOptions`). Never a verdict."""
    return DraftVerifier(draft_policy(policy), [], store, **options).run()
