"""Which pre-authentication encoding (PAE) a DSSE signature covers: DSSE v1, or model-signing's legacy one.

model-signing releases before 1.0 signed a malformed PAE (``DSSEV1 … b'<payload>'``,
the payload as a Python bytes repr, hashed with SHA-256 whatever the curve). Only
model-signing signatures may use it (:attr:`~.schemes.Use.OMS`); every other
DSSE signature must cover the DSSE v1 PAE.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, pae
from mlspec_attest.signing import schemes
from mlspec_attest.signing.schemes import Use

PAE_DSSE = "dsse-v1"
PAE_LEGACY = "legacy-v0.2"


def legacy_pae(payload: bytes) -> bytes:
    """The PAE model-signing v0.2 signed: its bytes payload formatted as a Python repr."""
    t = INTOTO_PAYLOAD_TYPE
    return f"DSSEV1 {len(t)} {t} {len(payload)} {payload!r}".encode()


def signed_pae(
    key: PublicKeyTypes, signature: bytes, payload_type: str, payload: bytes, use: Use
) -> str | None:
    """Which PAE ``signature`` covers (``dsse-v1``, or ``legacy-v0.2`` for model-signing), or None."""
    if schemes.verify(key, signature, pae(payload_type, payload), use):
        return PAE_DSSE
    if use is Use.OMS and schemes.verify(key, signature, legacy_pae(payload), Use.OMS_LEGACY):
        return PAE_LEGACY
    return None
