"""Sigstore bundles signed with a key (``publicKey.hint``): the signature, then, under a trust root, the log entry.

The signature is checked with the key the caller gives, under the schemes the
registry accepts for key bundles (:attr:`~mlspec_attest.signing.schemes.Use.KEY_BUNDLE`).
When a trust root is given too, the bundle's transparency-log entry (inclusion
proof, checkpoint, promise), signed times and entry body are verified as well
(:func:`._compat.verify_key_transparency`); bundles written by ``mlspec-attest
sign --key`` carry no log entry and verify without sigstore-python.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from mlspec_attest.errors import MalformedDocumentError, SigstoreVerificationError, UsageError
from mlspec_attest.formats.dsse import Envelope, b64decode_strict
from mlspec_attest.formats.inputs import named
from mlspec_attest.signing import schemes
from mlspec_attest.signing.dsse_pae import signed_pae
from mlspec_attest.signing.keys import LocalPublicKey
from mlspec_attest.signing.schemes import Use
from mlspec_attest.signing.sigstore.result import SignedTime, VerifiedBundle
from mlspec_attest.signing.sigstore.subject import check_subject
from mlspec_attest.signing.sigstore.trust_root import TrustRoot


def verify_with_key(
    doc: dict[str, Any],
    key: LocalPublicKey,
    trust: TrustRoot | None,
    artifact_sha256: str | None,
    now: datetime,
    what: str,
    artifact_is_file: bool = True,
) -> VerifiedBundle:
    """Verify the key bundle ``doc`` with ``key`` (and its log entry under ``trust``, if given).

    ``artifact_is_file``: see :func:`.subject.check_subject`."""
    if ("dsseEnvelope" in doc) == ("messageSignature" in doc):
        raise MalformedDocumentError(
            f"{what}: a bundle carries exactly one of dsseEnvelope or messageSignature"
        )
    payload_type: str | None = None
    payload: bytes | None = None
    if "dsseEnvelope" in doc:
        signature, payload_type, payload = _dsse_signature(doc, key, what)
        check_subject(
            payload_type, payload, artifact_sha256, what, artifact_is_file=artifact_is_file
        )
    else:
        signature = _message_signature(doc, key, artifact_sha256, what)
    entries = doc["verificationMaterial"].get("tlogEntries") or []
    times: tuple[SignedTime, ...] = ()
    if trust is not None:
        times = _logged_times(doc, entries, trust, key, signature, artifact_sha256, now, what)
    return VerifiedBundle(
        "key",
        payload_type,
        payload,
        keyid=key.keyid,
        times=times,
        log_entries=len(entries) if trust is not None else 0,
        notes=() if trust is not None else _unchecked(doc["verificationMaterial"]),
    )


def _unchecked(material: dict[str, Any]) -> tuple[str, ...]:
    """What a key bundle carries that only a trust root could check: said, never passed over."""
    entries = len(material.get("tlogEntries") or [])
    stamps = len((material.get("timestampVerificationData") or {}).get("rfc3161Timestamps") or [])
    notes = []
    if entries:
        notes.append(
            f"{entries} transparency-log entr{'y' if entries == 1 else 'ies'} "
            "not checked (no trust root given)"
        )
    if stamps:
        notes.append(
            f"{stamps} signed timestamp{'' if stamps == 1 else 's'} not checked (no trust root given)"
        )
    return tuple(notes)


def _dsse_signature(
    doc: dict[str, Any], key: LocalPublicKey, what: str
) -> tuple[bytes, str, bytes]:
    """The envelope's one signature, checked over the DSSE PAE; and what it signed."""
    envelope = Envelope.from_json(doc["dsseEnvelope"], what=f"{what}: dsseEnvelope")
    if len(envelope.signatures) != 1:
        raise SigstoreVerificationError(
            f"{what}: expected one DSSE signature, found {len(envelope.signatures)}"
        )
    signature = envelope.signatures[0].sig
    if (
        signed_pae(key.key, signature, envelope.payload_type, envelope.payload, Use.KEY_BUNDLE)
        is None
    ):
        raise SigstoreVerificationError(
            f"{what}: the DSSE signature does not verify under key {key.keyid[:16]}",
            remedy="the bundle was altered, or another key signed it",
        )
    return signature, envelope.payload_type, envelope.payload


def _logged_times(
    doc: dict[str, Any],
    entries: list[Any],
    trust: TrustRoot,
    key: LocalPublicKey,
    signature: bytes,
    artifact_sha256: str | None,
    now: datetime,
    what: str,
) -> tuple[SignedTime, ...]:
    if not entries:
        raise SigstoreVerificationError(
            f"{what}: a trust root was given, but the bundle has no transparency-log entry",
            remedy=f"this key bundle was never logged; verify it with {named('key')} alone",
        )
    # sigstore-python is optional for key bundles: loaded only when a log entry is checked.
    from mlspec_attest.signing.sigstore import _compat

    return _compat.verify_key_transparency(
        json.dumps(doc),
        trust,
        key,
        signature,
        bytes.fromhex(artifact_sha256) if artifact_sha256 else None,
        now,
        what,
    )


def _message_signature(
    doc: dict[str, Any], key: LocalPublicKey, artifact_sha256: str | None, what: str
) -> bytes:
    """The message signature, checked over the artifact's sha256 digest."""
    raw = doc["messageSignature"]
    if not isinstance(raw, dict):
        raise MalformedDocumentError(f"{what}: messageSignature is not an object")
    signature = b64decode_strict(raw.get("signature"), f"{what}: messageSignature.signature")
    if artifact_sha256 is None:
        raise UsageError(
            f"{what}: a message signature covers an artifact; pass it",
            remedy=f"{named('artifact')} FILE or {named('digest')} sha256:HEX",
        )
    digest = raw.get("messageDigest")
    if digest is not None:
        if not isinstance(digest, dict):
            raise MalformedDocumentError(f"{what}: messageDigest is not an object")
        try:
            recorded = base64.b64decode(str(digest.get("digest", "")), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedDocumentError(f"{what}: messageDigest is not base64") from exc
        if digest.get("algorithm") != "SHA2_256" or recorded.hex() != artifact_sha256:
            raise SigstoreVerificationError(
                f"{what}: the bundle's message digest is not the artifact's sha256",
                remedy="this bundle signs another artifact",
            )
    digest_bytes = bytes.fromhex(artifact_sha256)
    if not schemes.verify(key.key, signature, digest_bytes, Use.KEY_BUNDLE, prehashed=True):
        raise SigstoreVerificationError(
            f"{what}: the signature does not verify over sha256 {artifact_sha256} "
            f"under key {key.keyid[:16]}",
            remedy="the artifact or the bundle was altered, or another key signed it",
        )
    return signature
