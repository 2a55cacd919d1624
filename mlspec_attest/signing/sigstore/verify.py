"""Offline verification of Sigstore bundles: an explicit trust root and an explicit identity policy.

:func:`verify_bundle` checks one bundle (v0.1 - v0.3, DSSE or message signature)
and returns what it proved (:class:`VerifiedBundle`) or raises:

* :class:`~mlspec_attest.errors.SigstoreVerificationError` (exit 1) - the bundle
  does not verify: certificate chain or SCT, transparency-log inclusion proof,
  checkpoint or promise, signed time, signature, artifact digest; its subclass
  :class:`IdentityMismatchError` when everything verifies but the certificate
  belongs to an identity no rule allows (it carries the identity found);
* :class:`~mlspec_attest.errors.MalformedDocumentError` (exit 3) - the bundle or
  trust root does not parse;
* :class:`~mlspec_attest.errors.BackendError` (exit 4) - sigstore-python is not
  installed, or no trust root was given for a bundle that needs one.

Two kinds of bundles:

* **certificate** (keyless): verified by sigstore-python's ``Verifier`` against
  the given :class:`TrustRoot` (never fetched), with the gaps of sigstore 4.5
  closed in :mod:`._sigstore_compat` (Rekor ``intoto`` entries, inclusive TSA
  validity end); the certificate identity must match one :class:`SigstoreIdentity`.
* **public key** (``publicKey.hint``): the signature is checked with the key the
  caller gives; when a trust root is given too, the bundle's transparency-log entry
  (inclusion proof, checkpoint, promise), signed times and entry body are verified
  as well. Bundles written by ``mlspec-attest sign --key`` carry no log entry and
  verify without sigstore-python.

This module imports sigstore-python only when a bundle needs it (~0.2 s).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from mlspec_attest.errors import (
    BackendError,
    BadInputError,
    MalformedDocumentError,
    SigstoreVerificationError,
    UsageError,
    missing,
)
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope, b64decode_strict, pae
from mlspec_attest.formats.jsonio import canonical, load_file, loads_strict
from mlspec_attest.signing.keys import LocalPublicKey

if TYPE_CHECKING:
    from cryptography import x509
    from sigstore.models import TrustedRoot as SigstoreTrustedRoot

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
CLIENT_TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
STATEMENT_TYPES = ("https://in-toto.io/Statement/v1",)
# The TUF repositories whose trust roots sigstore-python embeds.
INSTANCES = {
    "production": "https://tuf-repo-cdn.sigstore.dev",
    "staging": "https://tuf-repo-cdn.sigstage.dev",
}

# Fulcio certificate extensions (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md).
_OIDC_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"
_OIDC_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"
_OTHERNAME_SAN = "1.3.6.1.4.1.57264.1.7"


def _der_utf8(value: bytes) -> str | None:
    """The text of a DER UTF8String (tag 0x0c), or None if ``value`` is not one."""
    if len(value) < 2 or value[0] != 0x0C:
        return None
    length, offset = value[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(value) < 2 + count:
            return None
        length = int.from_bytes(value[2 : 2 + count], "big")
        offset = 2 + count
    if len(value) != offset + length:
        return None
    try:
        return value[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class CertificateIdentity:
    """Who a Fulcio certificate was issued to: its SANs and the OIDC issuer extension."""

    sans: tuple[str, ...]
    issuer: str | None

    @classmethod
    def from_certificate(cls, cert: x509.Certificate) -> CertificateIdentity:
        from cryptography import x509

        sans: list[str] = []
        try:
            ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            ext = None
        if ext is not None:
            sans += ext.get_values_for_type(x509.RFC822Name)
            sans += ext.get_values_for_type(x509.UniformResourceIdentifier)
            for other in ext.get_values_for_type(x509.OtherName):
                if other.type_id.dotted_string == _OTHERNAME_SAN:
                    text = _der_utf8(other.value)
                    if text is not None:
                        sans.append(text)
        return cls(tuple(sans), _issuer_of(cert))

    @property
    def primary(self) -> str:
        return self.sans[0] if self.sans else ""

    def describe(self) -> str:
        names = ", ".join(self.sans) or "(no identity)"
        return f"{names} (issuer {self.issuer or 'unknown'})"

    def to_json(self) -> dict[str, Any]:
        return {"identity": self.primary, "sans": list(self.sans), "issuer": self.issuer}

    @property
    def signer_id(self) -> str:
        """A stable id for "the same signer" (threshold counting): sha256 of issuer + SANs."""
        text = "\n".join([self.issuer or "", *sorted(self.sans)])
        return "sigstore:" + hashlib.sha256(text.encode()).hexdigest()


def _issuer_of(cert: x509.Certificate) -> str | None:
    """The OIDC issuer: the v2 extension (DER UTF8String), else the v1 one (raw text).

    If both are present they must agree; a certificate that disagrees with itself
    has no issuer.
    """
    from cryptography import x509

    found: dict[str, str | None] = {}
    for oid in (_OIDC_ISSUER_V2, _OIDC_ISSUER_V1):
        try:
            ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value
        except x509.ExtensionNotFound:
            continue
        raw = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
        if oid == _OIDC_ISSUER_V2:
            found[oid] = _der_utf8(raw)
        else:
            try:
                found[oid] = raw.decode("utf-8")
            except UnicodeDecodeError:
                found[oid] = None
    values = set(found.values())
    if len(values) != 1:
        return None
    return values.pop()


@dataclass(frozen=True)
class SigstoreIdentity:
    """An identity rule: the OIDC issuer, plus the exact identity or an anchored regex.

    ``identity_regex`` must match a whole SAN (``re.fullmatch``): ``.*@example\\.com``
    does not match ``eve@example.com.evil``.
    """

    issuer: str
    identity: str | None = None
    identity_regex: str | None = None

    def __post_init__(self) -> None:
        if not self.issuer:
            raise ValueError("a Sigstore identity needs an issuer")
        if (self.identity is None) == (self.identity_regex is None):
            raise ValueError("give exactly one of identity or identityRegex")
        if self.identity_regex is not None:
            try:
                re.compile(self.identity_regex)
            except re.error as exc:
                raise ValueError(f"identityRegex {self.identity_regex!r}: {exc}") from exc

    def matches(self, found: CertificateIdentity) -> bool:
        if found.issuer != self.issuer:
            return False
        if self.identity is not None:
            return self.identity in found.sans
        assert self.identity_regex is not None
        pattern = re.compile(self.identity_regex)
        return any(pattern.fullmatch(san) for san in found.sans)

    def describe(self) -> str:
        who = self.identity if self.identity is not None else f"/{self.identity_regex}/"
        return f"{who} (issuer {self.issuer})"

    @property
    def keyid(self) -> str:
        """Stable id of the rule (stands in for a key id in reports and thresholds)."""
        return "sigstore:" + hashlib.sha256(canonical(self.to_json())).hexdigest()

    def to_json(self) -> dict[str, str]:
        out = {"issuer": self.issuer}
        if self.identity is not None:
            out["identity"] = self.identity
        if self.identity_regex is not None:
            out["identityRegex"] = self.identity_regex
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SigstoreIdentity:
        return cls(
            issuer=str(doc.get("issuer", "")),
            identity=doc.get("identity"),
            identity_regex=doc.get("identityRegex"),
        )


@dataclass(frozen=True)
class TrustRoot:
    """A Sigstore trusted root (the ``TrustedRoot`` JSON), and where it came from.

    Nothing here fetches anything except :meth:`refreshed`, which exists for an
    explicit ``--refresh-trust``.
    """

    document: Mapping[str, Any] = field(hash=False)
    source: str = field(default="", compare=False)

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(canonical(dict(self.document))).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "digest": self.digest}

    def to_json(self) -> dict[str, Any]:
        return dict(self.document)

    @classmethod
    def from_json(cls, doc: Any, *, source: str) -> TrustRoot:
        """Accept a TrustedRoot or a ClientTrustConfig (its ``trustedRoot`` is used)."""
        if not isinstance(doc, dict):
            raise MalformedDocumentError(f"{source}: a Sigstore trust root must be a JSON object")
        media_type = doc.get("mediaType")
        if media_type == CLIENT_TRUST_CONFIG_MEDIA_TYPE:
            doc = doc.get("trustedRoot")
            if not isinstance(doc, dict):
                raise MalformedDocumentError(f"{source}: ClientTrustConfig without trustedRoot")
            media_type = doc.get("mediaType")
        if media_type != TRUSTED_ROOT_MEDIA_TYPE:
            raise MalformedDocumentError(
                f"{source}: mediaType {media_type!r} is neither a Sigstore TrustedRoot "
                f"({TRUSTED_ROOT_MEDIA_TYPE}) nor a ClientTrustConfig",
            )
        return cls(doc, source)

    @classmethod
    def from_file(cls, path: Path, *, source: str | None = None) -> TrustRoot:
        doc = load_file(path, what=f"trust root {path}")
        return cls.from_json(doc, source=source or str(path))

    @classmethod
    def embedded(cls, instance: str) -> TrustRoot:
        """The trusted root sigstore-python ships for ``production`` or ``staging`` (offline)."""
        url = _instance_url(instance)
        try:
            from sigstore._utils import read_embedded
        except ImportError as exc:
            raise missing("sigstore", f"the embedded {instance} trust root", exc) from exc
        try:
            data = read_embedded("trusted_root.json", url)
        except FileNotFoundError as exc:
            raise BackendError(f"sigstore-python ships no trusted root for {url}") from exc
        version = _sigstore_version()
        return cls.from_json(
            loads_strict(data, what=f"embedded {instance} trust root"),
            source=f"instance:{instance} (embedded in sigstore {version})",
        )

    @classmethod
    def refreshed(cls, instance: str) -> TrustRoot:
        """The current trusted root of ``instance``, fetched over TUF (network!)."""
        url = _instance_url(instance)
        try:
            from sigstore import errors as sigstore_errors
            from sigstore.models import ClientTrustConfig
        except ImportError as exc:
            raise missing("sigstore", f"refreshing the {instance} trust root", exc) from exc
        try:
            config = ClientTrustConfig.from_tuf(url, offline=False)
        except sigstore_errors.Error as exc:
            raise BackendError(f"cannot refresh the {instance} trust root over TUF: {exc}") from exc
        doc = json.loads(config.trusted_root._inner.to_json())
        return cls.from_json(doc, source=f"instance:{instance} (refreshed over TUF from {url})")

    def sigstore(self) -> SigstoreTrustedRoot:
        """The sigstore-python object (parses and checks the document)."""
        from mlspec_attest.signing.sigstore import _compat as _sigstore_compat

        return _sigstore_compat.load_trusted_root(self.document, self.source)


def _instance_url(instance: str) -> str:
    try:
        return INSTANCES[instance]
    except KeyError:
        raise UsageError(
            f"unknown Sigstore instance {instance!r}", remedy="use production or staging"
        ) from None


def _sigstore_version() -> str:
    try:
        from importlib.metadata import version

        return version("sigstore")
    except Exception:  # pragma: no cover - metadata missing only in broken installs
        return "?"


@dataclass(frozen=True)
class SignedTime:
    """One verified source of signing time."""

    source: str  # "transparency-log" or "timestamp-authority"
    time: datetime

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "time": self.time.astimezone(UTC).isoformat()}


@dataclass(frozen=True)
class VerifiedBundle:
    """What a successful :func:`verify_bundle` proved."""

    method: str  # "sigstore" (certificate) or "key"
    payload_type: str | None = None
    payload: bytes | None = None
    identity: CertificateIdentity | None = None
    matched: tuple[SigstoreIdentity, ...] = ()
    keyid: str | None = None
    times: tuple[SignedTime, ...] = ()
    log_entries: int = 0
    notes: tuple[str, ...] = ()

    @property
    def signer_id(self) -> str:
        if self.identity is not None:
            return self.identity.signer_id
        return self.keyid or ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method}
        if self.identity is not None:
            out["signer"] = self.identity.to_json()
            out["matchedRules"] = [m.to_json() for m in self.matched]
        if self.keyid is not None:
            out["signer"] = {"keyid": self.keyid}
        out["content"] = "dsse" if self.payload is not None else "message-signature"
        if self.payload_type is not None:
            out["payloadType"] = self.payload_type
        out["transparencyLogEntries"] = self.log_entries
        out["signedTimes"] = [t.to_json() for t in self.times]
        if self.notes:
            out["notes"] = list(self.notes)
        return out


class IdentityMismatchError(SigstoreVerificationError):
    """The certificate verifies, but no identity rule allows who it was issued to."""

    def __init__(
        self,
        found: CertificateIdentity,
        allowed: Sequence[SigstoreIdentity],
    ) -> None:
        expected = "; ".join(a.describe() for a in allowed) or "none"
        super().__init__(
            f"signed by {found.describe()}, which no identity rule allows (allowed: {expected})",
            remedy="sign with an allowed identity, or add this identity to the policy",
        )
        self.found = found
        self.allowed = tuple(allowed)


def check_identity(
    cert: x509.Certificate, rules: Sequence[SigstoreIdentity]
) -> tuple[CertificateIdentity, tuple[SigstoreIdentity, ...]]:
    """The certificate's identity and the rules it matches; raise if none does."""
    found = CertificateIdentity.from_certificate(cert)
    matched = tuple(r for r in rules if r.matches(found))
    if not matched:
        raise IdentityMismatchError(found, rules)
    return found, matched


def verify_bundle(
    doc: Any,
    *,
    trust: TrustRoot | None,
    identities: Sequence[SigstoreIdentity] = (),
    key: LocalPublicKey | None = None,
    artifact_sha256: str | None = None,
    now: datetime | None = None,
    what: str = "bundle",
) -> VerifiedBundle:
    """Verify the Sigstore bundle ``doc`` (parsed JSON) offline; see the module docstring.

    ``artifact_sha256`` (hex) is what was signed: for a DSSE bundle an in-toto
    subject must carry it, for a message signature the signature covers it.
    """
    if not isinstance(doc, dict):
        raise MalformedDocumentError(f"{what}: a Sigstore bundle must be a JSON object")
    material = doc.get("verificationMaterial")
    if not isinstance(material, dict):
        raise MalformedDocumentError(f"{what}: missing verificationMaterial")
    if artifact_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", artifact_sha256):
        raise UsageError(f"artifact digest {artifact_sha256!r} is not a hex sha256")
    keyless = "certificate" in material or "x509CertificateChain" in material
    if keyless:
        if not identities:
            if key is not None:
                raise SigstoreVerificationError(
                    f"{what}: signed with a Sigstore certificate, not with the public key given",
                    remedy="verify keyless bundles with --identity/--identity-regex and --issuer",
                )
            raise UsageError(
                f"{what}: a keyless bundle needs an identity policy",
                remedy="name the signer: --identity ID (or --identity-regex RE) and --issuer URL",
            )
        if trust is None:
            raise BackendError(
                f"{what}: no Sigstore trust root to verify a keyless bundle against",
                remedy="pass --trusted-root FILE, --trust-config FILE or --instance NAME",
            )
        return _verify_keyless(doc, trust, identities, artifact_sha256, what)
    if "publicKey" not in material:
        raise MalformedDocumentError(
            f"{what}: verificationMaterial names neither a certificate nor a public key"
        )
    if key is None:
        raise SigstoreVerificationError(
            f"{what}: signed with a public key (not a Sigstore certificate), and no key was given",
            remedy="verify it with --key PUBKEY",
        )
    return _verify_with_key(doc, key, trust, artifact_sha256, now or datetime.now(UTC), what)


def _check_subject(
    payload_type: str, payload: bytes, artifact_sha256: str | None, what: str
) -> None:
    if artifact_sha256 is None:
        return
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise SigstoreVerificationError(
            f"{what}: DSSE payloadType {payload_type!r} is not an in-toto statement; "
            "it cannot name the artifact"
        )
    try:
        statement = loads_strict(payload, what=f"{what}: in-toto statement")
    except MalformedDocumentError as exc:
        raise SigstoreVerificationError(exc.message) from exc
    if not isinstance(statement, dict):
        raise SigstoreVerificationError(f"{what}: the DSSE payload is not an in-toto Statement v1")
    subjects = statement.get("subject")
    if statement.get("_type") not in STATEMENT_TYPES or not isinstance(subjects, list):
        raise SigstoreVerificationError(f"{what}: the DSSE payload is not an in-toto Statement v1")
    for subject in subjects:
        digest = subject.get("digest") if isinstance(subject, dict) else None
        if isinstance(digest, dict) and digest.get("sha256") == artifact_sha256:
            return
    raise SigstoreVerificationError(
        f"{what}: the in-toto statement has no subject with sha256 {artifact_sha256}",
        remedy="this bundle attests another artifact",
    )


def _verify_keyless(
    doc: dict[str, Any],
    trust: TrustRoot,
    identities: Sequence[SigstoreIdentity],
    artifact_sha256: str | None,
    what: str,
) -> VerifiedBundle:
    from mlspec_attest.signing.sigstore import _compat as _sigstore_compat

    if "dsseEnvelope" not in doc and artifact_sha256 is None:
        raise UsageError(
            f"{what}: a message signature covers an artifact; pass it",
            remedy="--artifact FILE or --digest sha256:HEX",
        )
    outcome = _sigstore_compat.verify_certificate_bundle(
        json.dumps(doc),
        trust,
        identities,
        bytes.fromhex(artifact_sha256) if artifact_sha256 else None,
        what,
    )
    if outcome.payload_type is not None and outcome.payload is not None:
        _check_subject(outcome.payload_type, outcome.payload, artifact_sha256, what)
    return outcome


# --- public-key bundles -----------------------------------------------------------------


def _signature_ok(key: LocalPublicKey, signature: bytes, data: bytes, *, prehashed: bool) -> bool:
    """Does ``signature`` verify over ``data`` (or over the sha256 digest ``data``)?

    Accepts what Sigstore clients and mlspec-attest produce: ECDSA with the curve's
    hash (or SHA-256 when prehashed), Ed25519, RSA PKCS#1 v1.5 or PSS with SHA-256.
    """
    k = key.key
    digest_alg: hashes.HashAlgorithm | utils.Prehashed = (
        utils.Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
    )
    try:
        if isinstance(k, ed25519.Ed25519PublicKey):
            if prehashed:
                return False  # Ed25519 signs messages, never digests
            k.verify(signature, data)
            return True
        if isinstance(k, ec.EllipticCurvePublicKey):
            if prehashed:
                k.verify(signature, data, ec.ECDSA(digest_alg))
                return True
            return key.verify(signature, data) or _ecdsa_sha256(k, signature, data)
        assert isinstance(k, rsa.RSAPublicKey)
        for pad in (
            padding.PKCS1v15(),
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
        ):
            try:
                k.verify(signature, data, pad, digest_alg)
                return True
            except InvalidSignature:
                continue
        return False
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        return False


def _ecdsa_sha256(k: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    # Sigstore clients sign DSSE with ECDSA-SHA256 whatever the curve.
    try:
        k.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def _verify_with_key(
    doc: dict[str, Any],
    key: LocalPublicKey,
    trust: TrustRoot | None,
    artifact_sha256: str | None,
    now: datetime,
    what: str,
) -> VerifiedBundle:
    if ("dsseEnvelope" in doc) == ("messageSignature" in doc):
        raise MalformedDocumentError(
            f"{what}: a bundle carries exactly one of dsseEnvelope or messageSignature"
        )
    payload_type: str | None = None
    payload: bytes | None = None
    if "dsseEnvelope" in doc:
        envelope = Envelope.from_json(doc["dsseEnvelope"], what=f"{what}: dsseEnvelope")
        if len(envelope.signatures) != 1:
            raise SigstoreVerificationError(
                f"{what}: expected one DSSE signature, found {len(envelope.signatures)}"
            )
        signature = envelope.signatures[0].sig
        if not _signature_ok(
            key, signature, pae(envelope.payload_type, envelope.payload), prehashed=False
        ):
            raise SigstoreVerificationError(
                f"{what}: the DSSE signature does not verify under key {key.keyid[:16]}",
                remedy="the bundle was altered, or another key signed it",
            )
        payload_type, payload = envelope.payload_type, envelope.payload
        _check_subject(payload_type, payload, artifact_sha256, what)
    else:
        signature = _message_signature(doc, artifact_sha256, what)
        assert artifact_sha256 is not None
        if not _signature_ok(key, signature, bytes.fromhex(artifact_sha256), prehashed=True):
            raise SigstoreVerificationError(
                f"{what}: the signature does not verify over sha256 {artifact_sha256} "
                f"under key {key.keyid[:16]}",
                remedy="the artifact or the bundle was altered, or another key signed it",
            )
    entries = doc["verificationMaterial"].get("tlogEntries") or []
    notes: list[str] = []
    times: tuple[SignedTime, ...] = ()
    if trust is not None:
        from mlspec_attest.signing.sigstore import _compat as _sigstore_compat

        if not entries:
            raise SigstoreVerificationError(
                f"{what}: a trust root was given, but the bundle has no transparency-log entry",
                remedy="this key bundle was never logged; verify it with --key alone",
            )
        times = _sigstore_compat.verify_key_transparency(
            json.dumps(doc),
            trust,
            key,
            signature,
            bytes.fromhex(artifact_sha256) if artifact_sha256 else None,
            now,
            what,
        )
    elif entries:
        notes.append(
            f"{len(entries)} transparency-log entr{'y' if len(entries) == 1 else 'ies'} "
            "not checked (no trust root given)"
        )
    return VerifiedBundle(
        "key",
        payload_type,
        payload,
        keyid=key.keyid,
        times=times,
        log_entries=len(entries) if trust is not None else 0,
        notes=tuple(notes),
    )


def _message_signature(doc: dict[str, Any], artifact_sha256: str | None, what: str) -> bytes:
    raw = doc["messageSignature"]
    if not isinstance(raw, dict):
        raise MalformedDocumentError(f"{what}: messageSignature is not an object")
    signature = b64decode_strict(raw.get("signature"), f"{what}: messageSignature.signature")
    if artifact_sha256 is None:
        raise UsageError(
            f"{what}: a message signature covers an artifact; pass it",
            remedy="--artifact FILE or --digest sha256:HEX",
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
    return signature


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (what a bundle signs)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except FileNotFoundError as exc:
        raise BadInputError(f"{path}: artifact not found") from exc
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({exc.strerror})") from exc
    return h.hexdigest()
