"""Reading user-supplied documents of any supported kind (for show/inspect)."""

from __future__ import annotations

from pathlib import Path

from mlspec_attest.policy.model import Policy


def read_policy_any(path: Path) -> tuple[Policy, str]:
    """(policy, digest) from YAML or from a signed policy envelope (signature not checked).

    The digest of a signed policy is that of its payload, the value stages bind to;
    for YAML it is the digest the payload will have once signed.
    """
    if path.suffix in (".yaml", ".yml"):
        from mlspec_attest.policy.load import load_policy_yaml

        policy = load_policy_yaml(path)
        return policy, policy.digest()
    from mlspec_attest.formats.jsonio import load_file
    from mlspec_attest.policy.signed import parse_signed_policy

    signed = parse_signed_policy(load_file(path), what=str(path))
    return signed.policy, signed.digest
