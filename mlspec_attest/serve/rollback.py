"""Rolling back to an earlier model: only to a target whose own summary passes the gate.

:func:`check_rollback` is the gate (:mod:`.vsa_check`, :func:`.gate.read_verified`)
plus one more check: when the signed policy names its rollback target
(``rollback.summary``, the sha256 of the target summary's payload), the summary given
must be that one. A FAILED summary, one signed by an untrusted key, or a model whose
bytes differ from the summary's subject is refused exactly as at deploy time.

The switch itself is a restart through the gate: ``serve`` (or any server behind
``gate -- CMD``) started on the target's summary. A log's origin names the summary it
serves under, so the target's requests go to their own log and are never mixed with the
failing model's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from msgspec import Struct

from mlspec_attest.policy.model import Policy
from mlspec_attest.serve.gate import VerifiedFiles, read_verified
from mlspec_attest.serve.vsa_check import (
    CheckedSummary,
    GateCheck,
    GateExpectations,
    GateReason,
    VerifierTrust,
    check_summary,
    deny,
)


class RollbackTarget(Struct, frozen=True):
    """A target that passed: its checked summary and its verified model files."""

    checked: CheckedSummary
    files: VerifiedFiles

    def to_json(self) -> dict[str, Any]:
        s = self.checked.summary
        return {
            "summary": f"sha256:{self.checked.digest}",
            "model": f"sha256:{self.checked.model_digest}",
            "runId": s.run_id,
            "policy": f"sha256:{s.policy_digest}",
            "verifier": self.checked.signer,
            "files": len(self.files.names),
            **({"copy": str(self.files.copy)} if self.files.copy is not None else {}),
        }


def pinned_target(policy: Policy | None) -> str | None:
    """The summary digest (hex) the policy names as its rollback target, if any."""
    if policy is None or policy.rollback is None:
        return None
    return policy.rollback.summary.removeprefix("sha256:")


def check_rollback(
    vsa: Path,
    model: Path,
    trust: VerifierTrust,
    *,
    pinned: str | None,
    expect: GateExpectations | None = None,
    copy_to: Path | None = None,
) -> RollbackTarget:
    """The target, if its summary passes the gate, is the pinned one, and covers ``model``."""
    checked = check_summary(vsa, trust, expect)
    if pinned is not None and checked.digest != pinned:
        reason = GateReason(
            GateCheck.ROLLBACK_TARGET,
            "the summary is not the rollback target the signed policy names",
            expected=f"sha256:{pinned}",
            found=f"sha256:{checked.digest}",
            remedy="roll back to the target the policy names, or have the owner sign a "
            "policy naming this one",
        )
        raise deny([reason], f"rollback to {vsa}")
    files = read_verified(model, checked.subject.digest, copy_to=copy_to, keep=False)
    return RollbackTarget(checked, files)
