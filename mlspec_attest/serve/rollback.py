"""Rolling back to an earlier model: only to a target whose own summary passes the gate.

:func:`check_rollback` is the gate (:mod:`.vsa_check`, :func:`.gate.read_verified`)
plus one more check: when the signed policy names its rollback target
(``rollback.summary``, the sha256 of the target summary's payload), the summary given
must be that one. A FAILED summary, one signed by an untrusted key, or a model whose
bytes differ from the summary's subject is refused exactly as at deploy time.

:func:`switch_server` asks a running reference server to switch (``POST
/admin/rollback``, with the server's admin token); the server runs the same gate
itself before it swaps models, so the request carries no trust.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlspec_attest.errors import BackendError, BadInputError, GateDeniedError, UsageError
from mlspec_attest.formats.jsonio import loads_strict
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

ADMIN_PATH = "/admin/rollback"
MAX_ADMIN_RESPONSE = 1 << 20


@dataclass(frozen=True)
class RollbackTarget:
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


def switch_server(server: str, token: str, vsa: Path, model: Path) -> dict[str, Any]:
    """Ask the server at ``server`` to switch to the target (it gates it again itself)."""
    if not server.startswith(("http://", "https://")):
        raise UsageError(f"the server URL {server!r} must be http:// or https://")
    body = json.dumps({"vsa": str(vsa.resolve()), "model": str(model.resolve())}).encode()
    request = urllib.request.Request(  # noqa: S310 (http and https only, checked above)
        server.rstrip("/") + ADMIN_PATH,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (checked above)
            return _answer(response.read(MAX_ADMIN_RESPONSE + 1), server)
    except urllib.error.HTTPError as exc:
        answer = _answer(exc.read(MAX_ADMIN_RESPONSE + 1), server)
        message = str(answer.get("error", f"HTTP {exc.code}"))
        if exc.code == 403 and "reasons" in answer:
            raise GateDeniedError(f"the server refused the rollback: {message}") from None
        raise BackendError(f"the server at {server} refused the rollback: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise BackendError(f"cannot reach the server at {server}: {exc}") from None


def _answer(data: bytes, server: str) -> dict[str, Any]:
    if len(data) > MAX_ADMIN_RESPONSE:
        raise BadInputError(f"the server at {server} answered more than 1 MiB")
    try:
        doc = loads_strict(data, what=f"answer of {server}")
    except BadInputError:
        return {"error": data[:200].decode("utf-8", "replace")}
    return doc if isinstance(doc, dict) else {"error": "not a JSON object"}
