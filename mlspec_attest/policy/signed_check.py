"""A signed policy checked by itself, before it is handed out (``policy verify``).

What ``verify`` checks of the policy before it looks at any attestation, and what it
would say about the payload if it were linted again: signed by every owner key given
(:meth:`SignedPolicy.unsigned_by`, the one signature rule ``verify`` uses), not expired
(and a warning when it soon will be), its embedded functionary keys well-formed and its
content lint-clean (the payload compiled again: an error already refused it at parsing,
warnings are kept). No store, no run: a wrong owner key is named as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from msgspec import Struct

from mlspec_attest.errors import UsageError
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.signer import PublicKeyVerifier
from mlspec_attest.policy.compiler import compile_policy
from mlspec_attest.policy.problems import Problem, expiry_problems
from mlspec_attest.policy.signed import SignedPolicy


class SignedPolicyCheck(Struct, frozen=True):
    """What :func:`check_signed_policy` found."""

    digest: str
    signed_by: tuple[str, ...]
    """Key ids of the owner keys with a valid signature."""
    expires: datetime
    problems: tuple[Problem, ...]

    @property
    def passed(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)


def check_signed_policy(
    signed: SignedPolicy, owner_keys: Sequence[PublicKeyVerifier], now: datetime
) -> SignedPolicyCheck:
    """Check ``signed`` alone against its owners' keys at ``now``."""
    if not owner_keys:
        raise UsageError(f"at least one {named('policy_key')} is required to check a policy")
    unsigned = signed.unsigned_by(owner_keys)
    count = len(signed.envelope.signatures)
    problems = [
        Problem(
            f"not signed by owner key {key.keyid[:16]}: {count} signature(s), none valid for "
            "that key (a wrong key, or a policy changed after it was signed)",
            path="signatures",
            code="policy-signature",
        )
        for key in unsigned
    ]
    problems += expiry_problems(signed.policy.expires, now)
    _, lint = compile_policy(signed.document, base_dir=None)
    problems += lint
    missing = {k.keyid for k in unsigned}
    signed_by = tuple(k.keyid for k in owner_keys if k.keyid not in missing)
    return SignedPolicyCheck(signed.digest, signed_by, signed.policy.expires, tuple(problems))
