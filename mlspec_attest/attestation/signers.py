"""Who signs a stage: a local private key, a signer object, or Sigstore keyless.

The one place a stage's signer is built, for ``mlspec-attest sign`` and the
Python API alike. Which options a front end takes, and how it spells them
(``--key``/``--sigstore`` or ``key=``), stay with the front end; the decisions
live here:

* a key path (or ``MLSPEC_ATTEST_KEY`` when none is given) is a PEM private key,
  decrypted with the passphrase if one is given;
* a :class:`~mlspec_attest.formats.signer.Signer` or
  :class:`~mlspec_attest.formats.bundle.BundleSigner` object signs as it is;
* :class:`KeylessOptions` sign keyless: a Fulcio certificate for the OIDC
  identity, the signature logged in Rekor (checked before any work starts).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from msgspec import Struct

from mlspec_attest.errors import UsageError
from mlspec_attest.formats.bundle import BundleSigner
from mlspec_attest.formats.signer import Signer
from mlspec_attest.signing.keys import load_private_key

KEY_ENV = "MLSPEC_ATTEST_KEY"
"""The private key file a stage signs with when none is named."""

StageSigner = Signer | BundleSigner
"""Anything :func:`~mlspec_attest.attestation.stage.sign_stage` signs with."""


class KeylessOptions(Struct, frozen=True):
    """Sign keyless with Sigstore.

    ``identity_token``: the OIDC token (default: ``SIGSTORE_ID_TOKEN``, else ambient
    CI credentials); ``trust_config``: a ClientTrustConfig naming the instance
    (default: public-good production); ``staging``: the public-good staging instance.
    """

    identity_token: str | None = None
    trust_config: Path | None = None
    staging: bool = False


def stage_signer(
    key: str | os.PathLike[str] | StageSigner | None = None,
    *,
    passphrase: bytes | None = None,
    keyless: KeylessOptions | None = None,
) -> StageSigner:
    """The signer of a stage: ``keyless`` if given, else ``key`` (a path or a signer object),
    else the key file named by ``MLSPEC_ATTEST_KEY``."""
    if keyless is not None:
        # Start-up: a stage signed with a key loads no Sigstore client code.
        from mlspec_attest.signing.sigstore.sign import SigstoreSigner

        return SigstoreSigner.create(
            identity_token=keyless.identity_token,
            trust_config=keyless.trust_config,
            staging=keyless.staging,
        )
    if key is None:
        env = os.environ.get(KEY_ENV)
        if not env:
            raise UsageError("no signing key", remedy=f"pass key=... or set {KEY_ENV}")
        key = env
    if isinstance(key, str | os.PathLike):
        return load_private_key(Path(key), passphrase=passphrase)
    return key


def signer_summary(signer: StageSigner) -> dict[str, Any]:
    """Who signed, for a sign result: the keyid, and a keyless signer's identity and instance."""
    if not isinstance(signer, BundleSigner):
        return {"keyid": signer.public_key.keyid}
    out: dict[str, Any] = {"keyid": signer.keyid}
    signed_as = getattr(signer, "signed_as", None)
    if signed_as is not None:
        out["sigstore"] = {
            "identity": signed_as.primary,
            "issuer": signed_as.issuer,
            "instance": getattr(signer, "source", ""),
        }
    return out
