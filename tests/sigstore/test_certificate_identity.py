"""Who a Fulcio certificate names: SANs, the OIDC issuer extensions, and identity rules.

Certificates are made here with the extensions Fulcio writes (OIDC issuer v1 as raw text,
v2 as a DER UTF8String, the Fulcio otherName SAN), so each way of reading them is checked
on real DER, including the ones that must yield no identity.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mlspec_attest.signing.sigstore.identity import (
    CertificateIdentity,
    IdentityMismatchError,
    SigstoreIdentity,
    _der_utf8,
    check_identity,
)

V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
FULCIO_SAN = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
ISSUER = "https://oidc.example.test"


def utf8(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 128
    return bytes([0x0C, len(data)]) + data


def certificate(
    sans: list[x509.GeneralName] | None = None,
    v1: bytes | None = None,
    v2: bytes | None = None,
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sigstore-intermediate")])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(minutes=10))
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=True)
    if v1 is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(V1, v1), critical=False)
    if v2 is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(V2, v2), critical=False)
    return builder.sign(key, hashes.SHA256())


# --- DER UTF8String ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (b"\x0c\x03abc", "abc"),
        (b"\x0c\x00", ""),
        (b"\x0c\x81\x03abc", "abc"),  # long-form length
        (b"\x0c\x81\x00", ""),  # long form, nothing after the length bytes
        (b"\x0c\x82\x01\x00" + b"a" * 256, "a" * 256),
        (b"\x0c\x84\x00\x00\x00\x03abc", "abc"),  # four length bytes: the most allowed
        (b"\x0c", None),  # too short
        (b"", None),
        (b"\x13\x03abc", None),  # PrintableString, not UTF8String
        (b"\x0c\x04abc", None),  # length longer than the value
        (b"\x0c\x02abc", None),  # trailing bytes
        (b"\x0c\x80abc", None),  # indefinite length
        (b"\x0c\x85\x00\x00\x00\x00\x03abc", None),  # five length bytes
        (b"\x0c\x82\x00", None),  # length bytes cut off
        (b"\x0c\x02\xff\xfe", None),  # not UTF-8
    ],
)
def test_der_utf8(value: bytes, text: str | None) -> None:
    assert _der_utf8(value) == text


# --- SANs --------------------------------------------------------------------------------------


def test_email_and_uri_sans_in_order() -> None:
    cert = certificate(
        [
            x509.RFC822Name("alice@example.com"),
            x509.UniformResourceIdentifier("https://github.com/o/r/.github/workflows/w.yml@refs/heads/main"),
        ],
        v2=utf8(ISSUER),
    )  # fmt: skip
    found = CertificateIdentity.from_certificate(cert)
    assert found.sans == (
        "alice@example.com",
        "https://github.com/o/r/.github/workflows/w.yml@refs/heads/main",
    )
    assert found.issuer == ISSUER
    assert found.primary == "alice@example.com"


def test_fulcio_other_name_san_counts_and_others_do_not() -> None:
    cert = certificate(
        [
            x509.OtherName(FULCIO_SAN, utf8("bob")),
            x509.OtherName(x509.ObjectIdentifier("1.2.3.4"), utf8("mallory")),
            x509.OtherName(FULCIO_SAN, b"\x13\x03eve"),  # not a UTF8String: ignored
        ],
        v2=utf8(ISSUER),
    )
    assert CertificateIdentity.from_certificate(cert).sans == ("bob",)


def test_no_san_means_no_identity() -> None:
    found = CertificateIdentity.from_certificate(certificate(None, v2=utf8(ISSUER)))
    assert found.sans == ()
    assert found.primary == ""
    assert found.describe() == f"(no identity) (issuer {ISSUER})"


# --- the OIDC issuer ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("v1", "v2", "issuer"),
    [
        (None, utf8(ISSUER), ISSUER),
        (ISSUER.encode(), None, ISSUER),
        (ISSUER.encode(), utf8(ISSUER), ISSUER),  # both, agreeing
        (b"https://other.example", utf8(ISSUER), None),  # both, disagreeing: no issuer
        (None, ISSUER.encode(), None),  # v2 must be a DER UTF8String
        (b"\xff\xfe", None, None),  # v1 not UTF-8
        (None, None, None),
    ],
)
def test_issuer_extensions(v1: bytes | None, v2: bytes | None, issuer: str | None) -> None:
    cert = certificate([x509.RFC822Name("alice@example.com")], v1=v1, v2=v2)
    assert CertificateIdentity.from_certificate(cert).issuer == issuer


def test_identity_reports() -> None:
    found = CertificateIdentity(("b@example.com", "a@example.com"), ISSUER)
    assert found.describe() == f"b@example.com, a@example.com (issuer {ISSUER})"
    assert found.to_json() == {
        "identity": "b@example.com",
        "sans": ["b@example.com", "a@example.com"],
        "issuer": ISSUER,
    }
    assert CertificateIdentity((), None).describe() == "(no identity) (issuer unknown)"
    # the same signer whatever the SAN order; another issuer or SAN is another signer
    same = CertificateIdentity(("a@example.com", "b@example.com"), ISSUER)
    assert found.signer_id == same.signer_id
    assert found.signer_id.startswith("sigstore:") and len(found.signer_id) == 9 + 64
    assert CertificateIdentity(found.sans, "https://x").signer_id != found.signer_id
    assert CertificateIdentity(("a@example.com",), ISSUER).signer_id != found.signer_id
    assert CertificateIdentity(found.sans, None).signer_id != found.signer_id


# --- identity rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"issuer": "", "identity": "a"}, "a Sigstore identity needs an issuer"),
        ({"issuer": ISSUER}, "give exactly one of identity or identityRegex"),
        ({"issuer": ISSUER, "identity": "a", "identity_regex": "a"}, "give exactly one of identity or identityRegex"),
        ({"issuer": ISSUER, "identity_regex": "("}, "identityRegex '(': missing ), unterminated subpattern at position 0"),
    ],
)  # fmt: skip
def test_identity_rule_validation(kwargs: dict[str, str], error: str) -> None:
    with pytest.raises(ValueError) as info:
        SigstoreIdentity(**kwargs)
    assert str(info.value) == error


def test_identity_rule_round_trip_and_description() -> None:
    exact = SigstoreIdentity(ISSUER, identity="alice@example.com")
    regex = SigstoreIdentity(ISSUER, identity_regex=r".*@example\.com")
    assert exact.to_json() == {"issuer": ISSUER, "identity": "alice@example.com"}
    assert regex.to_json() == {"issuer": ISSUER, "identityRegex": r".*@example\.com"}
    assert SigstoreIdentity.from_json(exact.to_json()) == exact
    assert SigstoreIdentity.from_json(regex.to_json()) == regex
    assert exact.describe() == f"alice@example.com (issuer {ISSUER})"
    assert regex.describe() == rf"/.*@example\.com/ (issuer {ISSUER})"
    assert exact.keyid.startswith("sigstore:") and exact.keyid != regex.keyid
    with pytest.raises(ValueError, match="needs an issuer"):
        SigstoreIdentity.from_json({"identity": "alice@example.com"})


def test_check_identity_returns_every_matching_rule() -> None:
    cert = certificate([x509.RFC822Name("alice@example.com")], v2=utf8(ISSUER))
    exact = SigstoreIdentity(ISSUER, identity="alice@example.com")
    regex = SigstoreIdentity(ISSUER, identity_regex=r"[a-z]+@example\.com")
    other = SigstoreIdentity(ISSUER, identity="bob@example.com")
    found, matched = check_identity(cert, [other, exact, regex])
    assert found.sans == ("alice@example.com",)
    assert matched == (exact, regex)
    with pytest.raises(IdentityMismatchError) as info:
        check_identity(cert, [other])
    assert info.value.message == (
        f"signed by alice@example.com (issuer {ISSUER}), which no identity rule allows "
        f"(allowed: bob@example.com (issuer {ISSUER}))"
    )
    assert info.value.remedy == "sign with an allowed identity, or add this identity to the policy"
    assert info.value.allowed == (other,)
    with pytest.raises(IdentityMismatchError) as info:
        check_identity(cert, [])
    assert info.value.message.endswith("(allowed: none)")
