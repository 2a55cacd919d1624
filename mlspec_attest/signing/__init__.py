"""Signing backends behind one Signer/Verifier protocol, and the cryptographic decisions.

Local keys (``keys``) sign raw bytes (:class:`Signer`); keyless Sigstore
(``sigstore``) returns the whole bundle (:class:`BundleSigner`); PKCS#11 can plug
in as either. One of each decision lives here: which keys and signature schemes
each path accepts (``schemes``, the registry every path asks), which PAE a DSSE
signature covers (``dsse_pae``: DSSE v1, or model-signing's legacy one), X.509
chains to a given root (``certificates``), and in ``sigstore`` the one verifier,
keyless signer and trust-root loader. Every check after signature verification
lives once, in :mod:`mlspec_attest.verify`.

May import: :mod:`mlspec_attest.digest`, :mod:`mlspec_attest.store`,
:mod:`mlspec_attest.formats`, :mod:`mlspec_attest.errors`.
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
