"""Certificates from base64 DER text, exactly: what mutation testing found unpinned.

``decode_certificate`` takes the text a JSON bundle holds (``rawBytes``) and nothing
else: the same base64 as bytes is not a certificate, and every refusal is the one
``ValueError("not valid DER")``.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mlspec_attest.signing.certificates import decode_certificate, fingerprint


def _self_signed() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "root")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


CERT = _self_signed()
RAW = base64.b64encode(CERT.public_bytes(serialization.Encoding.DER))


def test_base64_text_decodes() -> None:
    assert fingerprint(decode_certificate(RAW.decode())) == fingerprint(CERT)


@pytest.mark.parametrize(
    "value",
    [RAW, bytearray(RAW), None, 42, "", "not base64!", base64.b64encode(b"XXXX").decode()],
    ids=["bytes", "bytearray", "none", "int", "empty", "not-base64", "not-der"],
)
def test_anything_but_base64_der_text_is_not_valid_der(value: object) -> None:
    with pytest.raises(ValueError) as caught:
        decode_certificate(value)
    assert str(caught.value) == "not valid DER"
