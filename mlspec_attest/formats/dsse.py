"""DSSE (Dead Simple Signing Envelope) v1: PAE, signing and the JSON envelope."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

from msgspec import Struct

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.limits import MAX_DSSE_PAYLOAD_BYTES, MAX_DSSE_SIGNATURES, format_size
from mlspec_attest.formats.signer import PublicKeyVerifier, Signer

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
_URLSAFE_B64 = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: the exact bytes that get signed."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def b64decode_strict(value: Any, what: str, *, max_bytes: int | None = None) -> bytes:
    """Decode standard or URL-safe base64, refusing any other character and, when
    ``max_bytes`` is given, more decoded bytes than that (checked before decoding)."""
    if not isinstance(value, str):
        raise MalformedDocumentError(f"{what}: expected a base64 string")
    if max_bytes is not None and len(value) > (max_bytes + 2) // 3 * 4:
        raise MalformedDocumentError(f"{what}: larger than {format_size(max_bytes)} once decoded")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        # DSSE allows URL-safe base64 too, but only its alphabet: no silent skipping.
        if not _URLSAFE_B64.fullmatch(value):
            raise MalformedDocumentError(f"{what}: not valid base64") from exc
        try:
            return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raise MalformedDocumentError(f"{what}: not valid base64") from exc


class EnvelopeSignature(Struct, frozen=True):
    """One DSSE signature; ``keyid`` is a hint only and never trusted."""

    sig: bytes
    keyid: str = ""


class Envelope(Struct, frozen=True):
    """A DSSE envelope."""

    payload: bytes
    payload_type: str
    signatures: tuple[EnvelopeSignature, ...]

    @classmethod
    def sign(
        cls,
        payload: bytes,
        payload_type: str,
        signers: Iterable[Signer],
        *,
        keyid_hint: bool = True,
    ) -> Envelope:
        message = pae(payload_type, payload)
        sigs = tuple(
            EnvelopeSignature(s.sign(message), s.public_key.keyid if keyid_hint else "")
            for s in signers
        )
        return cls(payload, payload_type, sigs)

    def verified_by(self, key: PublicKeyVerifier) -> bool:
        """True if any signature in the envelope verifies under ``key``."""
        message = pae(self.payload_type, self.payload)
        return any(key.verify(s.sig, message) for s in self.signatures)

    def to_json(self) -> dict[str, Any]:
        return {
            "payload": base64.b64encode(self.payload).decode(),
            "payloadType": self.payload_type,
            "signatures": [
                {"sig": base64.b64encode(s.sig).decode(), "keyid": s.keyid} for s in self.signatures
            ],
        }

    @classmethod
    def from_json(cls, doc: Any, *, what: str = "DSSE envelope") -> Envelope:
        if not isinstance(doc, dict):
            raise MalformedDocumentError(f"{what}: expected a JSON object")
        unknown = set(doc) - {"payload", "payloadType", "signatures"}
        if unknown:
            raise MalformedDocumentError(f"{what}: unknown field(s) {sorted(unknown)}")
        payload_type = doc.get("payloadType")
        if not isinstance(payload_type, str) or not payload_type:
            raise MalformedDocumentError(f"{what}: missing payloadType")
        payload = b64decode_strict(
            doc.get("payload"), f"{what}: payload", max_bytes=MAX_DSSE_PAYLOAD_BYTES
        )
        raw_sigs = doc.get("signatures")
        if not isinstance(raw_sigs, list) or not raw_sigs:
            raise MalformedDocumentError(f"{what}: no signatures")
        if len(raw_sigs) > MAX_DSSE_SIGNATURES:
            raise MalformedDocumentError(
                f"{what}: {len(raw_sigs)} signatures, more than the {MAX_DSSE_SIGNATURES} allowed"
            )
        sigs = []
        for i, raw in enumerate(raw_sigs):
            if not isinstance(raw, dict):
                raise MalformedDocumentError(f"{what}: signature {i} is not an object")
            keyid = raw.get("keyid") or ""
            if not isinstance(keyid, str):
                raise MalformedDocumentError(f"{what}: signature {i} keyid is not a string")
            sigs.append(
                EnvelopeSignature(b64decode_strict(raw.get("sig"), f"{what}: sig {i}"), keyid)
            )
        return cls(payload, payload_type, tuple(sigs))
