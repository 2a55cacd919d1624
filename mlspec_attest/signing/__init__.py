"""Signing backends behind one Signer/Verifier protocol.

Local keys (``keys``) sign raw bytes (:class:`Signer`); keyless Sigstore
(``sigstore``) returns the whole bundle (:class:`BundleSigner`); PKCS#11 can plug
in as either. Every check after signature verification lives once, in
:mod:`mlspec_attest.verify.pipeline`; ``sigstore_verify`` verifies any Sigstore bundle offline.
"""

from mlspec_attest.formats.bundle import BundleSigner
from mlspec_attest.formats.signer import PublicKeyVerifier, Signer
from mlspec_attest.signing.keys import (
    KeyType,
    LocalKeySigner,
    LocalPublicKey,
    generate_key,
    load_private_key,
    load_public_key,
)

__all__ = [
    "BundleSigner",
    "KeyType",
    "LocalKeySigner",
    "LocalPublicKey",
    "PublicKeyVerifier",
    "Signer",
    "generate_key",
    "load_private_key",
    "load_public_key",
]
