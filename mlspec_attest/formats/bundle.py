"""Sigstore bundle v0.3 carrying a DSSE envelope.

Every backend writes this one format. Local keys identify themselves with
``verificationMaterial.publicKey.hint`` (hex SHA-256 of the SPKI PEM); keyless
signing (:mod:`mlspec_attest.signing.sigstore.sign`) writes a certificate and
transparency-log entries in the same place, kept verbatim.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeAlias, runtime_checkable

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
        check_document(doc, what, dsse=True)
        envelope = Envelope.from_json(doc["dsseEnvelope"], what=f"{what}: dsseEnvelope")
        return cls(envelope, doc["verificationMaterial"], str(doc["mediaType"]))


# The members of a bundle and of what it holds (protobuf-specs: sigstore_bundle.proto,
# sigstore_common.proto, sigstore_rekor.proto, envelope.proto), as protobuf-JSON writes them.
# A member outside these is refused, as strict protobuf-JSON parsing and sigstore-python
# (its models forbid extra fields) refuse it: nothing unsigned is carried along unread.
# Two forms model-signing wrote are kept readable: a ``publicKey`` holding the key itself
# (``rawBytes``, ``keyDetails``: model-signing <= 1.0.1) and a signature ``keyid`` of null
# (protobuf-JSON reads null as the default). ``object`` means "typed by its reader".
_Member: TypeAlias = "type | tuple[type, ...] | dict[str, _Member] | list[_Member]"
# A certificate is read by decode_certificate (model-signing) or sigstore-python (keyless),
# which refuse, in their words, one that is not {"rawBytes": base64 DER}; beside its
# rawBytes, no other member is allowed.
_CERTIFICATE: dict[str, _Member] = {"rawBytes": object}
_INT64 = (str, int)  # protobuf-JSON writes an int64 as a string and reads either
_TLOG_ENTRY: dict[str, _Member] = {
    "logIndex": _INT64,
    "logId": {"keyId": str},
    "kindVersion": {"kind": str, "version": str},
    "integratedTime": _INT64,
    "inclusionPromise": {"signedEntryTimestamp": str},
    "inclusionProof": {
        "logIndex": _INT64,
        "rootHash": str,
        "treeSize": _INT64,
        "hashes": [str],
        "checkpoint": {"envelope": str},
    },
    "canonicalizedBody": str,
}
_MATERIAL: dict[str, _Member] = {
    "publicKey": {"hint": str, "rawBytes": object, "keyDetails": object},
    "x509CertificateChain": {"certificates": [_CERTIFICATE]},
    "certificate": _CERTIFICATE,
    "tlogEntries": [_TLOG_ENTRY],
    "timestampVerificationData": {"rfc3161Timestamps": [{"signedTimestamp": str}]},
}
_BUNDLE: dict[str, _Member] = {
    "mediaType": str,
    "verificationMaterial": _MATERIAL,
    "dsseEnvelope": {
        "payload": object,
        "payloadType": object,
        "signatures": [{"sig": object, "keyid": (str, type(None))}],
    },
    "messageSignature": {"messageDigest": {"algorithm": str, "digest": str}, "signature": object},
}


def check_document(doc: Any, what: str, *, dsse: bool = False) -> None:
    """The one check of a Sigstore bundle document, before anything reads it: a JSON
    object of a known ``mediaType`` (:data:`KNOWN_BUNDLE_MEDIA_TYPES`, those of
    sigstore-python), a DSSE envelope if ``dsse``, a ``verificationMaterial``, not
    both contents, and no member the bundle format does not define (see ``_BUNDLE``).

    Every reader of a bundle goes through it (:meth:`Bundle.from_json`, and
    ``verify_bundle`` for message signatures too). The material is not signed: anyone
    can change it in any bundle, so it is checked here whether or not a reader looks."""
    if not isinstance(doc, dict):
        raise MalformedDocumentError(f"{what}: expected a JSON object")
    media_type = doc.get("mediaType")
    if not isinstance(media_type, str) or media_type not in KNOWN_BUNDLE_MEDIA_TYPES:
        raise MalformedDocumentError(
            f"{what}: unsupported bundle mediaType {media_type!r}",
            remedy="expected one of " + ", ".join(KNOWN_BUNDLE_MEDIA_TYPES),
        )
    if dsse and "dsseEnvelope" not in doc:
        raise MalformedDocumentError(
            f"{what}: bundle carries no DSSE envelope (message signatures are not attestations)"
        )
    if not isinstance(doc.get("verificationMaterial"), dict):
        raise MalformedDocumentError(f"{what}: missing verificationMaterial")
    _check_members(doc, _BUNDLE, "", what)
    if "dsseEnvelope" in doc and "messageSignature" in doc:
        raise MalformedDocumentError(
            f"{what}: a bundle carries exactly one of dsseEnvelope or messageSignature"
        )


def _check_members(value: Any, spec: _Member, path: str, what: str) -> None:
    if spec is _CERTIFICATE and not (isinstance(value, dict) and "rawBytes" in value):
        return  # not a certificate at all: its reader says so
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise MalformedDocumentError(f"{what}: {path} is not an object")
        unknown = sorted(str(k) for k in value if k not in spec)
        if unknown:
            where = f"{path}: " if path else ""
            raise MalformedDocumentError(
                f"{what}: {where}unknown field(s) {unknown}",
                remedy="a Sigstore bundle holds only the fields its format defines",
            )
        for name, inner in spec.items():
            if name in value:
                _check_members(value[name], inner, f"{path}.{name}" if path else name, what)
    elif isinstance(spec, list):
        if not isinstance(value, list):
            raise MalformedDocumentError(f"{what}: {path} is not a list")
        for i, item in enumerate(value):
            _check_members(item, spec[0], f"{path}[{i}]", what)
    elif spec is not object and (isinstance(value, bool) or not isinstance(value, spec)):
        expected = "a number or text" if spec == _INT64 else "text"
        raise MalformedDocumentError(f"{what}: {path} is not {expected}")


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
