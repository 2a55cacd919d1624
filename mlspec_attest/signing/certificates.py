"""X.509 certificate chains to a given self-signed root (model-signing's certificate trust).

:func:`verify_chain` builds the leaf's path, through the other certificates offered,
up to one of the trusted self-signed roots, and checks it as model-signing does:
every certificate valid when the leaf was issued, every issuer a CA allowed to
sign certificates (path length, keyUsage), the leaf allowed to sign (digitalSignature
or code signing). Given certificates that are not roots help build the chain but are
not trusted by themselves (OpenSSL without PARTIAL_CHAIN, as model-signing verifies).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID
from msgspec import Struct

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.inputs import named

MAX_CHAIN_DEPTH = 8
# Certificates a bundle may offer besides the signing one. Real chains carry one or two
# (Fulcio's intermediate, model-signing's intermediates, a v0.1 bundle's root too); more
# is refused before any is read (DESIGN section 7: bounded parsing, exit 3).
MAX_OFFERED_CERTIFICATES = 10
# Signature checks one path search may make. The breadth-first search makes at most
# (offered + 1) x (anchors + candidates) of them where names chain (about 120 for ten
# offered certificates naming one another); a trust file of many cross-signed
# intermediates could make more, and is refused rather than searched without end.
MAX_SIGNATURE_CHECKS = 512


class ChainProblem(Struct, frozen=True):
    """Why a certificate is not trusted: the check that failed and the details to show."""

    check: str  # "certificate-chain" or "certificate-usage"
    message: str
    expected: str | None = None
    found: str | None = None
    remedy: str | None = None


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def subject_of(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def self_signed(cert: x509.Certificate) -> bool:
    return issued_by(cert, cert)


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def decode_certificate(value: object) -> x509.Certificate:
    """A certificate from base64 DER text; ValueError if it is not one."""
    try:
        der = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
        cert = x509.load_der_x509_certificate(der)
        # Names are decoded lazily by cryptography: decode them here, so a
        # malformed name is this input's error, not a crash later.
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
    except (binascii.Error, ValueError, TypeError, x509.InvalidVersion) as exc:
        raise ValueError("not valid DER") from exc
    return cert


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


class PathSearch(Struct):
    """A breadth-first search for a leaf's path to a trust anchor, bounded.

    Each certificate is reached at most once, by its shortest path, so the work is at
    most (offered + 1) x (anchors + candidates) issuer checks whatever the certificates
    offered claim of each other; a signature is checked only where the names chain, and
    at most :data:`MAX_SIGNATURE_CHECKS` times (``checks`` counts them).
    """

    anchors: list[x509.Certificate]
    candidates: list[x509.Certificate]
    checks: int = 0

    def issued(self, cert: x509.Certificate, issuer: x509.Certificate) -> bool:
        """Did ``issuer`` sign ``cert``? (A signature check, counted, only if the names chain.)"""
        if cert.issuer != issuer.subject:
            return False
        if self.checks >= MAX_SIGNATURE_CHECKS:
            raise MalformedDocumentError(
                f"the certificates given make a chain search of more than {MAX_SIGNATURE_CHECKS} "
                "signature checks",
                remedy="keep the signer's chain to its leaf and intermediates",
            )
        self.checks += 1
        return issued_by(cert, issuer)

    def path(self, leaf: x509.Certificate) -> list[x509.Certificate] | None:
        """Issuers of ``leaf`` up to a trusted self-signed root (inclusive), shortest first."""
        came_from: dict[str, x509.Certificate] = {fingerprint(leaf): leaf}
        frontier = [leaf]
        for depth in range(MAX_CHAIN_DEPTH):
            reached: list[x509.Certificate] = []
            for cert in frontier:
                anchor = next((a for a in self.anchors if self.issued(cert, a)), None)
                if anchor is not None:
                    return [*self._issuers(cert, came_from), anchor]
                if depth + 1 == MAX_CHAIN_DEPTH:
                    continue
                for candidate in self.candidates:
                    fp = fingerprint(candidate)
                    if fp not in came_from and self.issued(cert, candidate):
                        came_from[fp] = cert
                        reached.append(candidate)
            frontier = reached
        return None

    @staticmethod
    def _issuers(
        cert: x509.Certificate, came_from: dict[str, x509.Certificate]
    ) -> list[x509.Certificate]:
        """The intermediates from the leaf's issuer up to ``cert`` (inclusive)."""
        chain: list[x509.Certificate] = []
        while came_from[fingerprint(cert)] is not cert:
            chain.append(cert)
            cert = came_from[fingerprint(cert)]
        return chain[::-1]


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


def _path_problem(leaf: x509.Certificate, path: list[x509.Certificate]) -> ChainProblem | None:
    """Validity at the leaf's issuance and each issuer's right to issue."""
    when = leaf.not_valid_before_utc
    for i, cert in enumerate([leaf, *path]):
        if not _valid_at(cert, when):
            return ChainProblem(
                "certificate-chain",
                f"{subject_of(cert)} was not valid when the signing certificate was issued",
                found=f"valid {cert.not_valid_before_utc} .. {cert.not_valid_after_utc}",
            )
        if i:
            reason = _may_issue(cert, i - 1, anchor=cert is path[-1])
            if reason:
                return ChainProblem("certificate-chain", f"issuer {subject_of(cert)} {reason}")
    leaf_issue = _leaf_problem(leaf)
    return ChainProblem("certificate-usage", leaf_issue) if leaf_issue else None


def verify_chain(
    leaf: x509.Certificate,
    offered: Sequence[x509.Certificate],
    trusted: Sequence[x509.Certificate],
) -> list[x509.Certificate] | ChainProblem:
    """The path from ``leaf`` up to a trusted self-signed root (inclusive), or why there is none.

    ``offered`` are the bundle's other certificates (at most
    :data:`MAX_OFFERED_CERTIFICATES`, else MalformedDocumentError); ``trusted`` the
    verifier's, of which only the self-signed ones are trust anchors.
    """
    if len(offered) > MAX_OFFERED_CERTIFICATES:
        raise MalformedDocumentError(
            f"the signature's certificate chain holds {len(offered) + 1} certificates; "
            f"at most {MAX_OFFERED_CERTIFICATES + 1} (the signing certificate and its "
            "issuers) are read",
            remedy="sign with the signing certificate and its intermediate CA certificates only",
        )
    anchors = [c for c in trusted if self_signed(c)]
    if not anchors:
        return ChainProblem(
            "certificate-chain",
            "none of the certificates given is a self-signed root",
            remedy=f"pass the root CA certificate with {named('certificate_chain')}",
        )
    unique = {fingerprint(c): c for c in [*offered, *trusted]}
    candidates = [c for c in unique.values() if not self_signed(c)]
    path = PathSearch(anchors, candidates).path(leaf)
    if path is None:
        return ChainProblem(
            "certificate-chain",
            "the signing certificate does not chain to a trusted root",
            expected="a chain to one of: " + ", ".join(subject_of(a) for a in anchors),
            found=f"leaf {subject_of(leaf)} issued by {leaf.issuer.rfc4514_string()}",
            remedy=f"pass the root CA that issued the signer's chain with {named('certificate_chain')}",
        )
    return _path_problem(leaf, path) or path
