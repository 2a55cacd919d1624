"""Checking the signature on an OpenSSF model-signing bundle: key, certificate chain, Sigstore.

Every model-signing signature is a Sigstore bundle (v0.3 JSON) holding one DSSE
envelope. What differs is how the signing key is trusted:

* :class:`KeyTrust` — an elliptic-curve public key given by the verifier. A
  ``publicKey.hint`` (hex sha256 of the PEM public key, model-signing >= 1.0)
  or the older ``publicKey.rawBytes`` (base64 of the PEM) naming another key is
  a denial.
* :class:`CertificateTrust` — the leaf certificate in ``x509CertificateChain``
  (or ``certificate``) must chain, through the bundle's other certificates and
  the given ones, to a self-signed root given by the verifier, every certificate
  valid when the leaf was issued (model-signing's rule); the leaf must allow
  digital signatures or code signing.
* :class:`SigstoreTrust` — verified by sigstore-python against an explicit
  trusted root or client trust configuration (offline) and an identity policy.

Releases before 1.0 signed a malformed PAE (``DSSEV1 … b'<payload>'``, sha256
whatever the curve); such signatures are accepted as model-signing accepts them,
and the result says so.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from mlspec_attest.errors import KeyLoadError, MalformedDocumentError, missing
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, pae
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.interop.oms.manifest import Problem
from mlspec_attest.signing.keys import LocalPublicKey, load_public_key

MAX_CHAIN_DEPTH = 8
PAE_DSSE = "dsse-v1"
PAE_LEGACY = "legacy-v0.2"


def legacy_pae(payload: bytes) -> bytes:
    """The PAE model-signing v0.2 signed: its bytes payload formatted as a Python repr."""
    t = INTOTO_PAYLOAD_TYPE
    return f"DSSEV1 {len(t)} {t} {len(payload)} {payload!r}".encode()


def _ec_hash(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    size = key.curve.key_size
    if size == 256:
        return hashes.SHA256()
    if size == 384:
        return hashes.SHA384()
    return hashes.SHA512()


def _check_ec(key: object, source: str) -> ec.EllipticCurvePublicKey:
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in (
        "secp256r1",
        "secp384r1",
        "secp521r1",
    ):
        raise KeyLoadError(
            f"{source}: model-signing keys are ECDSA P-256, P-384 or P-521",
            remedy="create one with `mlspec-attest keygen --type ecdsa-p256`",
        )
    return key


def verify_ecdsa(
    key: ec.EllipticCurvePublicKey, sig: bytes, payload: bytes, payload_type: str
) -> str | None:
    """Which PAE the signature covers (``dsse-v1`` or ``legacy-v0.2``), or None if neither."""
    attempts = (
        (PAE_DSSE, pae(payload_type, payload), _ec_hash(key)),
        (PAE_LEGACY, legacy_pae(payload), _ec_hash(key)),
        (PAE_LEGACY, legacy_pae(payload), hashes.SHA256()),
    )
    for name, message, algorithm in attempts:
        try:
            key.verify(sig, message, ec.ECDSA(algorithm))
        except (InvalidSignature, ValueError):
            continue
        return name
    return None


@dataclass(frozen=True)
class KeyTrust:
    """Trust one elliptic-curve public key."""

    key: LocalPublicKey
    source: str = "public key"

    @classmethod
    def from_file(cls, path: Path) -> KeyTrust:
        key = load_public_key(path)
        _check_ec(key.key, str(path))
        return cls(key, str(path))

    def describe(self) -> dict[str, Any]:
        return {"method": "key", "keyid": self.key.keyid, "keyDetails": self.key.key_details}


@dataclass(frozen=True)
class CertificateTrust:
    """Trust certificates chaining to one of these self-signed roots."""

    certificates: tuple[x509.Certificate, ...]
    sources: tuple[str, ...] = ()

    @classmethod
    def from_files(cls, paths: tuple[Path, ...] | list[Path]) -> CertificateTrust:
        certs: list[x509.Certificate] = []
        for path in paths:
            try:
                data = path.read_bytes()
            except FileNotFoundError as exc:
                raise KeyLoadError(f"{path}: certificate file not found") from exc
            except OSError as exc:
                raise KeyLoadError(f"{path}: cannot read ({exc.strerror})") from exc
            try:
                certs.extend(x509.load_pem_x509_certificates(data))
            except ValueError as exc:
                raise KeyLoadError(f"{path}: no PEM certificates in the file") from exc
        if not certs:
            raise KeyLoadError("no trusted certificates given")
        return cls(tuple(certs), tuple(str(p) for p in paths))

    @property
    def anchors(self) -> list[x509.Certificate]:
        return [c for c in self.certificates if _self_signed(c)]

    def describe(self) -> dict[str, Any]:
        return {
            "method": "certificate",
            "roots": [
                {"subject": c.subject.rfc4514_string(), "sha256": _fingerprint(c)}
                for c in self.anchors
            ],
        }


@dataclass(frozen=True)
class SigstoreTrust:
    """Trust Sigstore certificates for ``identity`` from ``issuer`` under this trust root."""

    trust_config: Path
    identity: str
    issuer: str

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": "sigstore",
            "identity": self.identity,
            "issuer": self.issuer,
            "trustConfig": {"path": str(self.trust_config)},
        }
        with contextlib.suppress(OSError):  # an unreadable file is reported when loaded
            digest = hashlib.sha256(self.trust_config.read_bytes()).hexdigest()
            out["trustConfig"]["sha256"] = digest
        return out


OmsTrust = KeyTrust | CertificateTrust | SigstoreTrust


@dataclass(frozen=True)
class SignatureCheck:
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


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _self_signed(cert: x509.Certificate) -> bool:
    return _issued_by(cert, cert)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


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
            return [
                Problem(
                    "key-hint",
                    "the signature names a different public key than the one given",
                    expected=expected,
                    found=hint,
                    remedy="verify with the public key that signed the model",
                )
            ], []
        return [], []
    raw = material.get("rawBytes")
    if raw is None:
        return [], ["the bundle's publicKey carries no hint; checked with the key given"]
    try:
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
        if b"-----BEGIN" in data:
            named = serialization.load_pem_public_key(data)
        else:
            named = serialization.load_der_public_key(data)
    except (binascii.Error, ValueError, UnsupportedAlgorithm) as exc:
        raise MalformedDocumentError(
            "signature: publicKey.rawBytes is not a base64 public key"
        ) from exc
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if named.public_bytes(der, spki) != trust.key.key.public_bytes(der, spki):
        found = LocalPublicKey.from_pem(named.public_bytes(serialization.Encoding.PEM, spki))
        return [
            Problem(
                "key-hint",
                "the signature's publicKey.rawBytes is a different key than the one given",
                expected=expected,
                found=found.keyid,
                remedy="verify with the public key that signed the model",
            )
        ], []
    return [], ["older signature format: publicKey.rawBytes instead of publicKey.hint"]


def _verify_key(bundle: Bundle, trust: KeyTrust) -> SignatureCheck:
    signer = trust.describe()
    problems, notes = _key_material_problems(bundle, trust)
    if problems:
        return SignatureCheck("key", signer, problems=tuple(problems))
    key = trust.key.key
    assert isinstance(key, ec.EllipticCurvePublicKey)
    envelope = bundle.envelope
    used = verify_ecdsa(key, envelope.signatures[0].sig, envelope.payload, envelope.payload_type)
    if used is None:
        return SignatureCheck(
            "key",
            signer,
            problems=(
                Problem(
                    "signature",
                    "the DSSE signature does not verify under the public key given",
                    expected=f"a signature by key {trust.key.keyid}",
                    remedy="the signature or its payload was altered, or another key signed it",
                ),
            ),
        )
    return SignatureCheck("key", signer, envelope.payload, used, notes=tuple(notes))


def _bundle_certificates(bundle: Bundle) -> list[x509.Certificate]:
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
            remedy="verify a key-signed model with --public-key",
        )
    certs = []
    for i, raw in enumerate(raws):
        value = raw.get("rawBytes") if isinstance(raw, dict) else None
        try:
            der = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
            cert = x509.load_der_x509_certificate(der)
            # Names are decoded lazily by cryptography: decode them here, so a
            # malformed name is this input's error, not a crash later.
            cert.subject.rfc4514_string()
            cert.issuer.rfc4514_string()
            certs.append(cert)
        except (binascii.Error, ValueError, TypeError, x509.InvalidVersion) as exc:
            raise MalformedDocumentError(f"signature: certificate {i} is not valid DER") from exc
    return certs


def _valid_at(cert: x509.Certificate, when: datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def _may_issue(cert: x509.Certificate, below: int, anchor: bool) -> str | None:
    """Why ``cert`` may not issue a chain with ``below`` intermediates under it (None if ok)."""
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None if anchor else "has no basicConstraints (not a CA)"
    if not bc.ca:
        return "is not a CA"
    if bc.path_length is not None and below > bc.path_length:
        return f"allows {bc.path_length} intermediate(s) below it, chain has {below}"
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return None if ku.key_cert_sign else "may not sign certificates (keyUsage)"


def _build_path(
    cert: x509.Certificate,
    anchors: list[x509.Certificate],
    candidates: list[x509.Certificate],
    seen: frozenset[str],
) -> list[x509.Certificate] | None:
    """Issuers of ``cert`` up to a trusted self-signed root (inclusive), depth-first."""
    for anchor in anchors:
        if _issued_by(cert, anchor):
            return [anchor]
    if len(seen) >= MAX_CHAIN_DEPTH:
        return None
    for candidate in candidates:
        fp = _fingerprint(candidate)
        if fp in seen or not _issued_by(cert, candidate):
            continue
        rest = _build_path(candidate, anchors, candidates, seen | {fp})
        if rest is not None:
            return [candidate, *rest]
    return None


def _leaf_problem(leaf: x509.Certificate) -> str | None:
    exts = leaf.extensions
    try:
        if exts.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            return None
    except x509.ExtensionNotFound:
        pass
    try:
        if (
            ExtendedKeyUsageOID.CODE_SIGNING
            in exts.get_extension_for_class(x509.ExtendedKeyUsage).value
        ):
            return None
    except x509.ExtensionNotFound:
        pass
    return "the signing certificate allows neither digital signatures nor code signing"


def _verify_certificate(bundle: Bundle, trust: CertificateTrust) -> SignatureCheck:
    certs = _bundle_certificates(bundle)
    leaf = certs[0]
    signer: dict[str, Any] = {
        "method": "certificate",
        "subject": leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "sha256": _fingerprint(leaf),
    }

    def deny(check: str, message: str, **kw: str) -> SignatureCheck:
        return SignatureCheck("certificate", signer, problems=(Problem(check, message, **kw),))

    anchors = trust.anchors
    if not anchors:
        return deny(
            "certificate-chain",
            "none of the certificates given is a self-signed root",
            remedy="pass the root CA certificate with --certificate-chain",
        )
    # Given certificates that are not roots help build the chain but are not trusted by
    # themselves (OpenSSL without PARTIAL_CHAIN, as model-signing verifies).
    candidates = [c for c in certs[1:] + list(trust.certificates) if not _self_signed(c)]
    path = _build_path(leaf, anchors, candidates, frozenset({_fingerprint(leaf)}))
    if path is None:
        return deny(
            "certificate-chain",
            "the signing certificate does not chain to a trusted root",
            expected="a chain to one of: " + ", ".join(a.subject.rfc4514_string() for a in anchors),
            found=f"leaf {signer['subject']} issued by {signer['issuer']}",
            remedy="pass the root CA that issued the signer's chain with --certificate-chain",
        )
    when = leaf.not_valid_before_utc
    for i, cert in enumerate([leaf, *path]):
        if not _valid_at(cert, when):
            return deny(
                "certificate-chain",
                f"{cert.subject.rfc4514_string()} was not valid when the signing "
                "certificate was issued",
                found=f"valid {cert.not_valid_before_utc} .. {cert.not_valid_after_utc}",
            )
        if i:
            reason = _may_issue(cert, i - 1, anchor=cert is path[-1])
            if reason:
                return deny("certificate-chain", f"issuer {cert.subject.rfc4514_string()} {reason}")
    leaf_issue = _leaf_problem(leaf)
    if leaf_issue:
        return deny("certificate-usage", leaf_issue)
    signer["root"] = {
        "subject": path[-1].subject.rfc4514_string(),
        "sha256": _fingerprint(path[-1]),
    }
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return deny(
            "signature",
            f"the signing certificate holds a {type(key).__name__}; model-signing uses ECDSA",
        )
    envelope = bundle.envelope
    used = verify_ecdsa(key, envelope.signatures[0].sig, envelope.payload, envelope.payload_type)
    if used is None:
        return deny(
            "signature",
            "the DSSE signature does not verify under the signing certificate's key",
            remedy="the signature or its payload was altered",
        )
    return SignatureCheck("certificate", signer, envelope.payload, used)


def _load_sigstore_trusted_root(path: Path, sigstore_models: Any) -> Any:
    doc = load_file(path, what=f"trust config {path}")
    media_type = str(doc.get("mediaType", "")) if isinstance(doc, dict) else ""
    try:
        if "clienttrustconfig" in media_type.lower():
            return sigstore_models.ClientTrustConfig.from_json(path.read_text()).trusted_root
        if "trustedroot" in media_type.lower():
            return sigstore_models.TrustedRoot.from_file(str(path))
    except Exception as exc:
        raise MalformedDocumentError(
            f"trust config {path}: sigstore cannot use it ({exc})"
        ) from exc
    raise MalformedDocumentError(
        f"trust config {path}: mediaType {media_type!r} is neither a Sigstore "
        "ClientTrustConfig nor a TrustedRoot"
    )


def _verify_sigstore(signature: Path, trust: SigstoreTrust) -> SignatureCheck:
    try:
        from sigstore import errors as sigstore_errors
        from sigstore import models as sigstore_models
        from sigstore.verify import Verifier, policy
    except ImportError as exc:
        raise missing("sigstore", "verifying Sigstore model signatures", exc) from exc
    load_file(signature, what=f"signature {signature}")  # strict JSON first: no duplicate keys
    try:
        bundle = sigstore_models.Bundle.from_json(signature.read_bytes())
    except Exception as exc:
        raise MalformedDocumentError(
            f"signature {signature}: not a Sigstore bundle ({exc})"
        ) from exc
    trusted_root = _load_sigstore_trusted_root(trust.trust_config, sigstore_models)
    signer = trust.describe()
    cert = bundle.signing_certificate
    signer["certificate"] = {"sha256": _fingerprint(cert)}
    verifier = Verifier(trusted_root=trusted_root)
    identity = policy.Identity(identity=trust.identity, issuer=trust.issuer)
    try:
        payload_type, payload = verifier.verify_dsse(bundle, identity)
    except sigstore_errors.VerificationError as exc:
        return SignatureCheck(
            "sigstore",
            signer,
            problems=(
                Problem(
                    "sigstore",
                    f"Sigstore verification failed: {exc}",
                    expected=f"{trust.identity} via {trust.issuer} under {trust.trust_config}",
                    remedy="check --identity, --issuer and that --trust-config is the "
                    "instance that issued the signature",
                ),
            ),
        )
    except sigstore_errors.Error as exc:
        raise MalformedDocumentError(f"signature {signature}: {exc}") from exc
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise MalformedDocumentError(
            f"signature {signature}: DSSE payloadType {payload_type!r} is not {INTOTO_PAYLOAD_TYPE}"
        )
    return SignatureCheck("sigstore", signer, bytes(payload), PAE_DSSE)
