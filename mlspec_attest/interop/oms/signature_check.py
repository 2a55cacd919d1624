"""The signature step of model verification: a model-signing bundle checked under one trust.

:func:`verify_signature` returns the signed payload, or the problems that deny it;
it raises :class:`~mlspec_attest.errors.MalformedDocumentError` (exit 3) for a
bundle that is not a model-signing signature and
:class:`~mlspec_attest.errors.BackendError` (exit 4) when Sigstore support is
missing. Key and certificate signatures are checked with the registry's OMS
schemes (:func:`mlspec_attest.signing.dsse_pae.signed_pae`); Sigstore signatures by
the one Sigstore verifier (:func:`mlspec_attest.signing.sigstore.verify.verify_bundle`),
so they are refused for exactly what ``bundle verify`` refuses.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from msgspec import Struct, field

from mlspec_attest.errors import (
    MalformedDocumentError,
    SigstoreVerificationError,
    UsageError,
    missing,
)
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.interop.oms.manifest import Problem
from mlspec_attest.interop.oms.trust import CertificateTrust, KeyTrust, OmsTrust, SigstoreTrust
from mlspec_attest.signing import schemes
from mlspec_attest.signing.certificates import (
    ChainProblem,
    decode_certificate,
    fingerprint,
    verify_chain,
)
from mlspec_attest.signing.dsse_pae import PAE_DSSE, signed_pae
from mlspec_attest.signing.keys import LocalPublicKey, one_pem_block
from mlspec_attest.signing.schemes import Use
from mlspec_attest.signing.sigstore.identity import SigstoreIdentity
from mlspec_attest.signing.sigstore.trust_root import TrustRoot
from mlspec_attest.signing.sigstore.verify import verify_bundle


class SignatureCheck(Struct, frozen=True):
    """The outcome of the signature step: the signed payload, or why there is none."""

    method: str
    signer: dict[str, Any]
    payload: bytes | None = None
    pae: str | None = None
    problems: tuple[Problem, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def verified(self) -> bool:
        return self.payload is not None and not self.problems


def verify_signature(signature: Path, trust: OmsTrust) -> SignatureCheck:
    """Check the bundle at ``signature`` under ``trust``; return the signed payload if valid.

    Raises :class:`MalformedDocumentError` for an unreadable bundle and
    :class:`BackendError` when Sigstore support is not installed; every
    trust failure is returned as a problem.
    """
    if isinstance(trust, KeyTrust):
        return _verify_key(_read_bundle(signature), trust)
    if isinstance(trust, CertificateTrust):
        return _verify_certificate(_read_bundle(signature), trust)
    return _verify_sigstore(signature, trust)


def _read_bundle(path: Path) -> Bundle:
    doc = load_file(path, what=f"signature {path}")
    bundle = Bundle.from_json(doc, what=f"signature {path}")
    if bundle.envelope.payload_type != INTOTO_PAYLOAD_TYPE:
        raise MalformedDocumentError(
            f"signature {path}: DSSE payloadType {bundle.envelope.payload_type!r} "
            f"is not {INTOTO_PAYLOAD_TYPE}"
        )
    if len(bundle.envelope.signatures) != 1:
        raise MalformedDocumentError(
            f"signature {path}: expected one DSSE signature, found "
            f"{len(bundle.envelope.signatures)}"
        )
    return bundle


# --- key -----------------------------------------------------------------------------------------


def _named_key(raw: object) -> Any:
    """The public key ``publicKey.rawBytes`` carries (base64 of PEM or DER)."""
    try:
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
        if b"-----BEGIN" in data:
            one = one_pem_block(data, "signature: publicKey.rawBytes", "public key")
            return serialization.load_pem_public_key(one)
        return serialization.load_der_public_key(data)
    except (binascii.Error, ValueError, UnsupportedAlgorithm) as exc:
        raise MalformedDocumentError(
            "signature: publicKey.rawBytes is not a base64 public key"
        ) from exc


def _key_hint_problem(expected: str, found: str, message: str) -> list[Problem]:
    return [
        Problem(
            "key-hint",
            message,
            expected=expected,
            found=found,
            remedy="verify with the public key that signed the model",
        )
    ]


def _key_material_problems(bundle: Bundle, trust: KeyTrust) -> tuple[list[Problem], list[str]]:
    material = bundle.verification_material.get("publicKey")
    if material is None:
        return [], ["the bundle names no public key; checked with the key given"]
    if not isinstance(material, dict):
        raise MalformedDocumentError("signature: verificationMaterial.publicKey is not an object")
    expected = trust.key.keyid
    hint = material.get("hint")
    if hint is not None:
        if not isinstance(hint, str):
            raise MalformedDocumentError("signature: publicKey.hint is not a string")
        if hint.lower() != expected:
            message = "the signature names a different public key than the one given"
            return _key_hint_problem(expected, hint, message), []
        return [], []
    raw = material.get("rawBytes")
    if raw is None:
        return [], ["the bundle's publicKey carries no hint; checked with the key given"]
    named = _named_key(raw)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if named.public_bytes(der, spki) != trust.key.key.public_bytes(der, spki):
        found = LocalPublicKey.from_pem(named.public_bytes(serialization.Encoding.PEM, spki))
        message = "the signature's publicKey.rawBytes is a different key than the one given"
        return _key_hint_problem(expected, found.keyid, message), []
    return [], ["older signature format: publicKey.rawBytes instead of publicKey.hint"]


def _verify_key(bundle: Bundle, trust: KeyTrust) -> SignatureCheck:
    signer = trust.describe()
    problems, notes = _key_material_problems(bundle, trust)
    if problems:
        return SignatureCheck("key", signer, problems=tuple(problems))
    envelope = bundle.envelope
    sig = envelope.signatures[0].sig
    used = signed_pae(trust.key.key, sig, envelope.payload_type, envelope.payload, Use.OMS)
    if used is None:
        problem = Problem(
            "signature",
            "the DSSE signature does not verify under the public key given",
            expected=f"a signature by key {trust.key.keyid}",
            remedy="the signature or its payload was altered, or another key signed it",
        )
        return SignatureCheck("key", signer, problems=(problem,))
    return SignatureCheck("key", signer, envelope.payload, used, notes=tuple(notes))


# --- certificate ---------------------------------------------------------------------------------


def _bundle_certificates(bundle: Bundle) -> list[Any]:
    material = bundle.verification_material
    raws: Any
    if "x509CertificateChain" in material:
        chain = material["x509CertificateChain"]
        raws = chain.get("certificates") if isinstance(chain, dict) else None
        if not isinstance(raws, list) or not raws:
            raise MalformedDocumentError("signature: x509CertificateChain has no certificates")
    elif "certificate" in material:
        raws = [material["certificate"]]
    else:
        raise MalformedDocumentError(
            "signature: the bundle carries no certificate",
            remedy=f"verify a key-signed model with {named('public_key')}",
        )
    certs = []
    for i, raw in enumerate(raws):
        try:
            certs.append(decode_certificate(raw.get("rawBytes") if isinstance(raw, dict) else None))
        except ValueError as exc:
            raise MalformedDocumentError(f"signature: certificate {i} is not valid DER") from exc
    return certs


def _verify_certificate(bundle: Bundle, trust: CertificateTrust) -> SignatureCheck:
    certs = _bundle_certificates(bundle)
    leaf = certs[0]
    signer: dict[str, Any] = {
        "method": "certificate",
        "subject": leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "sha256": fingerprint(leaf),
    }

    def deny(check: str, message: str, **kw: str | None) -> SignatureCheck:
        return SignatureCheck("certificate", signer, problems=(Problem(check, message, **kw),))

    path = verify_chain(leaf, certs[1:], trust.certificates)
    if isinstance(path, ChainProblem):
        return deny(
            path.check, path.message, expected=path.expected, found=path.found, remedy=path.remedy
        )
    signer["root"] = {"subject": path[-1].subject.rfc4514_string(), "sha256": fingerprint(path[-1])}
    key = leaf.public_key()
    if not schemes.accepts(key, Use.OMS):
        return deny(
            "signature",
            f"the signing certificate holds a {type(key).__name__}; model-signing uses ECDSA",
        )
    envelope = bundle.envelope
    used = signed_pae(
        key, envelope.signatures[0].sig, envelope.payload_type, envelope.payload, Use.OMS
    )
    if used is None:
        return deny(
            "signature",
            "the DSSE signature does not verify under the signing certificate's key",
            remedy="the signature or its payload was altered",
        )
    return SignatureCheck("certificate", signer, envelope.payload, used)


# --- Sigstore ------------------------------------------------------------------------------------


def _claimed_digest(doc: Any) -> str | None:
    """The sha256 a message-signature bundle says it signs (hex), if it says so."""
    raw = doc.get("messageSignature") if isinstance(doc, dict) else None
    digest = raw.get("messageDigest") if isinstance(raw, dict) else None
    if not isinstance(digest, dict) or digest.get("algorithm") != "SHA2_256":
        return None
    with contextlib.suppress(binascii.Error, ValueError):
        value = base64.b64decode(str(digest.get("digest", "")), validate=True)
        return value.hex() if len(value) == 32 else None
    return None


def _leaf_fingerprint(doc: Any) -> str | None:
    material = doc.get("verificationMaterial") if isinstance(doc, dict) else None
    if not isinstance(material, dict):
        return None
    chain = material.get("x509CertificateChain")
    raws = chain.get("certificates") if isinstance(chain, dict) else None
    raw = material.get("certificate") or (raws[0] if isinstance(raws, list) and raws else None)
    with contextlib.suppress(ValueError):
        return fingerprint(
            decode_certificate(raw.get("rawBytes") if isinstance(raw, dict) else None)
        )
    return None


def _require_sigstore() -> None:
    # Say what needed it: verify_bundle's own message would name bundles, not models.
    try:
        import sigstore.verify  # noqa: F401
    except ImportError as exc:
        raise missing("sigstore", "verifying Sigstore model signatures", exc) from exc


def _verify_sigstore(signature: Path, trust: SigstoreTrust) -> SignatureCheck:
    _require_sigstore()
    what = f"signature {signature}"
    doc = load_file(signature, what=what)
    root = TrustRoot.from_file(trust.trust_config)
    signer = trust.describe()
    leaf = _leaf_fingerprint(doc)
    if leaf is not None:
        signer["certificate"] = {"sha256": leaf}
    try:
        rule = SigstoreIdentity(trust.issuer, identity=trust.identity)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    claimed = _claimed_digest(doc)
    if isinstance(doc, dict) and "messageSignature" in doc and claimed is None:
        raise MalformedDocumentError(f"{what}: bundle carries no DSSE envelope")
    try:
        # A message signature is never a model signature, but it is verified first all
        # the same (over the digest it claims): a broken bundle is refused for what is
        # broken in it, word for word as `bundle verify` refuses it.
        verified = verify_bundle(
            doc, trust=root, identities=[rule], artifact_sha256=claimed, what=what
        )
    except SigstoreVerificationError as exc:
        reason = exc.message.removeprefix(f"{what}: ").removeprefix(
            "Sigstore verification failed: "
        )
        problem = Problem(
            "sigstore",
            f"Sigstore verification failed: {reason}",
            expected=f"{trust.identity} via {trust.issuer} under {trust.trust_config}",
            remedy=f"check {named('identity')}, {named('issuer')} and that {named('trust_config')} is the "
            "instance that issued the signature",
        )
        return SignatureCheck("sigstore", signer, problems=(problem,))
    if verified.payload is None or verified.payload_type is None:
        raise MalformedDocumentError(f"{what}: bundle carries no DSSE envelope")
    if verified.payload_type != INTOTO_PAYLOAD_TYPE:
        raise MalformedDocumentError(
            f"{what}: DSSE payloadType {verified.payload_type!r} is not {INTOTO_PAYLOAD_TYPE}"
        )
    return SignatureCheck("sigstore", signer, verified.payload, PAE_DSSE)
