"""Who signed a keyless bundle: the Fulcio certificate's identity, and the rules that allow one.

:class:`CertificateIdentity` reads a certificate's SANs and OIDC issuer;
:class:`SigstoreIdentity` is one rule (issuer plus exact identity or anchored
regex); :func:`check_identity` is the one identity check every keyless path runs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from mlspec_attest.errors import SigstoreVerificationError
from mlspec_attest.formats.jsonio import canonical

if TYPE_CHECKING:
    # Imported where a certificate is read: a policy's identity rules need no X.509, and
    # cryptography.x509 is the largest import of a key-signed verification.
    from cryptography import x509

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


class CertificateIdentity(Struct, frozen=True):
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


class SigstoreIdentity(Struct, frozen=True):
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
