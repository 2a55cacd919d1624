"""The trust an OpenSSF model-signing signature is checked under, and the options that name it.

Every model-signing signature is a Sigstore bundle (v0.3 JSON) holding one DSSE
envelope. What differs is how the signing key is trusted (:func:`trust_from_options`
maps ``model verify``'s options onto one):

* :class:`KeyTrust` — an elliptic-curve public key given by the verifier. A
  ``publicKey.hint`` (hex sha256 of the PEM public key, model-signing >= 1.0)
  or the older ``publicKey.rawBytes`` (base64 of the PEM) naming another key is
  a denial.
* :class:`CertificateTrust` — the leaf certificate in ``x509CertificateChain``
  (or ``certificate``) must chain to a self-signed root given by the verifier
  (:func:`mlspec_attest.signing.certificates.verify_chain`).
* :class:`SigstoreTrust` — verified by the one Sigstore verifier
  (:func:`mlspec_attest.signing.sigstore.verify.verify_bundle`) against an explicit
  trusted root or client trust configuration (offline) and an identity.

:mod:`.signature_check` checks a bundle under one of them; the cryptography lives in
:mod:`mlspec_attest.signing` (keys and schemes, PAE, certificate chains, Sigstore).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from cryptography import x509
from msgspec import Struct

from mlspec_attest.digest.artifact import sha256_file
from mlspec_attest.errors import ArtifactPathError, KeyLoadError, UsageError
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.limits import MAX_CERTIFICATES_BYTES, read_limited
from mlspec_attest.signing import schemes
from mlspec_attest.signing.certificates import fingerprint, self_signed
from mlspec_attest.signing.keys import LocalPublicKey, load_public_key
from mlspec_attest.signing.schemes import Use


class KeyTrust(Struct, frozen=True):
    """Trust one elliptic-curve public key."""

    key: LocalPublicKey
    source: str = "public key"

    @classmethod
    def from_file(cls, path: Path) -> KeyTrust:
        key = load_public_key(path)
        schemes.check_public(key.key, str(path), Use.OMS)
        return cls(key, str(path))

    def describe(self) -> dict[str, Any]:
        return {"method": "key", "keyid": self.key.keyid, "keyDetails": self.key.key_details}


class CertificateTrust(Struct, frozen=True):
    """Trust certificates chaining to one of these self-signed roots."""

    certificates: tuple[x509.Certificate, ...]
    sources: tuple[str, ...] = ()

    @classmethod
    def from_files(cls, paths: tuple[Path, ...] | list[Path]) -> CertificateTrust:
        certs: list[x509.Certificate] = []
        for path in paths:
            data = read_limited(
                path,
                MAX_CERTIFICATES_BYTES,
                what=f"certificate file {path}",
                kind="a certificate file",
                error=KeyLoadError,
            )
            try:
                certs.extend(x509.load_pem_x509_certificates(data))
            except ValueError as exc:
                raise KeyLoadError(f"{path}: no PEM certificates in the file") from exc
        if not certs:
            raise KeyLoadError("no trusted certificates given")
        return cls(tuple(certs), tuple(str(p) for p in paths))

    @property
    def anchors(self) -> list[x509.Certificate]:
        return [c for c in self.certificates if self_signed(c)]

    def describe(self) -> dict[str, Any]:
        return {
            "method": "certificate",
            "roots": [
                {"subject": c.subject.rfc4514_string(), "sha256": fingerprint(c)}
                for c in self.anchors
            ],
        }


class SigstoreTrust(Struct, frozen=True):
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
        with contextlib.suppress(ArtifactPathError):  # reported when the file is loaded
            digest = sha256_file(self.trust_config)[0]
            out["trustConfig"]["sha256"] = digest
        return out


OmsTrust = KeyTrust | CertificateTrust | SigstoreTrust


def trust_from_options(
    public_key: Path | None,
    certificate_chain: tuple[Path, ...] | list[Path],
    trust_config: Path | None,
    identity: str | None,
    issuer: str | None,
) -> OmsTrust:
    """The one trust ``model verify``'s options name (as model_signing's ``verify`` subcommands do)."""
    chosen = [
        name
        for name, given in (
            (named("public_key"), public_key is not None),
            (named("certificate_chain"), bool(certificate_chain)),
            (named("trust_config"), trust_config is not None),
        )
        if given
    ]
    if len(chosen) != 1:
        raise UsageError(
            f"name exactly one trust: {named('public_key')}, {named('certificate_chain')}, or "
            f"{named('trust_config')} with {named('identity')} and {named('issuer')}"
            + (f" (got {', '.join(chosen)})" if chosen else ""),
        )
    if (identity or issuer) and trust_config is None:
        raise UsageError(
            f"{named('identity')} and {named('issuer')} go with {named('trust_config')} (Sigstore)"
        )
    if public_key is not None:
        return KeyTrust.from_file(public_key)
    if certificate_chain:
        return CertificateTrust.from_files(list(certificate_chain))
    if not identity or not issuer:
        raise UsageError(f"Sigstore verification needs {named('identity')} and {named('issuer')}")
    assert trust_config is not None
    return SigstoreTrust(trust_config, identity, issuer)
