"""How a model-signing signature's key is trusted: certificate chains, key hints, ECDSA hashes.

Every case is a real chain of real ECDSA certificates made here and a real signature
over a real model's manifest; each denial names the check that refused it. These are
the cases mutation testing (docs/testing.md) showed no other test would notice.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mlspec_attest.errors import BackendError, KeyLoadError, MalformedDocumentError, install_hint
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, pae
from mlspec_attest.interop.oms.manifest import build_manifest
from mlspec_attest.interop.oms.signature import (
    CertificateTrust,
    KeyTrust,
    ModelVerification,
    Serialization,
    SigstoreTrust,
    check_model,
)
from mlspec_attest.signing.dsse_pae import PAE_DSSE, PAE_LEGACY, legacy_pae
from mlspec_attest.signing.keys import LocalPublicKey
from mlspec_attest.signing.sigstore.trust_root import TRUSTED_ROOT_MEDIA_TYPE

from ..support import asset

NOW = datetime.now(UTC).replace(microsecond=0)
_KU_FALSE = dict.fromkeys(
    [
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    ],
    False,
)


@dataclass
class Node:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def issue(
    subject: str,
    issuer: Node | None,
    *,
    ca: bool | None = True,
    path_length: int | None = None,
    key_cert_sign: bool | None = True,
    digital_signature: bool | None = None,
    code_signing: bool = False,
    server_auth: bool = False,
    valid: tuple[datetime, datetime] = (NOW - timedelta(days=1), NOW + timedelta(days=365)),
    curve: ec.EllipticCurve | None = None,
) -> Node:
    """A certificate for ``subject`` signed by ``issuer`` (self-signed when None).

    ``ca=None`` leaves out basicConstraints; ``key_cert_sign=None`` and
    ``digital_signature=None`` leave out keyUsage (when both are None).
    """
    key = ec.generate_private_key(curve or ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    if key_cert_sign is not None or digital_signature is not None:
        builder = builder.add_extension(
            x509.KeyUsage(
                key_cert_sign=bool(key_cert_sign),
                digital_signature=bool(digital_signature),
                **_KU_FALSE,
            ),
            critical=True,
        )
    usages = [ExtendedKeyUsageOID.CODE_SIGNING] if code_signing else []
    usages += [ExtendedKeyUsageOID.SERVER_AUTH] if server_auth else []
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    signer = issuer.key if issuer else key
    return Node(builder.sign(signer, hashes.SHA256()), key)


def leaf_of(issuer: Node, **kw: Any) -> Node:
    kw.setdefault("code_signing", True)
    return issue("signer", issuer, ca=False, key_cert_sign=None, **kw)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"weights " * 64)
    (folder / "config.json").write_text('{"layers": 2}')
    return folder


def payload_of(model: Path) -> bytes:
    manifest, _ = build_manifest(model, Serialization())
    return manifest.payload()


def write_bundle(
    path: Path,
    payload: bytes,
    sig: bytes,
    material: dict[str, Any],
) -> Path:
    path.write_text(
        json.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "verificationMaterial": {**material, "tlogEntries": []},
                "dsseEnvelope": {
                    "payload": base64.b64encode(payload).decode(),
                    "payloadType": INTOTO_PAYLOAD_TYPE,
                    "signatures": [{"sig": base64.b64encode(sig).decode(), "keyid": ""}],
                },
            }
        )
    )
    return path


def chain_material(*certs: x509.Certificate) -> dict[str, Any]:
    raw = [
        {"rawBytes": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()}
        for c in certs
    ]
    return {"x509CertificateChain": {"certificates": raw}}


def certificate_signed(
    model: Path, leaf: Node, *chain: Node, payload: bytes | None = None, signed: bytes | None = None
) -> Path:
    """A bundle as `model_signing sign certificate` writes it: leaf first, then the chain.

    ``signed`` (default: the bundle's payload) is what the leaf key actually signs.
    """
    payload = payload if payload is not None else payload_of(model)
    message = pae(INTOTO_PAYLOAD_TYPE, signed if signed is not None else payload)
    sig = leaf.key.sign(message, ec.ECDSA(hashes.SHA256()))
    material = chain_material(leaf.cert, *(n.cert for n in chain))
    return write_bundle(model.parent / "model.sig", payload, sig, material)


def trust(tmp_path: Path, *anchors: Node) -> CertificateTrust:
    path = tmp_path / "trust.pem"
    path.write_bytes(b"".join(a.cert.public_bytes(serialization.Encoding.PEM) for a in anchors))
    return CertificateTrust.from_files([path])


def checks(report: ModelVerification) -> list[str]:
    return [p.check for p in report.problems]


def messages(report: ModelVerification) -> str:
    return " | ".join(p.message for p in report.problems)


# --- the DSSE signature of a certificate-signed model -----------------------------------------


def test_certificate_signature_over_another_payload_is_denied(model: Path, tmp_path: Path) -> None:
    root = issue("root", None)
    leaf = leaf_of(root)
    other = json.loads(payload_of(model))
    other["subject"][0]["digest"]["sha256"] = "00" * 32
    sig = certificate_signed(model, leaf, root, signed=json.dumps(other).encode())
    report = check_model(model, sig, trust(tmp_path, root))
    assert not report.passed
    assert checks(report) == ["signature"]
    assert messages(report) == (
        "the DSSE signature does not verify under the signing certificate's key"
    )


def test_certificate_signature_by_another_key_is_denied(model: Path, tmp_path: Path) -> None:
    root = issue("root", None)
    leaf = leaf_of(root)
    impostor = leaf_of(root)
    sig = certificate_signed(model, impostor, root)
    doc = json.loads(sig.read_text())
    doc["verificationMaterial"] = {**chain_material(leaf.cert, root.cert), "tlogEntries": []}
    sig.write_text(json.dumps(doc))
    report = check_model(model, sig, trust(tmp_path, root))
    assert checks(report) == ["signature"]


def test_certificate_signature_verifies(model: Path, tmp_path: Path) -> None:
    root = issue("root", None)
    inter = issue("inter", root)
    leaf = leaf_of(inter)
    report = check_model(model, certificate_signed(model, leaf, inter), trust(tmp_path, root))
    assert report.passed, messages(report)
    assert report.signer["root"]["subject"] == "CN=root"
    assert report.pae == PAE_DSSE


# --- path length, CA flags, key usage ----------------------------------------------------------


@pytest.mark.parametrize(
    ("root_len", "inter_len", "error"),
    [
        (0, None, "allows 0 intermediate(s) below it, chain has 1"),
        (1, None, None),
        (None, 0, None),  # the intermediate issues the leaf directly: 0 below it
    ],
)
def test_path_length_limit(
    root_len: int | None, inter_len: int | None, error: str | None, model: Path, tmp_path: Path
) -> None:
    root = issue("root", None, path_length=root_len)
    inter = issue("inter", root, path_length=inter_len)
    leaf = leaf_of(inter)
    report = check_model(model, certificate_signed(model, leaf, inter), trust(tmp_path, root))
    if error is None:
        assert report.passed, messages(report)
    else:
        assert checks(report) == ["certificate-chain"]
        assert messages(report) == f"issuer CN=root {error}"


def test_path_length_counts_every_intermediate(model: Path, tmp_path: Path) -> None:
    root = issue("root", None, path_length=1)
    upper = issue("upper", root)
    lower = issue("lower", upper, path_length=0)
    leaf = leaf_of(lower)
    report = check_model(
        model, certificate_signed(model, leaf, lower, upper), trust(tmp_path, root)
    )
    assert checks(report) == ["certificate-chain"]
    assert messages(report) == "issuer CN=root allows 1 intermediate(s) below it, chain has 2"
    # and an intermediate's own limit binds the intermediates below it
    root = issue("root", None)
    upper = issue("upper", root, path_length=0)
    lower = issue("lower", upper)
    leaf = leaf_of(lower)
    report = check_model(
        model, certificate_signed(model, leaf, lower, upper), trust(tmp_path, root)
    )
    assert checks(report) == ["certificate-chain"]
    assert messages(report) == "issuer CN=upper allows 0 intermediate(s) below it, chain has 1"


@pytest.mark.parametrize(
    ("inter_kw", "error"),
    [
        ({"ca": None}, "has no basicConstraints (not a CA)"),
        ({"ca": False}, "is not a CA"),
        (
            {"key_cert_sign": False, "digital_signature": True},
            "may not sign certificates (keyUsage)",
        ),
        ({"key_cert_sign": None}, None),  # no keyUsage at all: not restricted
    ],
)
def test_intermediate_must_be_a_ca(
    inter_kw: dict[str, Any], error: str | None, model: Path, tmp_path: Path
) -> None:
    root = issue("root", None)
    inter = issue("inter", root, **inter_kw)
    leaf = leaf_of(inter)
    report = check_model(model, certificate_signed(model, leaf, inter), trust(tmp_path, root))
    if error is None:
        assert report.passed, messages(report)
    else:
        assert checks(report) == ["certificate-chain"]
        assert messages(report) == f"issuer CN=inter {error}"


def test_a_root_without_basic_constraints_is_still_an_anchor(model: Path, tmp_path: Path) -> None:
    root = issue("root", None, ca=None, key_cert_sign=None)
    leaf = leaf_of(root)
    report = check_model(model, certificate_signed(model, leaf), trust(tmp_path, root))
    assert report.passed, messages(report)


def test_a_root_that_is_not_a_ca_is_refused(model: Path, tmp_path: Path) -> None:
    root = issue("root", None, ca=False)
    leaf = leaf_of(root)
    report = check_model(model, certificate_signed(model, leaf), trust(tmp_path, root))
    assert checks(report) == ["certificate-chain"]
    assert messages(report) == "issuer CN=root is not a CA"


@pytest.mark.parametrize(
    ("leaf_kw", "ok"),
    [
        ({"digital_signature": True, "code_signing": False}, True),
        ({"digital_signature": False, "code_signing": True}, True),
        ({"digital_signature": False, "code_signing": False, "server_auth": True}, False),
        ({"digital_signature": None, "code_signing": False, "server_auth": True}, False),
    ],
)
def test_leaf_usage(leaf_kw: dict[str, Any], ok: bool, model: Path, tmp_path: Path) -> None:
    root = issue("root", None)
    leaf = leaf_of(root, **leaf_kw)
    report = check_model(model, certificate_signed(model, leaf), trust(tmp_path, root))
    if ok:
        assert report.passed, messages(report)
    else:
        assert checks(report) == ["certificate-usage"]
        assert messages(report) == (
            "the signing certificate allows neither digital signatures nor code signing"
        )


# --- validity at issuance and chain depth ------------------------------------------------------


def test_issuer_valid_until_the_instant_the_leaf_was_issued(model: Path, tmp_path: Path) -> None:
    root = issue("root", None, valid=(NOW - timedelta(days=30), NOW + timedelta(days=30)))
    issued = NOW - timedelta(days=5)
    inter = issue("inter", root, valid=(NOW - timedelta(days=10), issued))
    leaf = leaf_of(inter, valid=(issued, NOW + timedelta(days=1)))
    report = check_model(model, certificate_signed(model, leaf, inter), trust(tmp_path, root))
    assert report.passed, messages(report)
    # one second later the intermediate had expired
    late = leaf_of(inter, valid=(issued + timedelta(seconds=1), NOW + timedelta(days=1)))
    report = check_model(model, certificate_signed(model, late, inter), trust(tmp_path, root))
    assert checks(report) == ["certificate-chain"]
    assert messages(report) == "CN=inter was not valid when the signing certificate was issued"


def test_issuer_not_yet_valid_when_the_leaf_was_issued(model: Path, tmp_path: Path) -> None:
    root = issue("root", None, valid=(NOW - timedelta(days=30), NOW + timedelta(days=30)))
    inter = issue("inter", root, valid=(NOW - timedelta(days=2), NOW + timedelta(days=30)))
    leaf = leaf_of(inter, valid=(NOW - timedelta(days=3), NOW + timedelta(days=1)))
    report = check_model(model, certificate_signed(model, leaf, inter), trust(tmp_path, root))
    assert checks(report) == ["certificate-chain"]
    assert messages(report) == "CN=inter was not valid when the signing certificate was issued"


def _long_chain(intermediates: int) -> tuple[Node, list[Node]]:
    root = issue("root", None)
    chain: list[Node] = []
    above = root
    for i in range(intermediates):
        above = issue(f"inter-{i}", above)
        chain.append(above)
    return root, chain


@pytest.mark.parametrize(("intermediates", "ok"), [(7, True), (8, False)])
def test_chain_depth_limit(intermediates: int, ok: bool, model: Path, tmp_path: Path) -> None:
    root, chain = _long_chain(intermediates)
    leaf = leaf_of(chain[-1])
    sig = certificate_signed(model, leaf, *reversed(chain))
    report = check_model(model, sig, trust(tmp_path, root))
    if ok:
        assert report.passed, messages(report)
    else:
        assert checks(report) == ["certificate-chain"]
        assert messages(report) == "the signing certificate does not chain to a trusted root"


def test_trusted_intermediates_help_but_do_not_anchor(model: Path, tmp_path: Path) -> None:
    root = issue("root", None)
    inter = issue("inter", root)
    leaf = leaf_of(inter)
    # the bundle carries only the leaf; the verifier supplies intermediate and root
    report = check_model(model, certificate_signed(model, leaf), trust(tmp_path, inter, root))
    assert report.passed, messages(report)
    report = check_model(model, certificate_signed(model, leaf), trust(tmp_path, inter))
    assert checks(report) == ["certificate-chain"]
    assert messages(report) == "none of the certificates given is a self-signed root"


# --- key trust: hints and ECDSA hashes ---------------------------------------------------------


def _pub(tmp_path: Path, key: ec.EllipticCurvePrivateKey, name: str = "signer.pub") -> Path:
    path = tmp_path / name
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def _keyid(key: ec.EllipticCurvePrivateKey) -> str:
    return LocalPublicKey(key.public_key()).keyid


def key_signed(
    model: Path, key: ec.EllipticCurvePrivateKey, material: dict[str, Any], message: bytes
) -> Path:
    sig = key.sign(message, ec.ECDSA(hashes.SHA256()))
    return write_bundle(model.parent / "model.sig", payload_of(model), sig, material)


def test_key_hint_is_compared_case_insensitively(model: Path, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    message = pae(INTOTO_PAYLOAD_TYPE, payload_of(model))
    material = {"publicKey": {"hint": _keyid(key).upper()}}
    report = check_model(
        model, key_signed(model, key, material, message), KeyTrust.from_file(_pub(tmp_path, key))
    )
    assert report.passed, messages(report)


def test_key_hint_naming_another_key_is_denied(model: Path, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    message = pae(INTOTO_PAYLOAD_TYPE, payload_of(model))
    sig = key_signed(model, key, {"publicKey": {"hint": _keyid(other)}}, message)
    report = check_model(model, sig, KeyTrust.from_file(_pub(tmp_path, key)))
    assert checks(report) == ["key-hint"]
    assert report.problems[0].found == _keyid(other)
    assert report.problems[0].expected == _keyid(key)


@pytest.mark.parametrize("encoding", ["pem", "der"])
def test_raw_bytes_naming_the_key(encoding: str, model: Path, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    fmt = serialization.Encoding.PEM if encoding == "pem" else serialization.Encoding.DER
    raw = key.public_key().public_bytes(fmt, serialization.PublicFormat.SubjectPublicKeyInfo)
    material = {"publicKey": {"rawBytes": base64.b64encode(raw).decode()}}
    message = pae(INTOTO_PAYLOAD_TYPE, payload_of(model))
    sig = key_signed(model, key, material, message)
    report = check_model(model, sig, KeyTrust.from_file(_pub(tmp_path, key)))
    assert report.passed, messages(report)
    assert report.notes == ("older signature format: publicKey.rawBytes instead of publicKey.hint",)
    # the same bundle naming another key's bytes is denied
    other = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(fmt, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    doc = json.loads(sig.read_text())
    doc["verificationMaterial"]["publicKey"]["rawBytes"] = base64.b64encode(other).decode()
    sig.write_text(json.dumps(doc))
    report = check_model(model, sig, KeyTrust.from_file(_pub(tmp_path, key)))
    assert [p.to_json() for p in report.problems] == [
        {
            "check": "key-hint",
            "message": "the signature's publicKey.rawBytes is a different key than the one given",
            "expected": _keyid(key),
            "found": LocalPublicKey.from_pem(
                serialization.load_der_public_key(other).public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                if encoding == "der"
                else other
            ).keyid,
            "remedy": "verify with the public key that signed the model",
        }
    ]


@pytest.mark.parametrize(
    ("curve", "algorithm", "legacy", "ok"),
    [
        (ec.SECP384R1(), hashes.SHA384(), False, True),
        (ec.SECP384R1(), hashes.SHA256(), False, False),  # DSSE: the curve's hash only
        (ec.SECP521R1(), hashes.SHA512(), False, True),
        (ec.SECP521R1(), hashes.SHA384(), False, False),
        (ec.SECP384R1(), hashes.SHA384(), True, True),  # legacy PAE: the curve's hash
        (ec.SECP384R1(), hashes.SHA256(), True, True),  # legacy PAE: or sha256
    ],
)
def test_ecdsa_hash_follows_the_curve(
    curve: ec.EllipticCurve,
    algorithm: hashes.HashAlgorithm,
    legacy: bool,
    ok: bool,
    model: Path,
    tmp_path: Path,
) -> None:
    key = ec.generate_private_key(curve)
    payload = payload_of(model)
    message = legacy_pae(payload) if legacy else pae(INTOTO_PAYLOAD_TYPE, payload)
    sig = key.sign(message, ec.ECDSA(algorithm))
    bundle = write_bundle(
        model.parent / "model.sig", payload, sig, {"publicKey": {"hint": _keyid(key)}}
    )
    report = check_model(model, bundle, KeyTrust.from_file(_pub(tmp_path, key)))
    if ok:
        assert report.passed, messages(report)
        assert report.pae == (PAE_LEGACY if legacy else PAE_DSSE)
    else:
        assert checks(report) == ["signature"]
        assert messages(report) == "the DSSE signature does not verify under the public key given"


# --- what the trust says about itself, and malformed chains --------------------------------------


def test_certificate_trust_describes_only_its_roots(tmp_path: Path) -> None:
    root = issue("root", None)
    inter = issue("inter", root)
    described = trust(tmp_path, inter, root).describe()
    assert described == {
        "method": "certificate",
        "roots": [{"subject": "CN=root", "sha256": root.cert.fingerprint(hashes.SHA256()).hex()}],
    }


@pytest.mark.parametrize("chain", [[], "not-an-object", {"certificates": []}, {}])
def test_certificate_chain_without_certificates_is_bad_input(
    chain: Any, model: Path, tmp_path: Path
) -> None:
    root = issue("root", None)
    sig = certificate_signed(model, leaf_of(root), root)
    doc = json.loads(sig.read_text())
    doc["verificationMaterial"]["x509CertificateChain"] = chain
    sig.write_text(json.dumps(doc))
    with pytest.raises(MalformedDocumentError) as info:
        check_model(model, sig, trust(tmp_path, root))
    if isinstance(chain, dict):
        assert info.value.message == "signature: x509CertificateChain has no certificates"
    else:  # refused by the one bundle loader, before the model-signing checks
        assert info.value.message.endswith(
            "model.sig: verificationMaterial.x509CertificateChain is not an object"
        )


# --- the whole report: signer, check, expected, found, remedy -------------------------------------


def _fp(node: Node) -> str:
    return node.cert.fingerprint(hashes.SHA256()).hex()


def test_certificate_report_names_signer_and_root(model: Path, tmp_path: Path) -> None:
    root = issue("root", None)
    inter = issue("inter", root)
    leaf = leaf_of(inter)
    report = check_model(model, certificate_signed(model, leaf, inter), trust(tmp_path, root))
    assert report.passed, messages(report)
    assert report.method == "certificate"
    assert report.signer == {
        "method": "certificate",
        "subject": "CN=signer",
        "issuer": "CN=inter",
        "sha256": _fp(leaf),
        "root": {"subject": "CN=root", "sha256": _fp(root)},
    }


def test_unchained_certificate_report(model: Path, tmp_path: Path) -> None:
    root, other_root = issue("root", None), issue("other-root", None)
    stranger = issue("stranger", None)
    leaf = leaf_of(stranger)
    report = check_model(model, certificate_signed(model, leaf), trust(tmp_path, root, other_root))
    assert report.method == "certificate"
    assert report.signer == {
        "method": "certificate",
        "subject": "CN=signer",
        "issuer": "CN=stranger",
        "sha256": _fp(leaf),
    }
    assert [p.to_json() for p in report.problems] == [
        {
            "check": "certificate-chain",
            "message": "the signing certificate does not chain to a trusted root",
            "expected": "a chain to one of: CN=root, CN=other-root",
            "found": "leaf CN=signer issued by CN=stranger",
            "remedy": "pass the root CA that issued the signer's chain with certificate_chain",
        }
    ]


def test_no_root_given_report(model: Path, tmp_path: Path) -> None:
    root = issue("root", None)
    inter = issue("inter", root)
    report = check_model(
        model, certificate_signed(model, leaf_of(inter), inter), trust(tmp_path, inter)
    )
    assert [p.to_json() for p in report.problems] == [
        {
            "check": "certificate-chain",
            "message": "none of the certificates given is a self-signed root",
            "remedy": "pass the root CA certificate with certificate_chain",
        }
    ]


def test_expired_issuer_report_says_when_it_was_valid(model: Path, tmp_path: Path) -> None:
    root = issue("root", None, valid=(NOW - timedelta(days=30), NOW + timedelta(days=30)))
    inter = issue("inter", root, valid=(NOW - timedelta(days=20), NOW - timedelta(days=10)))
    leaf = leaf_of(inter, valid=(NOW - timedelta(days=5), NOW + timedelta(days=1)))
    report = check_model(model, certificate_signed(model, leaf, inter), trust(tmp_path, root))
    [problem] = report.problems
    assert problem.to_json() == {
        "check": "certificate-chain",
        "message": "CN=inter was not valid when the signing certificate was issued",
        "found": f"valid {inter.cert.not_valid_before_utc} .. {inter.cert.not_valid_after_utc}",
    }


def test_bad_signature_report(model: Path, tmp_path: Path) -> None:
    root = issue("root", None)
    sig = certificate_signed(model, leaf_of(root), root, signed=b"{}")
    [problem] = check_model(model, sig, trust(tmp_path, root)).problems
    assert problem.to_json() == {
        "check": "signature",
        "message": "the DSSE signature does not verify under the signing certificate's key",
        "remedy": "the signature or its payload was altered",
    }


def test_rsa_signing_certificate_is_refused(model: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    root = issue("root", None)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa-signer")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(root.cert.subject)
        .public_key(rsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(root.key, hashes.SHA256())
    )
    payload = payload_of(model)
    sig = rsa_key.sign(pae(INTOTO_PAYLOAD_TYPE, payload), padding.PKCS1v15(), hashes.SHA256())
    bundle = write_bundle(model.parent / "model.sig", payload, sig, chain_material(cert, root.cert))
    [problem] = check_model(model, bundle, trust(tmp_path, root)).problems
    assert problem.to_json() == {
        "check": "signature",
        "message": "the signing certificate holds a RSAPublicKey; model-signing uses ECDSA",
    }


def test_single_certificate_field_is_read(model: Path, tmp_path: Path) -> None:
    """Older bundles carry the leaf in ``certificate`` rather than a chain."""
    root = issue("root", None)
    leaf = leaf_of(root)
    sig = certificate_signed(model, leaf)
    doc = json.loads(sig.read_text())
    raw = doc["verificationMaterial"].pop("x509CertificateChain")["certificates"][0]
    doc["verificationMaterial"]["certificate"] = raw
    sig.write_text(json.dumps(doc))
    report = check_model(model, sig, trust(tmp_path, root))
    assert report.passed, messages(report)
    assert report.signer["sha256"] == _fp(leaf)


def test_bundle_without_a_certificate_is_bad_input(model: Path, tmp_path: Path) -> None:
    root = issue("root", None)
    sig = certificate_signed(model, leaf_of(root))
    doc = json.loads(sig.read_text())
    doc["verificationMaterial"] = {"tlogEntries": []}
    sig.write_text(json.dumps(doc))
    with pytest.raises(MalformedDocumentError) as info:
        check_model(model, sig, trust(tmp_path, root))
    assert info.value.message == "signature: the bundle carries no certificate"
    assert info.value.remedy == "verify a key-signed model with public_key"


@pytest.mark.parametrize(
    "case", ["not-an-object", "no-raw-bytes", "not-text", "junk-in-base64", "not-der"]
)
def test_certificate_that_is_not_der_is_bad_input(case: str, model: Path, tmp_path: Path) -> None:
    root = issue("root", None)
    leaf = leaf_of(root)
    sig = certificate_signed(model, leaf, root)
    doc = json.loads(sig.read_text())
    good = doc["verificationMaterial"]["x509CertificateChain"]["certificates"][1]["rawBytes"]
    bad: Any = {
        "not-an-object": good,
        "no-raw-bytes": {"bytes": good},
        "not-text": {"rawBytes": 12345},
        # a valid certificate with a character outside base64: strict decoding refuses it
        "junk-in-base64": {"rawBytes": good[:8] + "!" + good[8:]},
        "not-der": {"rawBytes": base64.b64encode(b"not a certificate").decode()},
    }[case]
    doc["verificationMaterial"]["x509CertificateChain"]["certificates"][1] = bad
    sig.write_text(json.dumps(doc))
    with pytest.raises(MalformedDocumentError) as info:
        check_model(model, sig, trust(tmp_path, root))
    assert info.value.message == "signature: certificate 1 is not valid DER"


def test_key_report(model: Path, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    message = pae(INTOTO_PAYLOAD_TYPE, payload_of(model))
    trust_key = KeyTrust.from_file(_pub(tmp_path, key))
    described = {"method": "key", "keyid": _keyid(key), "keyDetails": "PKIX_ECDSA_P256_SHA_256"}
    report = check_model(
        model, key_signed(model, key, {"publicKey": {"hint": _keyid(key)}}, message), trust_key
    )
    assert report.passed, messages(report)
    assert (report.method, report.signer) == ("key", described)
    # another key's hint
    sig = key_signed(model, key, {"publicKey": {"hint": _keyid(other)}}, message)
    report = check_model(model, sig, trust_key)
    assert (report.method, report.signer) == ("key", described)
    assert [p.to_json() for p in report.problems] == [
        {
            "check": "key-hint",
            "message": "the signature names a different public key than the one given",
            "expected": _keyid(key),
            "found": _keyid(other),
            "remedy": "verify with the public key that signed the model",
        }
    ]
    # signed by another key, naming none
    sig = key_signed(model, other, {}, message)
    report = check_model(model, sig, trust_key)
    assert (report.method, report.signer) == ("key", described)
    assert [p.to_json() for p in report.problems] == [
        {
            "check": "signature",
            "message": "the DSSE signature does not verify under the public key given",
            "expected": f"a signature by key {_keyid(key)}",
            "remedy": "the signature or its payload was altered, or another key signed it",
        }
    ]


def test_key_bundles_naming_no_key_say_so(model: Path, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    message = pae(INTOTO_PAYLOAD_TYPE, payload_of(model))
    trust_key = KeyTrust.from_file(_pub(tmp_path, key))
    report = check_model(model, key_signed(model, key, {}, message), trust_key)
    assert report.passed, messages(report)
    assert "the bundle names no public key; checked with the key given" in report.notes
    report = check_model(model, key_signed(model, key, {"publicKey": {}}, message), trust_key)
    assert report.passed, messages(report)
    assert "the bundle's publicKey carries no hint; checked with the key given" in report.notes


@pytest.mark.parametrize(
    ("material", "error"),
    [
        ({"publicKey": "abc"}, "model.sig: verificationMaterial.publicKey is not an object"),
        ({"publicKey": {"hint": 7}}, "model.sig: verificationMaterial.publicKey.hint is not text"),
        (
            {"publicKey": {"rawBytes": "%%%"}},
            "signature: publicKey.rawBytes is not a base64 public key",
        ),
        (
            {"publicKey": {"rawBytes": 7}},
            "signature: publicKey.rawBytes is not a base64 public key",
        ),
    ],
)
def test_malformed_key_material_is_bad_input(
    material: dict[str, Any], error: str, model: Path, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    message = pae(INTOTO_PAYLOAD_TYPE, payload_of(model))
    sig = key_signed(model, key, material, message)
    with pytest.raises(MalformedDocumentError) as info:
        check_model(model, sig, KeyTrust.from_file(_pub(tmp_path, key)))
    assert info.value.message.endswith(error)


# --- loading the trust: certificate files and Sigstore trust roots -------------------------------

FIXTURES = asset("model-signing/cli-fixtures")
PROD = asset("model-signing/trust-config/prod_client_trust_config.json")
SIGSTORE_SIGNER = ("stefanb@us.ibm.com", "https://sigstore.verify.ibm.com/oauth2")


def test_certificate_files_that_cannot_be_used(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(KeyLoadError) as info:
        CertificateTrust.from_files([missing])
    assert info.value.message == f"certificate file {missing}: file not found"
    folder = tmp_path / "folder.pem"
    folder.mkdir()
    with pytest.raises(KeyLoadError) as info:
        CertificateTrust.from_files([folder])
    assert info.value.message == (
        f"certificate file {folder}: cannot read (is a directory, expected a file)"
    )
    text = tmp_path / "text.pem"
    text.write_text("not a certificate")
    with pytest.raises(KeyLoadError) as info:
        CertificateTrust.from_files([text])
    assert info.value.message == f"{text}: no PEM certificates in the file"
    with pytest.raises(KeyLoadError) as info:
        CertificateTrust.from_files([])
    assert info.value.message == "no trusted certificates given"


def test_certificate_trust_remembers_its_files(tmp_path: Path) -> None:
    root = issue("root", None)
    loaded = trust(tmp_path, root)
    assert loaded.sources == (str(tmp_path / "trust.pem"),)
    assert loaded.certificates == (root.cert,)


def test_sigstore_trust_describes_its_config(tmp_path: Path) -> None:
    identity, issuer = SIGSTORE_SIGNER
    described = SigstoreTrust(PROD, identity, issuer).describe()
    assert described == {
        "method": "sigstore",
        "identity": identity,
        "issuer": issuer,
        "trustConfig": {"path": str(PROD), "sha256": hashlib.sha256(PROD.read_bytes()).hexdigest()},
    }
    gone = tmp_path / "gone.json"
    assert SigstoreTrust(gone, identity, issuer).describe()["trustConfig"] == {"path": str(gone)}


def _sigstore_model(tmp_path: Path) -> Path:
    folder = tmp_path / "v1.1.0-sigstore"
    shutil.copytree(FIXTURES / "v1.1.0-sigstore", folder)
    return folder


@pytest.mark.parametrize("form", ["client-trust-config", "trusted-root"])
def test_sigstore_signature_under_either_trust_form(form: str, tmp_path: Path) -> None:
    folder = _sigstore_model(tmp_path)
    config = PROD
    if form == "trusted-root":
        config = tmp_path / "trusted_root.json"
        config.write_text(json.dumps(json.loads(PROD.read_text())["trustedRoot"]))
    report = check_model(folder, folder / "model.sig", SigstoreTrust(config, *SIGSTORE_SIGNER))
    assert report.passed, messages(report)
    assert report.method == "sigstore"
    assert report.pae == PAE_DSSE
    assert report.signer["trustConfig"]["path"] == str(config)
    assert set(report.signer["certificate"]) == {"sha256"}


def test_sigstore_wrong_identity_report(tmp_path: Path) -> None:
    folder = _sigstore_model(tmp_path)
    _, issuer = SIGSTORE_SIGNER
    report = check_model(
        folder, folder / "model.sig", SigstoreTrust(PROD, "mallory@example.com", issuer)
    )
    assert report.method == "sigstore"
    assert report.signer["identity"] == "mallory@example.com"
    [problem] = report.problems
    assert problem.check == "sigstore"
    assert problem.message.startswith("Sigstore verification failed: ")
    assert problem.expected == f"mallory@example.com via {issuer} under {PROD}"
    assert problem.remedy == (
        "check identity, issuer and that trust_config is the instance that issued the signature"
    )


NEITHER = (
    "is neither a Sigstore TrustedRoot "
    "(application/vnd.dev.sigstore.trustedroot+json;version=0.1) nor a ClientTrustConfig"
)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ({"mediaType": "application/json"}, f"mediaType 'application/json' {NEITHER}"),
        ({}, f"mediaType None {NEITHER}"),
        ([], "a Sigstore trust root must be a JSON object"),
        # the one trust-root loader matches mediaType exactly, never by substring
        ({"mediaType": "x-trustedroot"}, f"mediaType 'x-trustedroot' {NEITHER}"),
        ({"mediaType": "clienttrustconfig"}, f"mediaType 'clienttrustconfig' {NEITHER}"),
    ],
)  # fmt: skip
def test_unusable_sigstore_trust_config(content: Any, error: str, tmp_path: Path) -> None:
    folder = _sigstore_model(tmp_path)
    config = tmp_path / "trust.json"
    config.write_text(json.dumps(content))
    with pytest.raises(MalformedDocumentError) as info:
        check_model(folder, folder / "model.sig", SigstoreTrust(config, *SIGSTORE_SIGNER))
    assert info.value.message == f"{config}: {error}"


def test_sigstore_trust_root_sigstore_cannot_use(tmp_path: Path) -> None:
    folder = _sigstore_model(tmp_path)
    config = tmp_path / "trust.json"
    config.write_text(json.dumps({"mediaType": TRUSTED_ROOT_MEDIA_TYPE}))
    with pytest.raises(MalformedDocumentError) as info:
        check_model(folder, folder / "model.sig", SigstoreTrust(config, *SIGSTORE_SIGNER))
    assert info.value.message.startswith(f"trust root {config}: not a usable TrustedRoot (")


def test_sigstore_signature_that_is_no_bundle(tmp_path: Path) -> None:
    folder = _sigstore_model(tmp_path)
    (folder / "model.sig").write_text('{"mediaType": "x"}')
    with pytest.raises(MalformedDocumentError) as info:
        check_model(folder, folder / "model.sig", SigstoreTrust(PROD, *SIGSTORE_SIGNER))
    assert info.value.message == f"signature {folder / 'model.sig'}: missing verificationMaterial"
    (folder / "model.sig").write_text('{"a": 1, "a": 2}')
    with pytest.raises(MalformedDocumentError) as info:
        check_model(folder, folder / "model.sig", SigstoreTrust(PROD, *SIGSTORE_SIGNER))
    assert info.value.message.startswith(f"signature {folder / 'model.sig'}: ")
    assert "duplicate" in info.value.message


def test_key_trust_loads_only_elliptic_curve_keys(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pub = tmp_path / "ed.pub"
    pub.write_bytes(
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyLoadError) as info:
        KeyTrust.from_file(pub)
    assert info.value.message == f"{pub}: model-signing keys are ECDSA P-256, P-384 or P-521"
    assert info.value.remedy == "create one with `signing.keys.generate_key(KeyType('ecdsa-p256'))`"
    good = _pub(tmp_path, ec.generate_private_key(ec.SECP384R1()))
    assert KeyTrust.from_file(good).source == str(good)


def test_raw_bytes_with_junk_in_the_base64_is_bad_input(model: Path, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    raw = b64 = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    material = {"publicKey": {"rawBytes": raw[:6] + "!" + raw[6:]}}
    sig = key_signed(model, key, material, pae(INTOTO_PAYLOAD_TYPE, payload_of(model)))
    with pytest.raises(MalformedDocumentError) as info:
        check_model(model, sig, KeyTrust.from_file(_pub(tmp_path, key)))
    assert info.value.message == "signature: publicKey.rawBytes is not a base64 public key"
    del b64


def test_raw_bytes_holding_two_pem_keys_is_bad_input(model: Path, tmp_path: Path) -> None:
    # the first block won: which key the bundle named depended on the order in it
    key = ec.generate_private_key(ec.SECP256R1())
    pems = [
        k.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for k in (key, ec.generate_private_key(ec.SECP256R1()))
    ]
    material = {"publicKey": {"rawBytes": base64.b64encode(b"".join(pems)).decode()}}
    sig = key_signed(model, key, material, pae(INTOTO_PAYLOAD_TYPE, payload_of(model)))
    with pytest.raises(KeyLoadError) as info:
        check_model(model, sig, KeyTrust.from_file(_pub(tmp_path, key)))
    assert info.value.message.startswith("signature: publicKey.rawBytes: 2 PEM blocks")


def test_unreadable_signature_files_are_named(model: Path, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    trust_key = KeyTrust.from_file(_pub(tmp_path, key))
    sig = tmp_path / "broken.sig"
    sig.write_text("{not json")
    with pytest.raises(MalformedDocumentError) as info:
        check_model(model, sig, trust_key)
    assert info.value.message.startswith(f"signature {sig}: ")
    sig.write_text(json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}))
    with pytest.raises(MalformedDocumentError) as info:
        check_model(model, sig, trust_key)
    assert info.value.message.startswith(f"signature {sig}: bundle carries no DSSE envelope")
    folder = _sigstore_model(tmp_path)
    config = tmp_path / "config.json"
    config.write_text("{not json")
    with pytest.raises(MalformedDocumentError) as info:
        check_model(folder, folder / "model.sig", SigstoreTrust(config, *SIGSTORE_SIGNER))
    assert info.value.message.startswith(f"trust root {config}: not valid JSON")


def test_sigstore_signatures_need_sigstore_python(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    folder = _sigstore_model(tmp_path)
    monkeypatch.setitem(sys.modules, "sigstore.verify", None)
    with pytest.raises(BackendError) as info:
        check_model(folder, folder / "model.sig", SigstoreTrust(PROD, *SIGSTORE_SIGNER))
    assert info.value.message.startswith("verifying Sigstore model signatures needs sigstore")
    assert info.value.remedy == install_hint(None)
