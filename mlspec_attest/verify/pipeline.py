"""The verification engine: signed policy + store + files -> VerificationReport.

Steps, in order (docs/verification.md documents each with its error):

1. policy signature by every owner key (stop here if any is missing)
2. policy expiry
3. each stored attestation: well-formed, signature valid under a policy key
   (keyless: the Sigstore bundle verifies offline against the policy's embedded
   trust root and its certificate identity matches a functionary's rule),
   signer allowed for its stage, same run id, same policy digest, same kind
4. every required stage present
5. threshold: distinct functionary keys whose attestations agree
6. ordering (``after``): a stage starts after its predecessors finished
7. artifact rules (in-toto semantics) on materials and products
8. deploy artifacts re-hashed and equal to the attested products

Every failure is collected; nothing stops at the first one except a policy
whose signature does not verify (its content cannot be trusted at all).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from mlspec_attest.digest.manifest import (
    DEFAULT_SCHEME,
    ArtifactDigest,
    DigestScheme,
    DirectoryManifest,
    digest_path,
)
from mlspec_attest.errors import (
    ArtifactPathError,
    MalformedDocumentError,
    MlspecError,
    SigstoreVerificationError,
    UsageError,
)
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.signer import PublicKeyVerifier
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.policy.model import (
    Functionary,
    Policy,
    StagePolicy,
    format_rfc3339,
    parse_rfc3339,
)
from mlspec_attest.policy.rules import LinkArtifacts, evaluate_rules
from mlspec_attest.policy.signed import SignedPolicy
from mlspec_attest.store.ledger import AttestationStore, StoredAttestation
from mlspec_attest.verify.accepted import (
    AcceptedAttestation,
    Baseline,
    Conflict,
    StageEvidence,
    resolve,
)
from mlspec_attest.verify.dirfiles import Expander, rule_paths, rule_queue
from mlspec_attest.verify.oms_evidence import check_oms_evidence
from mlspec_attest.verify.report import ArtifactSummary, Check, StageSummary, VerificationReport

if TYPE_CHECKING:
    from mlspec_attest.digest.engine import ProgressSink

#: How far a signer's clock may run ahead of the verifier's (or of a log's).
MAX_CLOCK_SKEW = timedelta(minutes=5)


def _claimed_stage(stored: StoredAttestation) -> str | None:
    """The stage an attestation claims to be, for messages: its payload's, else its file name's."""
    return stored.claimed_stage() or stored.path.name.split(".", 1)[0] or None


class PipelineVerifier:
    """Runs every check of one verification and fills a report."""

    def __init__(
        self,
        signed: SignedPolicy,
        owner_keys: list[PublicKeyVerifier],
        store: AttestationStore,
        *,
        run_id: str | None = None,
        artifacts: Mapping[str, Path] | None = None,
        now: datetime | None = None,
        baseline: Path | None = None,
        progress: ProgressSink | None = None,
    ) -> None:
        if not owner_keys:
            raise UsageError("at least one --policy-key is required to trust the policy")
        self.signed = signed
        self.policy: Policy = signed.policy
        self.owner_keys = owner_keys
        self.store = store
        self.artifacts = dict(artifacts or {})
        self.now = now or datetime.now(UTC)
        self.baseline_path = baseline
        self.progress = progress
        unknown = sorted(set(self.artifacts) - set(self.policy.deploy))
        if unknown:
            roles = ", ".join(sorted(self.policy.deploy)) or "none"
            raise UsageError(
                f"--artifact role(s) {', '.join(unknown)} not declared by the policy",
                remedy=f"the policy's deploy roles are: {roles}",
            )
        self.run_id = store.resolve_run(run_id)
        # Times a third party (transparency log, TSA) vouches for, per attestation file.
        self._trusted_times: dict[str, tuple[datetime, ...]] = {}
        self.report = VerificationReport(
            policy_name=self.policy.name,
            policy_digest=signed.digest,
            run_id=self.run_id,
            verified_at=format_rfc3339(self.now),
        )

    # -- steps 1-2 ----------------------------------------------------------
    def check_policy(self) -> bool:
        for key in self.signed.unsigned_by(self.owner_keys):
            self.report.fail(
                Check.POLICY_SIGNATURE,
                None,
                "the policy is not signed by a required owner key",
                expected=f"a valid signature by key {key.keyid[:16]}",
                found=f"{len(self.signed.envelope.signatures)} signature(s), none valid for that key",
                remedy="re-sign the policy with `mlspec-attest policy sign`, or pass the right --policy-key",
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
    def _key_candidates(self, hint: str | None) -> list[Functionary]:
        everyone = [f for f in self.policy.functionaries.values() if f.public_key is not None]
        matching = [f for f in everyone if hint and f.keyid == hint]
        return matching or everyone

    def _signer_of(self, bundle: Bundle, claimed: str | None) -> Functionary | None:
        """The functionary whose key verifies ``bundle``; if several share that key,
        the one allowed to sign the claimed stage."""
        verified = {
            f.keyid: f
            for f in self._key_candidates(bundle.key_hint)
            if bundle.envelope.verified_by(f.key)
        }
        if not verified:
            return None
        keyid = next(iter(verified))
        sharing = [f for f in self.policy.functionaries.values() if f.keyid == keyid]
        stage = self.policy.stage(claimed) if claimed else None
        allowed = [f for f in sharing if stage and f.name in stage.functionaries]
        return (allowed or sharing)[0]

    def _keyless_functionaries(self, bundle: Bundle, what: str) -> list[Functionary]:
        """The Sigstore functionaries whose identity rule the bundle's certificate matches,
        after verifying the bundle offline against the policy's trust root.

        Raises SigstoreVerificationError (IdentityMismatchError for an unknown identity)
        or MalformedDocumentError; BackendError if sigstore-python is missing.
        """
        from mlspec_attest.signing.sigstore.verify import verify_bundle

        keyless = [f for f in self.policy.functionaries.values() if f.identity is not None]
        trust = self.policy.sigstore_trust
        if not keyless or trust is None:
            raise SigstoreVerificationError(
                "signed keyless (a Sigstore certificate), but the policy names no Sigstore "
                "identities",
                remedy="sign with a functionary key, or add the signer's Sigstore identity "
                "and trust.sigstore to the policy",
            )
        verified = verify_bundle(
            bundle.to_json(),
            trust=trust,
            identities=[f.identity for f in keyless if f.identity is not None],
            what=what,
        )
        self._trusted_times[what] = tuple(t.time for t in verified.times)
        return [f for f in keyless if f.identity in verified.matched]

    def _keyless_signer(
        self, bundle: Bundle, claimed: str | None, source: str
    ) -> Functionary | None:
        """Like :meth:`_signer_of` for keyless bundles; every failure goes to the report."""
        from mlspec_attest.signing.sigstore.verify import IdentityMismatchError

        expected = f"a signature by {self._allowed_names(claimed)}"
        try:
            matching = self._keyless_functionaries(bundle, source)
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
            return None
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
            return None
        except MalformedDocumentError as exc:
            self.report.fail(
                Check.ATTESTATION_MALFORMED,
                claimed,
                exc.message,
                remedy="re-sign the stage; do not edit attestation files",
                source=source,
            )
            return None
        stage = self.policy.stage(claimed) if claimed else None
        allowed = [f for f in matching if stage and f.name in stage.functionaries]
        return (allowed or matching)[0]

    def accept(self, stored: StoredAttestation) -> AcceptedAttestation | None:
        source = stored.path.name
        claimed = _claimed_stage(stored)
        if stored.bundle is None:
            self.report.fail(
                Check.ATTESTATION_MALFORMED,
                claimed,
                f"unreadable attestation: {stored.error}",
                remedy="re-sign the stage; do not edit attestation files",
                source=source,
            )
            return None
        bundle = stored.bundle
        if bundle.is_keyless:
            signer = self._keyless_signer(bundle, claimed, source)
            if signer is None:
                return None
        else:
            signer = self._signer_of(bundle, claimed)
        if signer is None:
            known = bundle.key_hint and any(
                f.keyid == bundle.key_hint for f in self.policy.functionaries.values()
            )
            if known:
                self.report.fail(
                    Check.SIGNATURE,
                    claimed,
                    "signature does not verify (payload or signature altered)",
                    expected=f"a valid signature by key {bundle.key_hint[:16] if bundle.key_hint else ''}",
                    found="signature invalid over the DSSE payload",
                    remedy="the attestation was modified after signing; re-run and re-sign the stage",
                    source=source,
                )
            else:
                allowed = self._allowed_names(claimed)
                self.report.fail(
                    Check.SIGNER_NOT_ALLOWED,
                    claimed,
                    "signed by a key the policy does not know",
                    expected=f"a signature by {allowed}",
                    found=f"key {(bundle.key_hint or 'unknown')[:16]}",
                    remedy="sign the stage with a functionary key listed for it in the policy",
                    source=source,
                )
            return None
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
            statement = StageStatement.from_payload(bundle.envelope.payload, what=source)
        except MlspecError as exc:
            self.report.fail(
                Check.ATTESTATION_MALFORMED,
                claimed,
                exc.message,
                remedy="re-sign the stage with this version of mlspec-attest",
                source=source,
            )
            return None
        meta = statement.metadata
        stage = self.policy.stage(meta.stage)
        if stage is None:
            self.report.notes.append(
                f"{source}: stage {meta.stage!r} is not in the policy; ignored"
            )
            return None
        ok = True
        if signer.name not in stage.functionaries:
            ok = False
            self.report.fail(
                Check.SIGNER_NOT_ALLOWED,
                stage.name,
                f"signed by {signer.name!r}, who may not sign this stage",
                expected=f"a signature by {self._allowed_names(stage.name)}",
                found=f"functionary {signer.name!r}",
                remedy="have an allowed functionary re-sign the stage, or change the policy",
                source=source,
            )
        if meta.run_id != self.run_id:
            ok = False
            self.report.fail(
                Check.RUN_ID,
                stage.name,
                "attestation belongs to another pipeline run",
                expected=f"run {self.run_id}",
                found=f"run {meta.run_id}",
                remedy="remove attestations copied from other runs; re-sign the stage in this run",
                source=source,
            )
        if self.policy.require_policy_digest and not meta.policy_digest:
            ok = False
            self.report.fail(
                Check.POLICY_DIGEST,
                stage.name,
                "attestation is not bound to a policy, and this policy requires it",
                expected=self.signed.digest,
                found="no policyDigest",
                remedy="sign the stage with --policy SIGNED_POLICY (or MLSPEC_ATTEST_POLICY)",
                source=source,
            )
        if meta.policy_digest and meta.policy_digest != self.signed.digest:
            ok = False
            self.report.fail(
                Check.POLICY_DIGEST,
                stage.name,
                "attestation was made for a different policy",
                expected=self.signed.digest,
                found=meta.policy_digest,
                remedy="re-sign the stage with --policy pointing at the current signed policy",
                source=source,
            )
        if meta.kind != stage.kind.value:
            ok = False
            self.report.fail(
                Check.STAGE_KIND,
                stage.name,
                "stage kind differs from the policy",
                expected=stage.kind.value,
                found=meta.kind,
                remedy=f"sign with --kind {stage.kind.value}",
                source=source,
            )
        ok = self._check_signed_times(statement, source) and ok
        digest = stored.payload_digest or ""
        return AcceptedAttestation(statement, signer, stored.path, digest) if ok else None

    def _check_signed_times(self, statement: StageStatement, source: str) -> bool:
        """A signer's clock is evidence, not truth: its times must at least be consistent.

        Start after finish, a finish in the future, or a finish after a transparency
        log or timestamp authority saw the signature are refused.
        """
        meta = statement.metadata
        started = parse_rfc3339(meta.started_on)
        finished = parse_rfc3339(meta.finished_on)
        problems: list[tuple[str, str, str]] = []
        if started > finished:
            problems.append(
                (
                    "started after it finished",
                    "startedOn <= finishedOn",
                    f"{meta.started_on} > {meta.finished_on}",
                )
            )
        if finished > self.now + MAX_CLOCK_SKEW:
            problems.append(
                (
                    "finished in the future",
                    f"finishedOn at most {format_rfc3339(self.now + MAX_CLOCK_SKEW)}",
                    meta.finished_on,
                )
            )
        for trusted in self._trusted_times.get(source, ()):
            if finished > trusted + MAX_CLOCK_SKEW:
                problems.append(
                    (
                        "claims to have finished after its signature was logged",
                        f"finishedOn at most {format_rfc3339(trusted)} (+ skew)",
                        meta.finished_on,
                    )
                )
        for message, expected, found in problems:
            self.report.fail(
                Check.SIGNED_TIME,
                meta.stage,
                f"signed times are inconsistent: {message}",
                expected=expected,
                found=found,
                remedy="check the signing machine's clock and re-sign the stage",
                source=source,
            )
        return not problems

    def _allowed_names(self, stage_name: str | None) -> str:
        stage = self.policy.stage(stage_name) if stage_name else None
        return ", ".join(stage.functionaries) if stage else "a functionary of the policy"

    # -- steps 4-5 ----------------------------------------------------------
    def select(
        self, stage: StagePolicy, accepted: list[AcceptedAttestation]
    ) -> StageEvidence | None:
        """The stage's one agreeing group of attestations; a conflict or too few keys fail.

        The result never depends on file names or the order the store lists them:
        attestations are grouped by what they claim, and two different claims about
        one stage in one run are a denial (accepted.py explains what a claim is).
        """
        outcome = resolve(accepted)
        if outcome is None:
            if stage.required:
                self.report.fail(
                    Check.STAGE_MISSING,
                    stage.name,
                    "no valid attestation for this required stage",
                    expected=f"an attestation signed by {', '.join(stage.functionaries)} in run {self.run_id}",
                    found="none",
                    remedy=f"run the stage with `mlspec-attest sign --stage {stage.name} ...`",
                )
            return None
        if isinstance(outcome, Conflict):
            self._report_conflict(stage, outcome)
            return None
        if len(outcome.keyids) < stage.threshold:
            signers = sorted({a.functionary.name for a in accepted})
            self.report.fail(
                Check.THRESHOLD,
                stage.name,
                "not enough distinct functionaries signed matching attestations",
                expected=f"{stage.threshold} distinct keys agreeing on materials and products",
                found=f"{len(outcome.keyids)} agreeing key(s) among {len(accepted)} attestation(s) by {', '.join(signers)}",
                remedy="have more of the stage's functionaries run and sign it with their own keys",
            )
        return outcome

    def _report_conflict(self, stage: StagePolicy, conflict: Conflict) -> None:
        versions = "; ".join(
            f"version {i}: " + ", ".join(a.describe() for a in group.attestations)
            for i, group in enumerate(conflict.groups, 1)
        )
        self.report.fail(
            Check.CONFLICT,
            stage.name,
            f"{len(conflict.groups)} different versions of this stage were signed in one run "
            f"(they differ in {', '.join(conflict.differing)})",
            expected="every attestation of the stage in the run to make the same claim",
            found=versions,
            remedy="find out why the stage was signed twice with different results; remove the "
            "attestation that must not ship, or re-run the pipeline in a new run",
        )

    # -- step 6 -------------------------------------------------------------
    def check_ordering(self, evidence: Mapping[str, StageEvidence]) -> None:
        """Each ``after`` edge needs consistent signed clocks AND causal evidence.

        Clocks are the signer's word; the causal evidence is the predecessor
        record: a stage names the payload digests of the attestations already in
        its run when it started, which nobody can do before those exist.
        """
        for stage in self.policy.stages:
            own = evidence.get(stage.name)
            if own is None:
                continue
            for prior in stage.after:
                before = evidence.get(prior)
                if before is None:
                    continue
                if own.earliest_start < before.latest_finish:
                    self.report.fail(
                        Check.ORDERING,
                        stage.name,
                        f"started before {prior!r} finished",
                        expected=f"start at or after {format_rfc3339(before.latest_finish)}",
                        found=f"started {format_rfc3339(own.earliest_start)}",
                        remedy=f"run {stage.name!r} after {prior!r} completes",
                    )
                for att in own.attestations:
                    self._check_causal(stage.name, att, prior, before)

    def _check_causal(
        self, stage: str, att: AcceptedAttestation, prior: str, before: StageEvidence
    ) -> None:
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
        self.report.fail(
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

    # -- step 7 -------------------------------------------------------------
    def check_rules(self, chosen: Mapping[str, AcceptedAttestation]) -> None:
        expander = Expander(self.store, rule_paths(self.policy))
        links: dict[str, LinkArtifacts] = {}
        for name, att in chosen.items():
            links[name] = expander.link(att.artifacts())
            for problem in expander.problems:
                self.report.fail(
                    Check.ARTIFACT_RULE,
                    name,
                    problem,
                    expected="every directory a rule looks inside to have its signed manifest "
                    "in the store",
                    found="a missing or inconsistent manifest",
                    remedy="copy the store with its blobs/ folder, or re-sign the stage",
                )
            expander.problems.clear()
        for stage in self.policy.stages:
            link = links.get(stage.name)
            if link is None:
                continue
            recorded = chosen[stage.name].artifacts()
            for side, rules, arts in (
                (
                    "materials",
                    stage.material_rules,
                    rule_queue(stage.material_rules, recorded.materials, link.materials),
                ),
                (
                    "products",
                    stage.product_rules,
                    rule_queue(stage.product_rules, recorded.products, link.products),
                ),
            ):
                for v in evaluate_rules(rules, arts, link, links):
                    self.report.fail(
                        Check.ARTIFACT_RULE,
                        stage.name,
                        f"{side} rule '{v.rule}' failed: {v.message}",
                        expected=f"{side} authorized by the stage's rules",
                        found=", ".join(v.artifacts),
                        remedy="check that the stage consumed exactly what earlier stages produced "
                        "(a file changed between stages, or an unexpected file was used)",
                    )

    # -- step 8 -------------------------------------------------------------
    def load_baseline(self) -> Baseline | None:
        """The ``--baseline`` attestation's metrics, after checking what it may stand for.

        It must be signed by a functionary of its stage, be that stage's kind, be an
        in-toto statement from another run (a run is no baseline for itself), and be
        bound to a policy when this policy requires that; check_objectives then makes
        sure it is of the stage the ``change`` criteria compare.
        """
        if self.baseline_path is None:
            return None
        from mlspec_attest.formats.bundle import Bundle
        from mlspec_attest.formats.jsonio import load_file

        source = str(self.baseline_path)
        try:
            bundle = Bundle.from_json(load_file(self.baseline_path), what=source)
            statement = StageStatement.from_payload(bundle.envelope.payload, what=source)
        except MlspecError as exc:
            self.report.fail(
                Check.BASELINE, None, f"baseline unreadable: {exc.message}", source=source
            )
            return None
        stage = self.policy.stage(statement.name)
        if not self._baseline_signed(bundle, statement, stage, source):
            return None
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
        for problem in problems:
            self.report.fail(
                Check.BASELINE,
                statement.name,
                f"baseline refused: {problem}",
                expected="the evaluate/test attestation of the baseline model from an earlier, "
                "verified run",
                found=f"{statement.name} of run {statement.metadata.run_id}",
                remedy="pass --baseline with the attestation of the same stage from the run "
                "that produced the model in production",
                source=source,
            )
        if problems:
            return None
        self.report.notes.append(
            f"baseline: {statement.name} of run {statement.metadata.run_id} ({source})"
        )
        return Baseline(statement.name, statement.metadata.run_id, dict(statement.metadata.metrics))

    def _baseline_signed(
        self,
        bundle: Bundle,
        statement: StageStatement,
        stage: StagePolicy | None,
        source: str,
    ) -> bool:
        allowed = list(self.policy.keys_for(stage).values()) if stage else []
        found = "none valid"
        if bundle.is_keyless:
            try:
                signed = any(f in allowed for f in self._keyless_functionaries(bundle, source))
            except (SigstoreVerificationError, MalformedDocumentError) as exc:
                signed, found = False, exc.message
        else:
            signed = any(
                f.public_key is not None and bundle.envelope.verified_by(f.public_key)
                for f in allowed
            )
        if not signed:
            self.report.fail(
                Check.BASELINE,
                statement.name,
                "baseline attestation is not signed by a functionary of its stage",
                expected=f"a signature by {self._allowed_names(statement.name)}",
                found=found,
                remedy="pass the evaluate/test attestation of the baseline model from a verified run",
                source=source,
            )
        return signed

    def check_ml(self, chosen: Mapping[str, AcceptedAttestation]) -> None:
        from mlspec_attest.verify import mlchecks

        mlchecks.check_objectives(
            self.policy, chosen, self.store, self.report, self.load_baseline()
        )
        mlchecks.check_separation(self.policy, chosen, self.report)
        mlchecks.check_leakage(self.policy, chosen, self.store, self.report)
        mlchecks.check_data_validation(self.policy, chosen, self.report)
        mlchecks.check_requirements(self.policy, chosen, self.report)

    # -- step 9 -------------------------------------------------------------
    def check_artifacts(self, chosen: Mapping[str, AcceptedAttestation]) -> None:
        """Re-hash every deploy artifact (all its bytes, never a cache) and compare."""
        for role, spec in sorted(self.policy.deploy.items()):
            path = self.artifacts.get(role)
            if path is None:
                if spec.required:
                    self.report.fail(
                        Check.ARTIFACT_MISSING,
                        spec.stage,
                        f"deploy artifact {role!r} was not supplied",
                        expected=f"--artifact {role}=PATH (product {spec.product} of {spec.stage})",
                        found="not given",
                        remedy=f"pass --artifact {role}=PATH to verify the bytes you deploy",
                    )
                self.report.artifacts.append(ArtifactSummary(role, None, "not-checked"))
                continue
            att = chosen.get(spec.stage)
            attested = None
            if att is not None:
                attested = next((p for p in att.statement.products if p.name == spec.product), None)
            scheme = DEFAULT_SCHEME
            if attested is not None:
                try:
                    scheme = DigestScheme.of_digest_set(attested.digest)
                except MlspecError as exc:
                    self.report.fail(
                        Check.ARTIFACT_MISMATCH,
                        spec.stage,
                        f"deploy artifact {role!r}: {exc.message}",
                        expected="a digest this verifier can recompute",
                        found=", ".join(sorted(attested.digest)),
                        remedy=exc.remedy or "re-sign the stage with a supported digest",
                    )
                    self.report.artifacts.append(ArtifactSummary(role, str(path), "mismatch"))
                    continue
            try:
                actual = digest_path(path, scheme=scheme, progress=self.progress)
            except ArtifactPathError as exc:
                self.report.fail(
                    Check.ARTIFACT_MISSING,
                    spec.stage,
                    f"deploy artifact {role!r}: {exc.message}",
                    expected=f"a readable file or directory at {path}",
                    found="missing",
                    remedy="pass the path of the artifact you are about to deploy",
                )
                self.report.artifacts.append(ArtifactSummary(role, str(path), "missing"))
                continue
            except MlspecError as exc:
                # e.g. a signed digest whose shard size would split the files past the limit
                self.report.fail(
                    Check.ARTIFACT_MISMATCH,
                    spec.stage,
                    f"deploy artifact {role!r} cannot be re-hashed as attested: {exc.message}",
                    expected="a digest this verifier can recompute within its limits",
                    found=", ".join(sorted(attested.digest)) if attested else "no digest",
                    remedy=exc.remedy or "re-sign the stage with a supported digest",
                )
                self.report.artifacts.append(ArtifactSummary(role, str(path), "mismatch"))
                continue
            if attested is None:
                self.report.fail(
                    Check.ARTIFACT_MISMATCH,
                    spec.stage,
                    f"deploy artifact {role!r}: stage {spec.stage!r} attests no product {spec.product!r}",
                    expected=f"product {spec.product} in a valid {spec.stage} attestation",
                    found="none",
                    remedy="fix the stage failures above first",
                )
                self.report.artifacts.append(
                    ArtifactSummary(role, str(path), "mismatch", actual.digest_set())
                )
                continue
            if dict(attested.digest) == actual.digest_set():
                assert att is not None
                self._check_oms_evidence(spec.stage, att, path)
                self.report.artifacts.append(
                    ArtifactSummary(role, str(path), "ok", actual.digest_set())
                )
                continue
            description, files = self._describe_difference(attested.digest, actual)
            key = scheme.key
            self.report.fail(
                Check.ARTIFACT_MISMATCH,
                spec.stage,
                f"deploy artifact {role!r} at {path} differs from what {spec.stage!r} attested",
                expected=f"{key} {attested.digest.get(key, '?')}",
                found=f"{key} {actual.digest}; {description}",
                remedy="do not deploy: the bytes on disk are not the attested ones; rebuild through the pipeline",
            )
            self.report.artifacts.append(
                ArtifactSummary(role, str(path), "mismatch", actual.digest_set(), files)
            )

    def _check_oms_evidence(self, stage: str, att: AcceptedAttestation, path: Path) -> None:
        """If the stage recorded an OpenSSF model-signing signature, the served model must match it."""
        record = att.statement.metadata.details.get("omsSignature")
        if record is None or not path.is_dir():
            return
        for problem in check_oms_evidence(record, path):
            self.report.fail(
                Check.OMS_SIGNATURE,
                stage,
                f"model at {path} does not match the model-signing signature recorded at {stage}: {problem}",
                expected="the model the recorded OMS signature covers",
                found=problem,
                remedy="serve exactly the signed model directory",
            )

    def _describe_difference(
        self, attested: Mapping[str, str], actual: ArtifactDigest
    ) -> tuple[str, dict[str, list[str]] | None]:
        """A one-line account of the difference and, for manifests, every file that differs."""
        if actual.manifest is None:
            if "manifest-sha256" in attested:
                return "attested a directory, found a file", None
            return "file content differs", None
        if "manifest-sha256" not in attested:
            return "attested a file, found a directory", None
        blob = self.store.get_blob(attested["manifest-sha256"])
        if blob is None:
            return "directory content differs (attested manifest not in store)", None
        try:
            expected = DirectoryManifest.from_bytes(blob)
        except MlspecError:
            return "directory content differs (stored manifest unreadable)", None
        diff = expected.diff(actual.manifest)
        return diff.summary(), diff.to_json()

    # -- all ----------------------------------------------------------------
    def collect(self) -> dict[str, list[AcceptedAttestation]]:
        """Every accepted attestation of the run, by stage (failures go to the report)."""
        by_stage: dict[str, list[AcceptedAttestation]] = defaultdict(list)
        for stored in self.store.attestations(self.run_id):
            att = self.accept(stored)
            if att is not None:
                by_stage[att.statement.name].append(att)
        return by_stage

    def run(self) -> VerificationReport:
        if not self.check_policy():
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
        self.check_ml(chosen)
        self.check_artifacts(chosen)
        self._summarize(chosen, by_stage)
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
            signers = tuple(sorted({a.functionary.name for a in accepted}))
            files = tuple(sorted(a.source.name for a in accepted))
            self.report.stages.append(
                StageSummary(stage.name, stage.kind.value, status, signers, files)
            )


def verify_pipeline(
    signed: SignedPolicy,
    owner_keys: list[PublicKeyVerifier],
    store: AttestationStore,
    *,
    run_id: str | None = None,
    artifacts: Mapping[str, Path] | None = None,
    now: datetime | None = None,
    baseline: Path | None = None,
    progress: ProgressSink | None = None,
) -> VerificationReport:
    """Run every check and return the full report (never raises for a denial)."""
    return PipelineVerifier(
        signed,
        owner_keys,
        store,
        run_id=run_id,
        artifacts=artifacts,
        now=now,
        baseline=baseline,
        progress=progress,
    ).run()


def require_verified(
    signed: SignedPolicy,
    owner_keys: list[PublicKeyVerifier],
    store: AttestationStore,
    **kwargs: object,
) -> VerificationReport:
    """Fail-closed form: return the report if it passed, else raise VerificationError."""
    report = verify_pipeline(signed, owner_keys, store, **kwargs)  # type: ignore[arg-type]
    if not report.passed:
        from mlspec_attest.verify.report import ERROR_CLASSES

        first = report.failures[0]
        error = ERROR_CLASSES[first.check](
            f"pipeline denied: {len(report.failures)} failure(s); "
            f"first: [{first.check.value}] {first.message}",
            remedy=first.remedy or None,
        )
        error.report = report  # type: ignore[attr-defined]
        raise error
    return report
