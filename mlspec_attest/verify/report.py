"""Verification reports: every failure with stage, check, expected, found and remedy."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from msgspec import Struct, field

from mlspec_attest import errors

if TYPE_CHECKING:
    from mlspec_attest.policy.criteria import CriterionResult

REPORT_SCHEMA = "https://mlspec-attest.dev/verification-report/v1"


class Check(StrEnum):
    """Every check ``verify`` performs, in order; docs/verification.md describes each.

    The second value is the error class name a fail-closed caller sees.
    """

    POLICY_SIGNATURE = "policy-signature"
    POLICY_EXPIRED = "policy-expired"
    ATTESTATION_MALFORMED = "attestation-malformed"
    SIGNATURE = "signature"
    SIGNER_NOT_ALLOWED = "signer-not-allowed"
    RUN_ID = "run-id"
    POLICY_DIGEST = "policy-digest"
    STAGE_KIND = "stage-kind"
    STAGE_MISSING = "stage-missing"
    CONFLICT = "conflicting-attestations"
    SIGNED_TIME = "signed-time"
    THRESHOLD = "threshold"
    ORDERING = "ordering"
    ARTIFACT_RULE = "artifact-rule"
    INSPECTION = "inspection"
    OBJECTIVES_DOCUMENT = "objectives-document"
    BASELINE = "baseline"
    OBJECTIVE = "objective"
    HOLDBACK_NOT_TESTED = "holdback-not-tested"
    HOLDBACK_READ = "holdback-read"
    HOLDBACK_EVIDENCE = "holdback-evidence"
    TEST_MODEL = "test-model-mismatch"
    TEST_ORDER = "test-before-evaluate"
    TEST_DATA_REUSED = "test-data-reused"
    LEAKAGE = "leakage"
    DATA_VALIDATION = "data-validation"
    DEPRECATED_DATA = "deprecated-data"
    REQUIREMENT = "requirement"
    ARTIFACT_MISSING = "artifact-missing"
    ARTIFACT_MISMATCH = "artifact-mismatch"
    OMS_SIGNATURE = "oms-signature"


#: Failures of one attestation, found before its stage is judged: root causes.
ADMISSION: Final = frozenset({
    Check.ATTESTATION_MALFORMED, Check.SIGNATURE, Check.SIGNER_NOT_ALLOWED, Check.RUN_ID,
    Check.POLICY_DIGEST, Check.STAGE_KIND, Check.SIGNED_TIME, Check.CONFLICT,
})  # fmt: skip
#: A stage judged as a whole (missing, too few signers).
STAGE_LEVEL: Final = frozenset({Check.STAGE_MISSING, Check.THRESHOLD})

ERROR_CLASSES: dict[Check, type[errors.VerificationError]] = {
    Check.POLICY_SIGNATURE: errors.PolicySignatureError,
    Check.POLICY_EXPIRED: errors.PolicyExpiredError,
    Check.ATTESTATION_MALFORMED: errors.MalformedAttestationError,
    Check.SIGNATURE: errors.SignatureVerificationError,
    Check.SIGNER_NOT_ALLOWED: errors.UnauthorizedSignerError,
    Check.RUN_ID: errors.RunMismatchError,
    Check.POLICY_DIGEST: errors.PolicyDigestMismatchError,
    Check.STAGE_KIND: errors.StageKindMismatchError,
    Check.STAGE_MISSING: errors.StageNotFoundError,
    Check.CONFLICT: errors.ConflictingAttestationsError,
    Check.SIGNED_TIME: errors.SignedTimeError,
    Check.THRESHOLD: errors.ThresholdVerificationError,
    Check.ORDERING: errors.OrderingVerificationError,
    Check.ARTIFACT_RULE: errors.RuleVerificationError,
    Check.INSPECTION: errors.InspectionError,
    Check.OBJECTIVES_DOCUMENT: errors.ObjectivesDocumentError,
    Check.BASELINE: errors.BaselineVerificationError,
    Check.OBJECTIVE: errors.ObjectiveNotMetError,
    Check.HOLDBACK_NOT_TESTED: errors.HoldbackNotTestedError,
    Check.HOLDBACK_READ: errors.HoldbackReadError,
    # The row evidence that would show hold-back rows in what a stage read is
    # missing or unusable: it may have read them, so the same class as reading them.
    Check.HOLDBACK_EVIDENCE: errors.HoldbackReadError,
    Check.TEST_MODEL: errors.EvaluatedModelMismatchError,
    Check.TEST_ORDER: errors.HoldbackTestOrderError,
    Check.TEST_DATA_REUSED: errors.HoldbackDataReusedError,
    Check.LEAKAGE: errors.LeakageError,
    Check.DATA_VALIDATION: errors.DataValidationError,
    Check.DEPRECATED_DATA: errors.DeprecatedDataError,
    Check.REQUIREMENT: errors.RequirementNotMetError,
    Check.ARTIFACT_MISSING: errors.ArtifactNotSuppliedError,
    Check.ARTIFACT_MISMATCH: errors.ArtifactMismatchError,
    Check.OMS_SIGNATURE: errors.ModelSignatureMismatchError,
}
ERROR_NAMES: dict[Check, str] = {c: cls.__name__ for c, cls in ERROR_CLASSES.items()}


class Failure(Struct, frozen=True):
    """One reason the pipeline is denied."""

    check: Check
    stage: str | None
    message: str
    expected: str = ""
    found: str = ""
    remedy: str = ""
    source: str = ""

    @property
    def error(self) -> str:
        return ERROR_NAMES[self.check]

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check.value,
            "error": self.error,
            "stage": self.stage,
            "message": self.message,
            "expected": self.expected,
            "found": self.found,
            "remedy": self.remedy,
            "source": self.source,
        }


class StageSummary(Struct, frozen=True):
    """One required stage in the report: its status, signers and accepted attestations."""

    name: str
    kind: str
    status: str  # "ok" | "failed" | "missing" | "optional-missing"
    signers: tuple[str, ...] = ()
    attestations: tuple[str, ...] = ()
    # (where in the store, payload digest "sha256:<hex>") of every accepted attestation:
    # what a verification summary lists as its inputAttestations.
    inputs: tuple[tuple[str, str], ...] = ()


class ArtifactSummary(Struct, frozen=True):
    """One deploy artifact in the report: re-hashed against what the pipeline attested."""

    role: str
    path: str | None
    status: str  # "ok" | "mismatch" | "missing" | "not-checked"
    digest: dict[str, str] = field(default_factory=dict)
    # For a directory that differs: every file added, removed or changed.
    files: dict[str, list[str]] | None = None
    # What the pipeline's chosen attestation says the artifact is (empty if none).
    attested: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "role": self.role,
            "path": self.path,
            "status": self.status,
            "digest": self.digest,
        }
        if self.files is not None:
            out["files"] = self.files
        return out


class VerificationReport(Struct):
    """The full result of one verification; ``passed`` only if there is no failure."""

    policy_name: str
    policy_digest: str
    run_id: str | None
    verified_at: str
    failures: list[Failure] = field(default_factory=list)
    stages: list[StageSummary] = field(default_factory=list)
    artifacts: list[ArtifactSummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    objectives: list[CriterionResult] = field(default_factory=list)
    requirements: list[CriterionResult] = field(default_factory=list)
    # Every check that ran, with its evidence (verify/ledger.py CheckRun, to_json()).
    checks: list[Any] = field(default_factory=list)
    # The verification-summary levels (families of checks) the policy demands.
    demanded: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    def fail(self, check: Check, stage: str | None, message: str, **kw: str) -> None:
        self.failures.append(Failure(check, stage, message, **kw))

    def classified_failures(self) -> list[tuple[Failure, str]]:
        """Each failure with why it is a consequence ("" for a root cause), root causes
        first (each group in the order found): an attestation refused at admission is a
        root cause; its stage then missing, and the checks reading that stage, follow."""
        refused = {f.stage for f in self.failures if f.check in ADMISSION and f.stage}
        unverified = refused | {f.stage for f in self.failures if f.check in STAGE_LEVEL}
        out = []
        for f in self.failures:
            because = ""
            if f.check in STAGE_LEVEL and f.stage in refused:
                because = f"stage {f.stage!r}: its attestations were refused (see the root causes)"
            elif f.check not in ADMISSION | STAGE_LEVEL and f.stage in unverified:
                because = f"stage {f.stage!r} was not verified"
            out.append((f, because))
        return sorted(out, key=lambda item: bool(item[1]))

    def failed_stages(self) -> set[str]:
        return {f.stage for f in self.failures if f.stage}

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": REPORT_SCHEMA,
            "result": "PASSED" if self.passed else "FAILED",
            "policy": {"name": self.policy_name, "digest": self.policy_digest},
            "runId": self.run_id,
            "verifiedAt": self.verified_at,
            "stages": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "status": s.status,
                    "signers": list(s.signers),
                    "attestations": list(s.attestations),
                }
                for s in self.stages
            ],
            "artifacts": [a.to_json() for a in self.artifacts],
            "objectives": [r.to_json() for r in self.objectives],
            "requirements": [r.to_json() for r in self.requirements],
            "checks": [c.to_json() for c in self.checks],
            "failures": [
                {**f.to_json(), "cause": "consequence" if why else "root", "because": why}
                for f, why in self.classified_failures()
            ],
            "notes": list(self.notes),
        }
