"""Step 8: the ``--baseline`` attestation, and what it may stand for.

It must be signed by a functionary of its stage — the signer is looked up exactly as
for a stage attestation (:class:`mlspec_attest.verify.signers.SignerLookup`), so a
signature that would not admit a stage attestation does not admit a baseline either
— be that stage's kind, be an in-toto statement from another run (a run is no
baseline for itself), and be bound to a policy when this policy requires that;
:mod:`mlspec_attest.verify.checks.objectives` then makes sure it is of the stage the
``change`` criteria compare.
"""

from __future__ import annotations

from pathlib import Path

from mlspec_attest.errors import MalformedDocumentError, MlspecError, SigstoreVerificationError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.policy.model import Functionary, Policy, StagePolicy
from mlspec_attest.verify.accepted import Baseline
from mlspec_attest.verify.report import Check, VerificationReport
from mlspec_attest.verify.signers import SignerLookup


class BaselineLoader:
    """Reads and checks one ``--baseline`` attestation for a verification of ``run_id``."""

    def __init__(self, signers: SignerLookup, run_id: str, report: VerificationReport) -> None:
        self.signers = signers
        self.policy: Policy = signers.policy
        self.run_id = run_id
        self.report = report

    def load(self, path: Path) -> Baseline | None:
        """The baseline's metrics; None (reported) when it cannot stand for a baseline."""
        source = str(path)
        try:
            bundle = Bundle.from_json(load_file(path), what=source)
            statement = StageStatement.from_payload(bundle.envelope.payload, what=source)
        except MlspecError as exc:
            self.report.fail(
                Check.BASELINE, None, f"baseline unreadable: {exc.message}", source=source
            )
            return None
        stage = self.policy.stage(statement.name)
        if not self.signed(bundle, statement, stage, source):
            return None
        problems = self.problems(bundle, statement, stage)
        for problem in problems:
            self.report.fail(
                Check.BASELINE,
                statement.name,
                f"baseline refused: {problem}",
                expected="the evaluate/test attestation of the baseline model from an earlier, "
                "verified run",
                found=f"{statement.name} of run {statement.metadata.run_id}",
                remedy=f"pass {named('baseline')} with the attestation of the same stage from the run "
                "that produced the model in production",
                source=source,
            )
        if problems:
            return None
        self.report.notes.append(
            f"baseline: {statement.name} of run {statement.metadata.run_id} ({source})"
        )
        return Baseline(statement.name, statement.metadata.run_id, dict(statement.metadata.metrics))

    def problems(
        self, bundle: Bundle, statement: StageStatement, stage: StagePolicy | None
    ) -> list[str]:
        """Why a validly signed attestation cannot stand for this run's baseline."""
        problems = []
        if bundle.envelope.payload_type != INTOTO_PAYLOAD_TYPE:
            problems.append(f"payloadType {bundle.envelope.payload_type!r} is not in-toto")
        if stage is not None and statement.metadata.kind != stage.kind.value:
            problems.append(
                f"it is a {statement.metadata.kind!r} attestation; stage {stage.name!r} is "
                f"{stage.kind.value!r}"
            )
        if statement.metadata.run_id == self.run_id:
            problems.append(
                "it comes from the run being verified (a run is no baseline for itself)"
            )
        if self.policy.require_policy_digest and not statement.metadata.policy_digest:
            problems.append("it is not bound to a policy, and this policy requires that")
        return problems

    def signed(
        self,
        bundle: Bundle,
        statement: StageStatement,
        stage: StagePolicy | None,
        source: str,
    ) -> bool:
        """Signed by a functionary allowed to sign its stage (else reported)."""
        signer, found = self.signer(bundle, statement.name, source)
        signed = stage is not None and signer is not None and signer.name in stage.functionaries
        if not signed:
            self.report.fail(
                Check.BASELINE,
                statement.name,
                "baseline attestation is not signed by a functionary of its stage",
                expected=f"a signature by {self.signers.allowed_names(statement.name)}",
                found=found,
                remedy="pass the evaluate/test attestation of the baseline model from a verified run",
                source=source,
            )
        return signed

    def signer(self, bundle: Bundle, claimed: str, source: str) -> tuple[Functionary | None, str]:
        """The signer (as for a stage attestation), and what to report when there is none."""
        if not bundle.is_keyless:
            return self.signers.by_key(bundle, claimed), "none valid"
        try:
            return self.signers.by_identity(bundle, claimed, source), "none valid"
        except (SigstoreVerificationError, MalformedDocumentError) as exc:
            return None, exc.message
