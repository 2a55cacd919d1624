"""Step 8: the ``--baseline`` attestation, and what it may stand for.

It must be signed by a functionary of its stage — the signer is looked up exactly as
for a stage attestation (:class:`mlspec_attest.verify.signers.SignerLookup`), so a
signature that would not admit a stage attestation does not admit a baseline either
— be that stage's kind, be an in-toto statement from another run (a run is no
baseline for itself), and stand for the model the policy means:

* when the policy names its previous release (``rollback.summary``, the sha256 of
  that release's verification summary payload, signed by the owner with the
  policy), the baseline must be one of the input attestations of that summary, and
  the summary must say ``PASSED``. The summary is read from the store
  (``summaries/<sha256>.sigstore.json``: the verification store, else the store the
  baseline file is in) and re-hashed: the owner's pin, not its location or its
  signer, makes it the one meant. An attestation of a run that never passed, or
  never shipped, is refused.
* otherwise the baseline must be bound to the policy being verified (its signed
  ``policyDigest``), whether or not the policy requires binding for its stages: a
  baseline from a pipeline under another policy, or bound to none, is refused.
  Under one policy, which of its runs is in production is not recorded anywhere
  the verifier can check: name it with ``rollback.summary``.

:mod:`mlspec_attest.verify.checks.objectives` then makes sure it is of the stage the
``change`` criteria compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlspec_attest import formats
from mlspec_attest.errors import MalformedDocumentError, MlspecError, SigstoreVerificationError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.formats.limits import MAX_BUNDLE_BYTES
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.policy.model import Functionary, Policy, StagePolicy
from mlspec_attest.store.ledger import AttestationStore, StoredAttestation
from mlspec_attest.verify.accepted import Baseline
from mlspec_attest.verify.report import Check, VerificationReport
from mlspec_attest.verify.signers import SignerLookup

if TYPE_CHECKING:
    from mlspec_attest.formats.vsa import VerificationSummary


class BaselineLoader:
    """Reads and checks one ``--baseline`` attestation for a verification of ``run_id``.

    ``store`` is the verification's store, where the summary a policy's
    ``rollback.summary`` names is looked up first.
    """

    def __init__(
        self,
        signers: SignerLookup,
        run_id: str,
        report: VerificationReport,
        store: AttestationStore | None = None,
    ) -> None:
        self.signers = signers
        self.policy: Policy = signers.policy
        self.run_id = run_id
        self.report = report
        self.store = store

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
        problems = self.problems(bundle, statement, stage) + self.binding(path, bundle, statement)
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
        return problems

    # -- which model it stands for --------------------------------------------------------
    def binding(self, path: Path, bundle: Bundle, statement: StageStatement) -> list[str]:
        """Why it does not stand for the model the policy compares with (module docstring)."""
        if self.policy.rollback is not None:
            return self.release_problems(path, bundle, statement, self.policy.rollback.summary)
        digest = statement.metadata.policy_digest
        if not digest:
            if self.policy.require_policy_digest:
                return ["it is not bound to a policy, and this policy requires that"]
            return [
                "it is not bound to a policy; a baseline must be bound to the policy being "
                "verified (or be named by the policy's rollback.summary)"
            ]
        if digest != self.report.policy_digest:
            return [
                f"it is bound to policy {digest}, not to the policy being verified "
                f"({self.report.policy_digest}); a baseline from another policy is accepted "
                "only as an input of the summary the policy's rollback.summary names"
            ]
        return []

    def release_problems(
        self, path: Path, bundle: Bundle, statement: StageStatement, pinned: str
    ) -> list[str]:
        """Whether the baseline is an input of the passing summary ``pinned`` names."""
        summary, problem = self.release_summary(path, pinned.removeprefix("sha256:"))
        if summary is None:
            return [problem]
        problems = []
        if not summary.passed:
            problems.append(
                f"the rollback target the policy names ({pinned}) did not pass verification "
                f"({summary.result.value})"
            )
        own = (StoredAttestation(path, bundle).payload_digest or "").removeprefix("sha256:")
        inputs = {i.sha256 for i in summary.inputs if i.stage == statement.name}
        if own not in inputs:
            problems.append(
                f"it is not an input attestation of {statement.name!r} in the verification "
                f"summary the policy's rollback.summary names ({pinned}): "
                f"sha256:{own} is not one of "
                + (", ".join(f"sha256:{d}" for d in sorted(inputs)) or "none")
            )
        return problems

    def release_summary(self, path: Path, digest: str) -> tuple[VerificationSummary | None, str]:
        """The summary whose payload has sha256 ``digest``, or why it cannot be had."""
        where = f"summaries/{digest}.sigstore.json"
        found = next((p for p in self._summary_paths(path, digest) if p is not None), None)
        if found is None:
            return None, (
                f"the policy names its previous release by rollback.summary sha256:{digest}, "
                f"and that summary is not in the store ({where}): the baseline cannot be "
                "shown to be an attestation of that release"
            )
        try:
            bundle = Bundle.from_json(
                load_file(found, max_bytes=MAX_BUNDLE_BYTES, kind="a Sigstore bundle"),
                what=str(found),
            )
            payload = bundle.envelope.payload
            if formats.summary_digest(payload) != digest:
                return None, (
                    f"{found} is not the summary rollback.summary names: its payload has "
                    f"sha256:{formats.summary_digest(payload)}, not sha256:{digest}"
                )
            return formats.VerificationSummary.from_payload(payload, what=str(found)), ""
        except MlspecError as exc:
            return None, f"the summary rollback.summary names is unreadable: {exc.message}"

    def _summary_paths(self, path: Path, digest: str) -> list[Path | None]:
        """Where the summary may be: the verification store, then the baseline's own store
        (``<store>/runs/<run>/<file>``). The digest, not the place, decides."""
        stores = [self.store] if self.store is not None else []
        if path.parent.parent.name == "runs":
            stores.append(AttestationStore(path.parent.parent.parent))
        return [store.summary_path(digest) for store in stores]

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
