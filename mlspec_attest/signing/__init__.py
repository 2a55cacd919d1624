"""Signing backends behind one Signer/Verifier protocol.

Local keys (``keys``) are the first backend; keyless Sigstore and PKCS#11 plug in
behind the same protocol so that every check after signature verification lives
once, in :mod:`mlspec_attest.verify`.
"""

from .base import PublicKeyVerifier, Signer
from .keys import (
    KeyType,
    LocalKeySigner,
    LocalPublicKey,
    generate_key,
    load_private_key,
    load_public_key,
)

__all__ = [
    "KeyType",
    "LocalKeySigner",
    "LocalPublicKey",
    "PublicKeyVerifier",
    "Signer",
    "generate_key",
    "load_private_key",
    "load_public_key",
]
