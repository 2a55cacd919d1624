"""Certificate paths are searched with bounded work (review finding F2).

A bundle's certificates are the signer's to choose: 2N of them under one subject name,
two keys each signing the other, made the old depth-first search try about N^8 paths
(N = 8: over a minute). The search is now breadth-first, each certificate reached once,
its signature checks counted and capped; more than ten offered certificates are refused
before any is read. Real signatures, real certificates, nothing mocked.
"""

from __future__ import annotations

import base64
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.signing.certificates import (
    MAX_CHAIN_DEPTH,
    MAX_OFFERED_CERTIFICATES,
    ChainProblem,
    PathSearch,
    verify_chain,
)

from ..support import asset
from .conftest import Cli

START = datetime(2024, 1, 1, tzinfo=UTC)
Key = ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str, key: Key, issuer: str, signer: Key, *, ca: bool, serial: int = 1
) -> x509.Certificate:
    usage = x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(START)
        .not_valid_after(START + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(signer, hashes.SHA256())
    )


def _key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _honest_chain(
    intermediates: int,
) -> tuple[x509.Certificate, list[x509.Certificate], x509.Certificate]:
    """(leaf, intermediates from the leaf's issuer up, self-signed root)."""
    root_key = _key()
    root = _cert("root", root_key, "root", root_key, ca=True)
    issuer, issuer_key, chain = "root", root_key, []
    for i in range(intermediates):
        key = _key()
        chain.append(_cert(f"int-{i}", key, issuer, issuer_key, ca=True))
        issuer, issuer_key = f"int-{i}", key
    leaf = _cert("signer", _key(), issuer, issuer_key, ca=False)
    return leaf, chain[::-1], root


def _cross_signed(pairs: int) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The attack: a leaf under name X, and 2 x ``pairs`` CA certificates named X whose
    two keys sign each other, so every one of them issues every other of the other key."""
    a, b = _key(), _key()
    leaf = _cert("leaf", _key(), "X", b, ca=False)
    offered = []
    for i in range(pairs):
        offered.append(_cert("X", a, "X", b, ca=True, serial=100 + i))
        offered.append(_cert("X", b, "X", a, ca=True, serial=200 + i))
    return leaf, offered


def test_cross_signed_certificates_are_searched_with_bounded_checks() -> None:
    leaf, offered = _cross_signed(MAX_OFFERED_CERTIFICATES // 2)
    _, _, root = _honest_chain(0)
    search = PathSearch([root], offered)
    assert search.path(leaf) is None
    # each certificate is expanded once: (offered + leaf) x (offered + anchors) at most
    assert 0 < search.checks <= (len(offered) + 1) * (len(offered) + 1)
    problem = verify_chain(leaf, offered, [root])
    assert isinstance(problem, ChainProblem)
    assert problem.message == "the signing certificate does not chain to a trusted root"


def test_more_certificates_than_a_chain_needs_are_refused_before_any_is_read() -> None:
    leaf, offered = _cross_signed(8)  # the review's attack: 17 certificates in the bundle
    _, _, root = _honest_chain(0)
    with pytest.raises(MalformedDocumentError) as info:
        verify_chain(leaf, offered, [root])
    assert info.value.message == (
        "the signature's certificate chain holds 17 certificates; at most 11 "
        "(the signing certificate and its issuers) are read"
    )
    assert info.value.exit_code == 3


@pytest.mark.parametrize("intermediates", [0, 1, 2, MAX_CHAIN_DEPTH - 1])
def test_honest_chains_still_verify(intermediates: int) -> None:
    leaf, chain, root = _honest_chain(intermediates)
    assert verify_chain(leaf, chain, [root]) == [*chain, root]
    assert verify_chain(leaf, chain[::-1], [root]) == [*chain, root]  # any order
    if chain:  # the intermediates given as trusted, not by the bundle
        assert verify_chain(leaf, [], [*chain, root]) == [*chain, root]


def test_a_chain_longer_than_the_depth_limit_does_not_verify() -> None:
    leaf, chain, root = _honest_chain(MAX_CHAIN_DEPTH)
    problem = verify_chain(leaf, chain, [root])
    assert isinstance(problem, ChainProblem)
    assert problem.check == "certificate-chain"


def test_an_honest_path_is_found_among_cross_signed_noise() -> None:
    leaf, chain, root = _honest_chain(1)
    _, noise = _cross_signed(4)
    search = PathSearch([root], [*noise, *chain])
    assert search.path(leaf) == [*chain, root]
    assert verify_chain(leaf, [*noise, *chain], [root]) == [*chain, root]


def test_model_verify_refuses_the_attack_bundle(cli: Cli, tmp_path: Path) -> None:
    fixtures = asset("model-signing/cli-fixtures")
    ca = fixtures / "keys/certificate/ca-cert.pem"
    honest = tmp_path / "honest"
    shutil.copytree(fixtures / "v1.1.0-certificate", honest)
    result = cli("model", "verify", honest, "--signature", honest / "model.sig",
                 "--certificate-chain", ca)  # fmt: skip
    assert result.code == 0, result.out + result.err
    model = tmp_path / "model"
    shutil.copytree(fixtures / "v1.1.0-certificate", model)
    signature = model / "model.sig"
    doc = json.loads(signature.read_text())
    leaf, offered = _cross_signed(8)
    doc["verificationMaterial"]["x509CertificateChain"] = {
        "certificates": [
            {"rawBytes": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()}
            for c in [leaf, *offered]
        ]
    }
    signature.write_text(json.dumps(doc))
    result = cli("model", "verify", model, "--signature", signature, "--certificate-chain", ca)
    assert result.code == 3, result.out + result.err
    assert "certificate chain holds 17 certificates" in result.err
