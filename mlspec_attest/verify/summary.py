"""The verdict as a signed SLSA verification summary (VSA v1): built, signed, stored.

:func:`build_summary` turns a :class:`~mlspec_attest.verify.report.VerificationReport`
into a :class:`~mlspec_attest.formats.vsa.VerificationSummary`:

* subjects: every deploy artifact with a digest, the model role first; the digest
  re-hashed from the file when one was given, else the one the pipeline attested;
* ``verifiedLevels``: on PASSED, one ``MLSPEC_*`` level per family of checks the
  policy demands (:data:`~mlspec_attest.verify.levels.FAMILIES`); on FAILED, SLSA's ``FAILED`` alone;
* the ``mlspec`` extension: the run, each family with its result and number of
  failures, each objective with observed values and bounds, the stages, the failures.

A FAILED verdict is written too (an auditor needs it); no gate accepts it
(:mod:`mlspec_attest.serve.vsa_check`). :func:`sign_summary` signs with any signer
``sign`` accepts, and :func:`store_summary` keeps the bundle in the store under its
payload digest, the name the inference log and ``log trace`` use.
"""

from __future__ import annotations

from pathlib import Path

from msgspec import Struct

from mlspec_attest._version import __version__
from mlspec_attest.attestation.signers import StageSigner
from mlspec_attest.formats.bundle import Bundle, sign_to_bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.fsutil import atomic_write
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.formats.rfc3339 import parse_rfc3339
from mlspec_attest.formats.statement import ResourceDescriptor
from mlspec_attest.formats.vsa import (
    DEFAULT_VERIFIER_ID,
    InputAttestation,
    Level,
    Result,
    VerificationSummary,
    summary_digest,
)
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.levels import family_results
from mlspec_attest.verify.report import ArtifactSummary, VerificationReport

MODEL_ROLE = "model"


class SummaryOptions(Struct, frozen=True):
    """Where the model will be served from, and how the verifier and policy are named."""

    resource_uri: str
    policy_uri: str
    verifier_id: str = DEFAULT_VERIFIER_ID


def build_summary(report: VerificationReport, options: SummaryOptions) -> VerificationSummary:
    """The summary of ``report`` (see the module docstring); never raises for a denial."""
    families = family_results(report)
    passed = report.passed
    levels = (
        tuple(str(f["level"]) for f in families if f["result"] == "passed")
        if passed
        else (Level.FAILED.value,)
    )
    others = sum(1 for a in report.artifacts if a.role != MODEL_ROLE and a.status == "ok")
    policy_digest = report.policy_digest.removeprefix("sha256:")
    return VerificationSummary(
        subjects=_subjects(report.artifacts, policy_digest),
        resource_uri=options.resource_uri,
        policy_uri=options.policy_uri,
        policy_digest=policy_digest,
        time_verified=parse_rfc3339(report.verified_at),
        result=Result.PASSED if passed else Result.FAILED,
        levels=levels,
        inputs=tuple(
            InputAttestation(stage.name, uri, digest.removeprefix("sha256:"))
            for stage in report.stages
            for uri, digest in stage.inputs
        ),
        dependency_levels={Level.DEPLOY_DIGESTS.value: others} if passed and others else {},
        verifier_id=options.verifier_id,
        verifier_version={"mlspec-attest": __version__},
        details={
            "runId": report.run_id,
            "policyName": report.policy_name,
            "checks": families,
            "objectives": [r.to_json() for r in report.objectives],
            "stages": [
                {"name": s.name, "status": s.status, "signers": list(s.signers)}
                for s in report.stages
            ],
            "failures": [f.to_json() for f in report.failures],
        },
    )


def _subjects(
    artifacts: list[ArtifactSummary], policy_digest: str
) -> tuple[ResourceDescriptor, ...]:
    ordered = sorted(artifacts, key=lambda a: (a.role != MODEL_ROLE, a.role))
    subjects = tuple(
        ResourceDescriptor(a.role, dict(a.digest or a.attested))
        for a in ordered
        if a.digest or a.attested
    )
    # A verdict about no artifact at all (nothing attested, nothing given) is still a
    # verdict about the policy's run: its subject is the policy, which no gate serves.
    return subjects or (ResourceDescriptor("policy", {"sha256": policy_digest}),)


def sign_summary(summary: VerificationSummary, signer: StageSigner) -> Bundle:
    """Sign ``summary`` as an in-toto DSSE envelope in a Sigstore bundle, like any stage."""
    bundle, _ = sign_to_bundle(summary.to_payload(), INTOTO_PAYLOAD_TYPE, signer)
    return bundle


def store_summary(store: AttestationStore, bundle: Bundle) -> Path:
    """Keep ``bundle`` in the store under its payload digest (create-once)."""
    return store.add_summary(summary_digest(bundle.envelope.payload), bundle)


class WrittenSummary(Struct, frozen=True):
    """A summary signed, stored and written out."""

    summary: VerificationSummary
    digest: str
    path: Path
    stored: Path

    def to_json(self) -> dict[str, str]:
        return {
            "result": self.summary.result.value,
            "digest": f"sha256:{self.digest}",
            "path": str(self.path),
            "stored": str(self.stored),
        }


def write_summary(
    report: VerificationReport,
    options: SummaryOptions,
    signer: StageSigner,
    store: AttestationStore,
    out: Path,
) -> WrittenSummary:
    """Build, sign and store the summary of ``report``, and write its bundle to ``out``."""
    summary = build_summary(report, options)
    bundle = sign_summary(summary, signer)
    stored = store_summary(store, bundle)
    atomic_write(out, canonical(bundle.to_json()))
    return WrittenSummary(summary, summary_digest(bundle.envelope.payload), out, stored)
