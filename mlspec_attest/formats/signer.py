"""The protocols every signing backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class PublicKeyVerifier(Protocol):
    """The public half: identifies itself and checks signatures."""

    @property
    def keyid(self) -> str:
        """Stable identifier: hex SHA-256 of the SPKI PEM text (model-signing's ``hint``)."""
        ...

    @property
    def key_details(self) -> str:
        """Sigstore ``PublicKeyDetails`` name, e.g. ``PKIX_ED25519``."""
        ...

    def pem(self) -> str:
        """The SPKI PEM text."""
        ...

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True if ``signature`` is valid over ``data``; never raises for a bad signature."""
        ...


class Signer(Protocol):
    """Signs bytes with a private key it keeps opaque."""

    @property
    def public_key(self) -> PublicKeyVerifier: ...

    def sign(self, data: bytes) -> bytes: ...
