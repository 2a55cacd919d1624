"""Sigstore bundle v0.3 carrying a DSSE envelope.

Every backend writes this one format. Local keys identify themselves with
``verificationMaterial.publicKey.hint`` (hex SHA-256 of the SPKI PEM); keyless
signing (:mod:`mlspec_attest.signing.sigstore.sign`) writes a certificate and
transparency-log entries in the same place, kept verbatim.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from msgspec import Struct, field

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.dsse import Envelope
from mlspec_attest.formats.signer import Signer

BUNDLE_MEDIA_TYPE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
KNOWN_BUNDLE_MEDIA_TYPES = (
    BUNDLE_MEDIA_TYPE_V03,
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
)


class Bundle(Struct, frozen=True):
    """A Sigstore bundle whose content is a DSSE envelope."""

    envelope: Envelope
    verification_material: dict[str, Any] = field(default_factory=dict)
    media_type: str = BUNDLE_MEDIA_TYPE_V03

    @classmethod
    def for_public_key(cls, envelope: Envelope, keyid: str) -> Bundle:
        return cls(envelope, {"publicKey": {"hint": keyid}, "tlogEntries": []})

    @property
    def key_hint(self) -> str | None:
        """The ``publicKey.hint`` if this bundle was made with a local key."""
        pk = self.verification_material.get("publicKey")
        if isinstance(pk, dict) and isinstance(pk.get("hint"), str):
            return str(pk["hint"])
        return None

    @property
    def is_keyless(self) -> bool:
        """True if a certificate (Sigstore keyless) rather than a key signed this bundle."""
        vm = self.verification_material
        return "certificate" in vm or "x509CertificateChain" in vm

    def to_json(self) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "verificationMaterial": self.verification_material,
            "dsseEnvelope": self.envelope.to_json(),
        }

    @classmethod
    def from_json(cls, doc: Any, *, what: str = "bundle") -> Bundle:
        if not isinstance(doc, dict):
            raise MalformedDocumentError(f"{what}: expected a JSON object")
        media_type = doc.get("mediaType")
        if media_type not in KNOWN_BUNDLE_MEDIA_TYPES:
            raise MalformedDocumentError(f"{what}: unsupported bundle mediaType {media_type!r}")
        if "dsseEnvelope" not in doc:
            raise MalformedDocumentError(
                f"{what}: bundle carries no DSSE envelope (message signatures are not attestations)"
            )
        material = doc.get("verificationMaterial")
        if not isinstance(material, dict):
            raise MalformedDocumentError(f"{what}: missing verificationMaterial")
        check_material(material, what)
        envelope = Envelope.from_json(doc["dsseEnvelope"], what=f"{what}: dsseEnvelope")
        return cls(envelope, material, str(media_type))


_MATERIAL_OBJECTS = (
    "publicKey",
    "certificate",
    "x509CertificateChain",
    "timestampVerificationData",
)


def check_material(material: dict[str, Any], what: str) -> None:
    """Refuse a ``verificationMaterial`` whose members have the wrong JSON type (they are
    not signed: anyone can change them in any bundle), before anything reads them."""
    for name in _MATERIAL_OBJECTS:
        if name in material and not isinstance(material[name], dict):
            raise MalformedDocumentError(f"{what}: verificationMaterial.{name} is not an object")
    entries = material.get("tlogEntries", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise MalformedDocumentError(
            f"{what}: verificationMaterial.tlogEntries is not a list of objects"
        )
    hint = material.get("publicKey", {}).get("hint")
    if hint is not None and not isinstance(hint, str):
        raise MalformedDocumentError(f"{what}: verificationMaterial.publicKey.hint is not text")


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


def sign_to_bundle(
    payload: bytes, payload_type: str, signer: Signer | BundleSigner
) -> tuple[Bundle, str]:
    """Sign ``payload`` with any backend: (the bundle, the keyid naming its signer)."""
    if isinstance(signer, BundleSigner):
        return signer.sign_envelope(payload, payload_type), signer.keyid
    envelope = Envelope.sign(payload, payload_type, [signer], keyid_hint=False)
    keyid = signer.public_key.keyid
    return Bundle.for_public_key(envelope, keyid), keyid


def is_bundle(doc: Any) -> bool:
    return isinstance(doc, dict) and str(doc.get("mediaType", "")).startswith(
        "application/vnd.dev.sigstore.bundle"
    )
