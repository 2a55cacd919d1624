"""Verification reports: every failure with stage, check, expected, found and remedy."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

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
    THRESHOLD = "threshold"
    ORDERING = "ordering"
    ARTIFACT_RULE = "artifact-rule"
    ARTIFACT_MISSING = "artifact-missing"
    ARTIFACT_MISMATCH = "artifact-mismatch"


ERROR_NAMES: dict[Check, str] = {
    Check.POLICY_SIGNATURE: "PolicySignatureError",
    Check.POLICY_EXPIRED: "PolicyExpiredError",
    Check.ATTESTATION_MALFORMED: "MalformedAttestationError",
    Check.SIGNATURE: "SignatureVerificationError",
    Check.SIGNER_NOT_ALLOWED: "UnauthorizedSignerError",
    Check.RUN_ID: "RunMismatchError",
    Check.POLICY_DIGEST: "PolicyDigestMismatchError",
    Check.STAGE_KIND: "StageKindMismatchError",
    Check.STAGE_MISSING: "StageNotFoundError",
    Check.THRESHOLD: "ThresholdVerificationError",
    Check.ORDERING: "OrderingVerificationError",
    Check.ARTIFACT_RULE: "RuleVerificationError",
    Check.ARTIFACT_MISSING: "ArtifactNotSuppliedError",
    Check.ARTIFACT_MISMATCH: "ArtifactMismatchError",
}


@dataclass(frozen=True)
class Failure:
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


@dataclass(frozen=True)
class StageSummary:
    name: str
    kind: str
    status: str  # "ok" | "failed" | "missing" | "optional-missing"
    signers: tuple[str, ...] = ()
    attestations: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArtifactSummary:
    role: str
    path: str | None
    status: str  # "ok" | "mismatch" | "missing" | "not-checked"
    digest: dict[str, str] = field(default_factory=dict)


@dataclass
class VerificationReport:
    """The full result of one verification; ``passed`` only if there is no failure."""

    policy_name: str
    policy_digest: str
    run_id: str | None
    verified_at: str
    failures: list[Failure] = field(default_factory=list)
    stages: list[StageSummary] = field(default_factory=list)
    artifacts: list[ArtifactSummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def fail(self, check: Check, stage: str | None, message: str, **kw: str) -> None:
        self.failures.append(Failure(check, stage, message, **kw))

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
            "artifacts": [
                {"role": a.role, "path": a.path, "status": a.status, "digest": a.digest}
                for a in self.artifacts
            ],
            "failures": [f.to_json() for f in self.failures],
            "notes": list(self.notes),
        }
