"""The functionaries' private keys an export re-signs legacy links with.

A legacy in-toto link is signed by the functionary itself, so ``export intoto``
needs their private keys: named ones (``NAME=KEYFILE``) must be the key the
policy lists for that functionary, and a directory contributes every key that
belongs to some functionary of the policy (others are skipped).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mlspec_attest.errors import UsageError
from mlspec_attest.formats.inputs import named
from mlspec_attest.policy.model import Policy
from mlspec_attest.signing.keys import LocalKeySigner, load_private_key


def functionary_signers(
    policy: Policy, key_files: Mapping[str, str | Path], key_dir: Path | None
) -> list[LocalKeySigner]:
    """Private keys from ``key_files`` (functionary -> key file, checked against the
    policy) and from the ``*.key`` files of ``key_dir`` that belong to a functionary."""
    signers = [_named_signer(policy, name, path) for name, path in key_files.items()]
    if key_dir is not None:
        if not key_dir.is_dir():
            raise UsageError(f"{named('functionary_key_dir')} {key_dir} is not a directory")
        known = {f.keyid for f in policy.functionaries.values()}
        for key_file in sorted(key_dir.glob("*.key")):
            signer = load_private_key(key_file)
            if signer.public_key.keyid in known:
                signers.append(signer)
    return signers


def _named_signer(policy: Policy, name: str, path: str | Path) -> LocalKeySigner:
    functionary = policy.functionaries.get(name)
    if functionary is None:
        raise UsageError(
            f"{named('functionary_key', name=name)}: the policy has no functionary {name!r}",
            remedy="functionaries: " + ", ".join(sorted(policy.functionaries)),
        )
    signer = load_private_key(Path(path))
    if signer.public_key.keyid != functionary.keyid:
        raise UsageError(
            f"{named('functionary_key_path', name=name, path=path)}: "
            f"not the key the policy lists for {name!r}",
            remedy=f"expected the private key of public key {functionary.keyid[:16]}",
        )
    return signer
