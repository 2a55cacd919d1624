"""The protocols every signing backend implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from mlspec_attest.formats.bundle import Bundle


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


@runtime_checkable
class BundleSigner(Protocol):
    """A backend that signs a whole DSSE envelope and returns its Sigstore bundle.

    Keyless Sigstore is one: the certificate and the transparency-log entry come
    with the signature, so the backend, not the caller, writes the verification
    material. Use :func:`mlspec_attest.formats.bundle.sign_to_bundle` to sign with either kind.
    """

    @property
    def keyid(self) -> str:
        """Hex id naming the signer in the store (one file per stage and signer)."""
        ...

    def sign_envelope(self, payload: bytes, payload_type: str) -> Bundle: ...
