"""The verification engine: signed policy + store + files -> VerificationReport.

Steps, in order (docs/verification.md documents each with its error):

1. policy signature by every owner key (stop here if any is missing)
2. policy expiry
3. each stored attestation: well-formed, signature valid under a policy key
   (keyless: the Sigstore bundle verifies offline against the policy's embedded
   trust root and its certificate identity matches a functionary's rule),
   signer allowed for its stage, same run id, same policy digest, same kind
   (:mod:`~mlspec_attest.verify.admission`, :mod:`~mlspec_attest.verify.signers`,
   :mod:`~mlspec_attest.verify.signed_times`)
4. every required stage present
5. threshold: distinct functionary keys whose attestations agree
   (:mod:`~mlspec_attest.verify.agreement`)
6. ordering (``after``): a stage starts after its predecessors finished
   (:mod:`~mlspec_attest.verify.ordering`)
7. artifact rules (in-toto semantics) on materials and products
   (:mod:`~mlspec_attest.verify.artifact_rules`)
8. the ML checks, with the ``--baseline`` (:mod:`~mlspec_attest.verify.checks`,
   :mod:`~mlspec_attest.verify.baseline`)
9. deploy artifacts re-hashed and equal to the attested products
   (:mod:`~mlspec_attest.verify.artifacts`)

Every failure is collected; nothing stops at the first one except a policy
whose signature does not verify (its content cannot be trusted at all).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, Unpack

from mlspec_attest.errors import MlspecError, UsageError
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.formats.signer import PublicKeyVerifier
from mlspec_attest.policy.model import Policy, StagePolicy
from mlspec_attest.policy.signed import SignedPolicy
from mlspec_attest.store.ledger import AttestationStore, StoredAttestation
from mlspec_attest.verify import checks
from mlspec_attest.verify.accepted import AcceptedAttestation, Baseline, StageEvidence
from mlspec_attest.verify.admission import Admission
from mlspec_attest.verify.agreement import select
from mlspec_attest.verify.artifact_rules import check_rules
from mlspec_attest.verify.artifacts import DeployArtifacts
from mlspec_attest.verify.baseline import BaselineLoader
from mlspec_attest.verify.ledger import checks_ran
from mlspec_attest.verify.levels import demanded_levels
from mlspec_attest.verify.ordering import check_ordering
from mlspec_attest.verify.report import ERROR_CLASSES, Check, StageSummary, VerificationReport
from mlspec_attest.verify.signers import SignerLookup

if TYPE_CHECKING:
    from mlspec_attest.digest.engine import ProgressSink


class VerifyOptions(TypedDict, total=False):
    """What a verification may be given besides the policy, its owners' keys and the store."""

    run_id: str | None
    """The run to verify; default: the store's only run (never its current-run marker)."""
    artifacts: Mapping[str, Path | str] | None
    """Deploy role -> the file or directory to be deployed, re-hashed against the chain."""
    now: datetime | None
    """When the policy's expiry and the signed times are judged; default: now."""
    baseline: Path | None
    """The attestation of the model in production, for ``change`` objectives."""
    progress: ProgressSink | None
    """Where re-hashing the deploy artifacts reports its progress."""


class PipelineVerifier:
    """Runs every check of one verification and fills a report."""

    #: How attestations are admitted (a draft policy's trial admits another binding).
    admission_class: type[Admission] = Admission
    #: Whether owner keys are required (a draft policy has no owners yet).
    needs_owner_keys = True

    def __init__(
        self,
        signed: SignedPolicy,
        owner_keys: list[PublicKeyVerifier],
        store: AttestationStore,
        **options: Unpack[VerifyOptions],
    ) -> None:
        if not owner_keys and self.needs_owner_keys:
            raise UsageError(f"at least one {named('policy_key')} is required to trust the policy")
        self.signed = signed
        self.policy: Policy = signed.policy
        self.owner_keys = owner_keys
        self.store = store
        self.artifacts = dict(options.get("artifacts") or {})
        self.now = options.get("now") or datetime.now(UTC)
        self.baseline_path = options.get("baseline")
        self.progress = options.get("progress")
        self._run_asked = options.get("run_id")
        self._run_id: str | None = None
        unknown = sorted(set(self.artifacts) - set(self.policy.deploy))
        if unknown:
            roles = ", ".join(sorted(self.policy.deploy)) or "none"
            raise UsageError(
                f"{named('artifacts')} role(s) {', '.join(unknown)} not declared by the policy",
                remedy=f"the policy's deploy roles are: {roles}",
            )
        self.report = VerificationReport(
            policy_name=self.policy.name,
            policy_digest=signed.digest,
            run_id=self._run_asked or None,
            verified_at=format_rfc3339(self.now),
            demanded=demanded_levels(self.policy),
        )
        self.signers = SignerLookup(self.policy)
        self._admission: Admission | None = None

    @property
    def run_id(self) -> str:
        """The run verified, resolved on first use: after the policy's signature is
        checked, so a wrong owner key is named as such whatever the store holds."""
        if self._run_id is None:
            self._run_id = self.report.run_id = self.store.resolve_run(self._run_asked)
        return self._run_id

    @property
    def admission(self) -> Admission:
        if self._admission is None:
            self._admission = self.admission_class(
                self.signed, self.signers, self.run_id, self.now, self.report
            )
        return self._admission

    # -- steps 1-2 ----------------------------------------------------------
    def check_policy(self) -> bool:
        for key in self.signed.unsigned_by(self.owner_keys):
            self.report.fail(
                Check.POLICY_SIGNATURE,
                None,
                "the policy is not signed by a required owner key",
                expected=f"a valid signature by key {key.keyid[:16]}",
                found=f"{len(self.signed.envelope.signatures)} signature(s), none valid for that key",
                remedy=f"re-sign the policy with `{named('policy_sign')}`, or pass the right "
                f"{named('policy_key')}",
            )
        if self.report.failures:
            return False
        if self.policy.expires <= self.now:
            self.report.fail(
                Check.POLICY_EXPIRED,
                None,
                "the policy has expired",
                expected=f"now before {format_rfc3339(self.policy.expires)}",
                found=f"now is {format_rfc3339(self.now)}",
                remedy="renew the policy's 'expires' and have the owner sign it again",
            )
        return True

    # -- step 3 -------------------------------------------------------------
    def accept(self, stored: StoredAttestation) -> AcceptedAttestation | None:
        return self.admission.accept(stored)

    def collect(self) -> dict[str, list[AcceptedAttestation]]:
        """Every accepted attestation of the run, by stage (failures go to the report)."""
        by_stage: dict[str, list[AcceptedAttestation]] = defaultdict(list)
        for stored in self.store.attestations(self.run_id):
            att = self.accept(stored)
            if att is not None:
                by_stage[att.statement.name].append(att)
        return by_stage

    # -- steps 4-5 ----------------------------------------------------------
    def select(
        self, stage: StagePolicy, accepted: list[AcceptedAttestation]
    ) -> StageEvidence | None:
        return select(stage, accepted, self.run_id, self.report)

    # -- step 6 -------------------------------------------------------------
    def check_ordering(self, evidence: Mapping[str, StageEvidence]) -> None:
        check_ordering(self.policy, evidence, self.report)

    # -- step 7 -------------------------------------------------------------
    def check_rules(self, chosen: Mapping[str, AcceptedAttestation]) -> None:
        check_rules(self.policy, self.store, chosen, self.report)

    # -- step 8 -------------------------------------------------------------
    def load_baseline(self) -> Baseline | None:
        if self.baseline_path is None:
            return None
        loader = BaselineLoader(self.signers, self.run_id, self.report, self.store)
        return loader.load(self.baseline_path)

    def check_ml(
        self,
        chosen: Mapping[str, AcceptedAttestation],
        evidence: Mapping[str, StageEvidence],
    ) -> None:
        """The families of ML checks the policy has a section for, in order; a family's
        module is loaded only then (:mod:`mlspec_attest.verify.checks`)."""
        policy, report = self.policy, self.report
        baseline = self.load_baseline()
        if policy.objectives_stage is not None:
            checks.check_objectives(policy, chosen, self.store, report, baseline)
        if policy.separation is not None:
            checks.check_separation(policy, chosen, report, evidence)
            checks.check_holdback_content(policy, chosen, self.store, report)
        if policy.leakage is not None:
            checks.check_leakage(policy, chosen, self.store, report)
        if policy.data_validation is not None:
            checks.check_data_validation(policy, chosen, report)
        if policy.requirements:
            checks.check_requirements(policy, chosen, report, baseline)

    # -- step 9 -------------------------------------------------------------
    def check_artifacts(self, chosen: Mapping[str, AcceptedAttestation]) -> None:
        DeployArtifacts(self.policy, self.artifacts, self.store, self.report, self.progress).check(
            chosen
        )

    # -- all ----------------------------------------------------------------
    def run(self) -> VerificationReport:
        if not self.check_policy():
            with contextlib.suppress(MlspecError):  # name the run if there is one to name
                self.report.run_id = self.run_id
            return self.report
        by_stage = self.collect()
        evidence: dict[str, StageEvidence] = {}
        for stage in self.policy.stages:
            picked = self.select(stage, by_stage.get(stage.name, []))
            if picked is not None:
                evidence[stage.name] = picked
        chosen = {name: ev.representative for name, ev in evidence.items()}
        self.check_ordering(evidence)
        self.check_rules(chosen)
        self.check_ml(chosen, evidence)
        self.check_artifacts(chosen)
        self._summarize(chosen, by_stage)
        owners = tuple(k.keyid for k in self.owner_keys)
        self.report.checks = checks_ran(self.policy, self.report, chosen, owners)
        return self.report

    def _summarize(
        self,
        chosen: Mapping[str, AcceptedAttestation],
        by_stage: Mapping[str, list[AcceptedAttestation]],
    ) -> None:
        failed = {
            f.stage
            for f in self.report.failures
            if f.stage and f.check not in (Check.ARTIFACT_MISSING, Check.ARTIFACT_MISMATCH)
        }
        for stage in self.policy.stages:
            if stage.name in failed:
                status = "failed"
            elif stage.name in chosen:
                status = "ok"
            else:
                status = "missing" if stage.required else "optional-missing"
            accepted = by_stage.get(stage.name, [])
            signers = tuple(sorted({f.name for a in accepted for f in a.signers}))
            files = tuple(sorted(a.source.name for a in accepted))
            inputs = tuple(
                sorted((f"runs/{self.run_id}/{a.source.name}", a.payload_digest) for a in accepted)
            )
            self.report.stages.append(
                StageSummary(stage.name, stage.kind.value, status, signers, files, inputs)
            )


def verify_pipeline(
    signed: SignedPolicy,
    owner_keys: list[PublicKeyVerifier],
    store: AttestationStore,
    **options: Unpack[VerifyOptions],
) -> VerificationReport:
    """Run every check and return the full report (never raises for a denial)."""
    return PipelineVerifier(signed, owner_keys, store, **options).run()


def require_verified(
    signed: SignedPolicy,
    owner_keys: list[PublicKeyVerifier],
    store: AttestationStore,
    **options: Unpack[VerifyOptions],
) -> VerificationReport:
    """Fail-closed form: return the report if it passed, else raise VerificationError."""
    report = verify_pipeline(signed, owner_keys, store, **options)
    if not report.passed:
        first = report.classified_failures()[0][0]  # the first root cause
        error = ERROR_CLASSES[first.check](
            f"pipeline denied: {len(report.failures)} failure(s); "
            f"first: [{first.check.value}] {first.message}",
            remedy=first.remedy or None,
        )
        error.report = report  # type: ignore[attr-defined]
        raise error
    return report
