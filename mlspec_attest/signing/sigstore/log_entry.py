"""Rekor v1 entry bodies: does the log entry record this bundle's signature, key and content?

sigstore-python 4.5 checks ``hashedrekord`` and ``dsse`` bodies of keyless bundles
itself; these checks cover what it does not: ``intoto`` 0.0.2 entries (cosign's
attestations) and the bodies of bundles signed with a managed key. They raise
sigstore's ``VerificationError`` so :mod:`._compat` reports them with sigstore's own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sigstore import errors as sigstore_errors

from mlspec_attest.errors import KeyLoadError
from mlspec_attest.signing.keys import LocalPublicKey, one_pem_block


def same_certificate(pem: bytes, cert: x509.Certificate) -> bool:
    """Is ``pem`` exactly one PEM certificate, ``cert``? (A second block is not ignored.)"""
    try:
        return (
            x509.load_pem_x509_certificate(one_pem_block(pem, "log entry", "certificate")) == cert
        )
    except (ValueError, KeyLoadError):
        return False


def same_key(pem: bytes, key: LocalPublicKey) -> bool:
    """Is ``pem`` exactly one PEM public key, ``key``? (A second block is not ignored.)"""
    try:
        named = serialization.load_pem_public_key(one_pem_block(pem, "log entry", "public key"))
    except (ValueError, TypeError, KeyLoadError):
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return named.public_bytes(der, spki) == key.key.public_bytes(der, spki)


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise sigstore_errors.VerificationError(f"log entry: {what} is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise sigstore_errors.VerificationError(f"log entry: {what} is not base64") from exc


def _entry_body(raw: bytes, kind: str, version: str) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise sigstore_errors.VerificationError("log entry body is not JSON") from exc
    if not isinstance(body, dict) or body.get("kind") != kind or body.get("apiVersion") != version:
        raise sigstore_errors.VerificationError(
            "log entry body does not match the entry's kind and version"
        )
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise sigstore_errors.VerificationError("log entry body has no spec")
    return spec


def check_intoto_body(
    raw: bytes,
    payload_type: str,
    payload: bytes,
    signature: bytes,
    verifier_ok: Callable[[bytes], bool],
) -> None:
    """Rekor intoto 0.0.2: the entry records the same single signature, by the same
    verifier, over a payload with the same hash."""
    spec = _entry_body(raw, "intoto", "0.0.2")
    content = spec.get("content")
    envelope = content.get("envelope") if isinstance(content, dict) else None
    if not isinstance(content, dict) or not isinstance(envelope, dict):
        raise sigstore_errors.VerificationError("intoto entry has no envelope")
    sigs = envelope.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        raise sigstore_errors.VerificationError("intoto entry: signature count mismatch")
    # Rekor stores the signature and the verifier base64 encoded once more.
    try:
        recorded = _b64(_b64(sigs[0].get("sig"), "signature").decode("ascii"), "signature")
    except (sigstore_errors.VerificationError, UnicodeDecodeError):
        recorded = b""
    if recorded != signature:
        raise sigstore_errors.VerificationError("intoto entry: signature mismatch")
    if not verifier_ok(_b64(sigs[0].get("publicKey"), "verifier")):
        raise sigstore_errors.VerificationError("intoto entry: signed by another verifier")
    if envelope.get("payloadType") not in (None, payload_type):
        raise sigstore_errors.VerificationError("intoto entry: payloadType mismatch")
    payload_hash = content.get("payloadHash")
    if (
        not isinstance(payload_hash, dict)
        or payload_hash.get("algorithm") != "sha256"
        or payload_hash.get("value") != hashlib.sha256(payload).hexdigest()
    ):
        raise sigstore_errors.VerificationError("intoto entry: payload hash mismatch")


def check_key_entry_body(
    envelope: Any,
    log: Any,
    key: LocalPublicKey,
    signature: bytes,
    artifact_digest: bytes | None,
) -> None:
    kind, version = log.kind_version.kind, log.kind_version.version
    raw: bytes = log.canonicalized_body
    mismatch = sigstore_errors.VerificationError(
        "the log entry is inconsistent with the bundle (another signature, key or artifact)"
    )
    if (kind, version) == ("hashedrekord", "0.0.1"):
        spec = _entry_body(raw, kind, version)
        data, sig = spec.get("data"), spec.get("signature")
        if envelope is not None or not isinstance(data, dict) or not isinstance(sig, dict):
            raise mismatch
        digest = data.get("hash")
        public = sig.get("publicKey")
        if (
            not isinstance(digest, dict)
            or digest.get("algorithm") != "sha256"
            or artifact_digest is None
            or digest.get("value") != artifact_digest.hex()
            or _b64(sig.get("content"), "signature") != signature
            or not isinstance(public, dict)
            or not same_key(_b64(public.get("content"), "public key"), key)
        ):
            raise mismatch
    elif (kind, version) == ("dsse", "0.0.1"):
        spec = _entry_body(raw, kind, version)
        sigs = spec.get("signatures")
        payload_hash = spec.get("payloadHash")
        if (
            envelope is None
            or not isinstance(sigs, list)
            or len(sigs) != 1
            or not isinstance(sigs[0], dict)
            or _b64(sigs[0].get("signature"), "signature") != signature
            or not same_key(_b64(sigs[0].get("verifier"), "verifier"), key)
            or not isinstance(payload_hash, dict)
            or payload_hash.get("algorithm") != "sha256"
            or payload_hash.get("value") != hashlib.sha256(envelope.payload).hexdigest()
        ):
            raise mismatch
    elif (kind, version) == ("intoto", "0.0.2"):
        if envelope is None:
            raise mismatch
        check_intoto_body(
            raw, envelope.payload_type, envelope.payload, signature, lambda pem: same_key(pem, key)
        )
    else:
        # Rekor v2 entries of key bundles need a signed timestamp, which no test instance
        # here provides; refuse rather than accept unexercised code.
        raise sigstore_errors.VerificationError(
            f"log entry type {kind}/{version} is not supported for key bundles"
        )
