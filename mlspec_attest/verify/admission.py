"""Step 3: which stored attestations count as evidence of a stage.

An attestation is admitted when it is well-formed, its signature verifies under a
policy key or Sigstore identity (:mod:`mlspec_attest.verify.signers`), its signer
may sign its stage, and it is bound to this run, this policy and the stage's kind
with consistent signed times. Every reason to refuse one goes to the report.
"""

from __future__ import annotations

from datetime import datetime

from mlspec_attest.errors import MalformedDocumentError, MlspecError, SigstoreVerificationError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.policy.model import Functionary, StagePolicy
from mlspec_attest.policy.signed import SignedPolicy
from mlspec_attest.signing.sigstore.identity import IdentityMismatchError
from mlspec_attest.store.ledger import StoredAttestation
from mlspec_attest.verify.accepted import AcceptedAttestation
from mlspec_attest.verify.report import Check, VerificationReport
from mlspec_attest.verify.signed_times import check_signed_times
from mlspec_attest.verify.signers import SignerLookup

_RESIGN = "re-sign the stage; do not edit attestation files"


def claimed_stage(stored: StoredAttestation) -> str | None:
    """The stage an attestation claims to be, for messages: its payload's, else its file name's."""
    return stored.claimed_stage() or stored.path.name.split(".", 1)[0] or None


class Admission:
    """Admits (or refuses, with reasons in the report) the stored attestations of one run."""

    def __init__(
        self,
        signed: SignedPolicy,
        signers: SignerLookup,
        run_id: str,
        now: datetime,
        report: VerificationReport,
    ) -> None:
        self.signed = signed
        self.policy = signed.policy
        self.signers = signers
        self.run_id = run_id
        self.now = now
        self.report = report

    def accept(self, stored: StoredAttestation) -> AcceptedAttestation | None:
        source = stored.path.name
        claimed = claimed_stage(stored)
        if stored.bundle is None:
            self.report.fail(
                Check.ATTESTATION_MALFORMED,
                claimed,
                f"unreadable attestation: {stored.error}",
                remedy=_RESIGN,
                source=source,
            )
            return None
        signer = self.signer(stored.bundle, claimed, source)
        if signer is None:
            return None
        statement = self.statement(stored.bundle, claimed, source)
        if statement is None:
            return None
        stage = self.policy.stage(statement.metadata.stage)
        if stage is None:
            self.report.notes.append(
                f"{source}: stage {statement.metadata.stage!r} is not in the policy; ignored"
            )
            return None
        if not self.bound(statement, stage, signer, source):
            return None
        return AcceptedAttestation(
            statement,
            signer,
            stored.path,
            stored.payload_digest or "",
            self.cosigners(stored.bundle, stage, signer),
        )

    def cosigners(
        self, bundle: Bundle, stage: StagePolicy, signer: Functionary
    ) -> tuple[Functionary, ...]:
        """The other functionaries allowed for ``stage`` whose keys signed the same envelope."""
        if bundle.is_keyless:
            return ()
        return tuple(
            f
            for f in self.signers.key_signers(bundle, stage.name)
            if f.keyid != signer.keyid and f.name in stage.functionaries
        )

    # -- who signed it ----------------------------------------------------------------
    def signer(self, bundle: Bundle, claimed: str | None, source: str) -> Functionary | None:
        """The functionary who signed ``bundle``; None (reported) when there is none."""
        if bundle.is_keyless:
            return self._keyless_signer(bundle, claimed, source)
        signer = self.signers.by_key(bundle, claimed)
        if signer is None:
            self._report_unknown_key(bundle, claimed, source)
        return signer

    def _report_unknown_key(self, bundle: Bundle, claimed: str | None, source: str) -> None:
        if self.signers.knows_key(bundle.key_hint):
            self.report.fail(
                Check.SIGNATURE,
                claimed,
                "signature does not verify (payload or signature altered)",
                expected=f"a valid signature by key {bundle.key_hint[:16] if bundle.key_hint else ''}",
                found="signature invalid over the DSSE payload",
                remedy="the attestation was modified after signing; re-run and re-sign the stage",
                source=source,
            )
            return
        self.report.fail(
            Check.SIGNER_NOT_ALLOWED,
            claimed,
            "signed by a key the policy does not know",
            expected=f"a signature by {self.signers.allowed_names(claimed)}",
            found=f"key {(bundle.key_hint or 'unknown')[:16]}",
            remedy="sign the stage with a functionary key listed for it in the policy",
            source=source,
        )

    def _keyless_signer(
        self, bundle: Bundle, claimed: str | None, source: str
    ) -> Functionary | None:
        """Like :meth:`SignerLookup.by_key` for keyless bundles; every failure goes to the report."""
        expected = f"a signature by {self.signers.allowed_names(claimed)}"
        try:
            return self.signers.by_identity(bundle, claimed, source)
        except IdentityMismatchError as exc:
            self.report.fail(
                Check.SIGNER_NOT_ALLOWED,
                claimed,
                "signed by a Sigstore identity the policy does not allow",
                expected=expected,
                found=exc.found.describe(),
                remedy="sign with an identity listed for the stage, or change the policy",
                source=source,
            )
        except SigstoreVerificationError as exc:
            trust = self.policy.sigstore_trust
            self.report.fail(
                Check.SIGNATURE,
                claimed,
                f"keyless signature does not verify: {exc.message}",
                expected=f"{expected}, certified and logged by the policy's Sigstore instance "
                f"({trust.source if trust else 'none named'})",
                found="a bundle that fails offline Sigstore verification",
                remedy=exc.remedy or "re-sign the stage against the instance the policy trusts",
                source=source,
            )
        except MalformedDocumentError as exc:
            self.report.fail(
                Check.ATTESTATION_MALFORMED, claimed, exc.message, remedy=_RESIGN, source=source
            )
        return None

    # -- what it says -----------------------------------------------------------------
    def statement(self, bundle: Bundle, claimed: str | None, source: str) -> StageStatement | None:
        """The bundle's in-toto stage statement; None (reported) when it is not one."""
        if bundle.envelope.payload_type != INTOTO_PAYLOAD_TYPE:
            self.report.fail(
                Check.ATTESTATION_MALFORMED,
                claimed,
                f"payloadType {bundle.envelope.payload_type!r} is not an in-toto statement",
                expected=INTOTO_PAYLOAD_TYPE,
                found=bundle.envelope.payload_type,
                remedy="only in-toto attestations count as stage evidence",
                source=source,
            )
            return None
        try:
            return StageStatement.from_payload(bundle.envelope.payload, what=source)
        except MlspecError as exc:
            self.report.fail(
                Check.ATTESTATION_MALFORMED,
                claimed,
                exc.message,
                remedy="re-sign the stage with this version of mlspec-attest",
                source=source,
            )
            return None

    # -- what it is bound to ----------------------------------------------------------
    def bound(
        self, statement: StageStatement, stage: StagePolicy, signer: Functionary, source: str
    ) -> bool:
        """Every binding checked (and each failure reported): signer, run, policy, kind, times."""
        results = (
            self._signer_allowed(stage, signer, source),
            self._same_run(statement, stage, source),
            self._policy_bound(statement, stage, source),
            self._policy_same(statement, stage, source),
            self._same_kind(statement, stage, source),
            check_signed_times(
                statement,
                source,
                self.now,
                self.signers.trusted_times.get(source, ()),
                self.report,
            ),
        )
        return all(results)

    def _signer_allowed(self, stage: StagePolicy, signer: Functionary, source: str) -> bool:
        if signer.name in stage.functionaries:
            return True
        self.report.fail(
            Check.SIGNER_NOT_ALLOWED,
            stage.name,
            f"signed by {signer.name!r}, who may not sign this stage",
            expected=f"a signature by {self.signers.allowed_names(stage.name)}",
            found=f"functionary {signer.name!r}",
            remedy="have an allowed functionary re-sign the stage, or change the policy",
            source=source,
        )
        return False

    def _same_run(self, statement: StageStatement, stage: StagePolicy, source: str) -> bool:
        run_id = statement.metadata.run_id
        if run_id == self.run_id:
            return True
        self.report.fail(
            Check.RUN_ID,
            stage.name,
            "attestation belongs to another pipeline run",
            expected=f"run {self.run_id}",
            found=f"run {run_id}",
            remedy="remove attestations copied from other runs; re-sign the stage in this run",
            source=source,
        )
        return False

    def _policy_bound(self, statement: StageStatement, stage: StagePolicy, source: str) -> bool:
        if not self.policy.require_policy_digest or statement.metadata.policy_digest:
            return True
        self.report.fail(
            Check.POLICY_DIGEST,
            stage.name,
            "attestation is not bound to a policy, and this policy requires it",
            expected=self.signed.digest,
            found="no policyDigest",
            remedy=f"sign the stage with {named('policy_for_stage')}",
            source=source,
        )
        return False

    def _policy_same(self, statement: StageStatement, stage: StagePolicy, source: str) -> bool:
        digest = statement.metadata.policy_digest
        if not digest or digest == self.signed.digest:
            return True
        self.report.fail(
            Check.POLICY_DIGEST,
            stage.name,
            "attestation was made for a different policy",
            expected=self.signed.digest,
            found=digest,
            remedy=f"re-sign the stage with {named('policy')} pointing at the current signed policy",
            source=source,
        )
        return False

    def _same_kind(self, statement: StageStatement, stage: StagePolicy, source: str) -> bool:
        kind = statement.metadata.kind
        if kind == stage.kind.value:
            return True
        self.report.fail(
            Check.STAGE_KIND,
            stage.name,
            "stage kind differs from the policy",
            expected=stage.kind.value,
            found=kind,
            remedy=f"sign with {named('kind', kind=stage.kind.value)}",
            source=source,
        )
        return False
