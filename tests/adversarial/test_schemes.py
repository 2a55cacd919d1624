"""Signature-scheme confusion: signatures of one algorithm, hash, padding or encoding
presented where another is expected, malleated signatures, and keys of types the
policy must not accept.

The functionaries use one key of each supported type: data-engineer ECDSA P-256,
ml-engineer Ed25519, ml-reviewer ECDSA P-384, release-engineer RSA-3072 (PSS).
Every signature below is made for real, with the named private key.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from mlspec_attest.formats.dsse import pae

from ..support import Pipeline, read_bundle
from .kit import Cli, Scenario, case, edit_bundle, expect, scenario

M = __name__
P384_ORDER = int(
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    16,
)
ED25519_L = 2**252 + 27742317777372353535851937790883648493


def message_of(path: Path) -> bytes:
    """The PAE bytes the bundle's signature covers."""
    envelope = read_bundle(path)["dsseEnvelope"]
    return pae(envelope["payloadType"], base64.b64decode(envelope["payload"]))


def set_sig(path: Path, sig: bytes) -> None:
    edit_bundle(
        path,
        lambda d: d["dsseEnvelope"]["signatures"][0].__setitem__(
            "sig", base64.b64encode(sig).decode()
        ),
    )


def sig_of(path: Path) -> bytes:
    return base64.b64decode(read_bundle(path)["dsseEnvelope"]["signatures"][0]["sig"])


# ------------------------------------------------------------ wrong algorithm / hash / padding
def _p256_in_p384(p: Pipeline) -> Path:
    path = p.bundle_path("train", "ml-reviewer")
    key = p.keys["data-engineer"].signer.private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    set_sig(path, key.sign(message_of(path), ec.ECDSA(hashes.SHA256())))
    return path


def _ed25519_in_p384(p: Pipeline) -> Path:
    path = p.bundle_path("train", "ml-reviewer")
    set_sig(path, p.keys["ml-engineer"].signer.sign(message_of(path)))
    return path


def _p384_with_sha256(p: Pipeline) -> Path:
    path = p.bundle_path("train", "ml-reviewer")
    key = p.keys["ml-reviewer"].signer.private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    set_sig(path, key.sign(message_of(path), ec.ECDSA(hashes.SHA256())))
    return path


def _p384_raw_rs(p: Pipeline) -> Path:
    path = p.bundle_path("train", "ml-reviewer")
    r, s = decode_dss_signature(sig_of(path))
    set_sig(path, r.to_bytes(48, "big") + s.to_bytes(48, "big"))  # IEEE P1363, not DER
    return path


def _rsa_key(p: Pipeline) -> rsa.RSAPrivateKey:
    key = p.keys["release-engineer"].signer.private_key
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _rsa_pkcs1(p: Pipeline) -> Path:
    path = p.bundle_path("package")
    set_sig(path, _rsa_key(p).sign(message_of(path), padding.PKCS1v15(), hashes.SHA256()))
    return path


def _rsa_pss_sha512(p: Pipeline) -> Path:
    path = p.bundle_path("package")
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=padding.PSS.DIGEST_LENGTH)
    set_sig(path, _rsa_key(p).sign(message_of(path), pss, hashes.SHA512()))
    return path


def _rsa_pss_max_salt(p: Pipeline) -> Path:
    path = p.bundle_path("package")
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    set_sig(path, _rsa_key(p).sign(message_of(path), pss, hashes.SHA256()))
    return path


def _ed25519_s_plus_l(p: Pipeline) -> Path:
    path = p.bundle_path("train", "ml-engineer")
    sig = sig_of(path)
    s = int.from_bytes(sig[32:], "little") + ED25519_L  # same point equation, non-canonical S
    set_sig(path, sig[:32] + s.to_bytes(32, "little"))
    return path


def _raw_payload_not_pae(p: Pipeline) -> Path:
    path = p.bundle_path("package")
    payload = base64.b64decode(read_bundle(path)["dsseEnvelope"]["payload"])
    set_sig(path, p.keys["release-engineer"].signer.sign(payload))  # no PAE around it
    return path


def _pae_other_type(p: Pipeline) -> Path:
    path = p.bundle_path("package")
    payload = base64.b64decode(read_bundle(path)["dsseEnvelope"]["payload"])
    message = pae("application/json", payload)  # the envelope still says in-toto
    set_sig(path, p.keys["release-engineer"].signer.sign(message))
    return path


@pytest.mark.parametrize(
    ("case", "attack"),
    [
        case(
            M,
            "p256-signature-against-p384-key",
            "sign the reviewer's train PAE with a P-256 key (data engineer) and keep the P-384 hint",
            1,
            ["signature", "threshold"],
            "signature does not verify",
            _p256_in_p384,
        ),
        case(
            M,
            "ed25519-signature-against-ecdsa-key",
            "put the ML engineer's Ed25519 signature in the reviewer's (P-384) train bundle",
            1,
            ["signature", "threshold"],
            "signature does not verify",
            _ed25519_in_p384,
        ),
        case(
            M,
            "p384-key-signing-with-sha256",
            "the reviewer's own P-384 key signs with SHA-256 instead of SHA-384",
            1,
            ["signature", "threshold"],
            "signature does not verify",
            _p384_with_sha256,
        ),
        case(
            M,
            "ecdsa-raw-r-s-encoding",
            "re-encode the reviewer's valid ECDSA signature as raw r||s (P1363) instead of DER",
            1,
            ["signature", "threshold"],
            "signature does not verify",
            _p384_raw_rs,
        ),
        case(
            M,
            "rsa-pkcs1v15-instead-of-pss",
            "the release engineer's RSA key signs package with PKCS#1 v1.5 padding",
            1,
            ["signature", "stage-missing"],
            "signature does not verify",
            _rsa_pkcs1,
        ),
        case(
            M,
            "rsa-pss-sha512",
            "the release engineer's RSA key signs package with PSS over SHA-512",
            1,
            ["signature", "stage-missing"],
            "signature does not verify",
            _rsa_pss_sha512,
        ),
        case(
            M,
            "rsa-pss-max-salt-length",
            "the release engineer's RSA key signs package with PSS and a maximal salt",
            1,
            ["signature", "stage-missing"],
            "signature does not verify",
            _rsa_pss_max_salt,
        ),
        case(
            M,
            "ed25519-non-canonical-s",
            "add the group order L to the S half of the ML engineer's Ed25519 signature",
            1,
            ["signature", "threshold"],
            "signature does not verify",
            _ed25519_s_plus_l,
        ),
        case(
            M,
            "signature-over-raw-payload-not-pae",
            "the release engineer signs package's payload bytes directly, without DSSE's PAE",
            1,
            ["signature", "stage-missing"],
            "signature does not verify",
            _raw_payload_not_pae,
        ),
        case(
            M,
            "signature-over-pae-of-other-type",
            "the release engineer signs PAE('application/json', payload); the envelope says in-toto",
            1,
            ["signature", "stage-missing"],
            "signature does not verify",
            _pae_other_type,
        ),
    ],
)
def test_signature_confusion(
    case: Scenario, attack: Callable[[Pipeline], Path], hp: Pipeline, cli: Cli
) -> None:
    attack(hp)
    expect(cli.verify(hp), case)


@scenario(
    "ecdsa-malleated-copy-counts-once",
    "replace the ML engineer's train bundle by the reviewer's with (r, n-s): still valid, same key",
    1,
    ["threshold"],
    "1 agreeing key(s)",
)
def test_ecdsa_malleated(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    source = hp.bundle_path("train", "ml-reviewer")
    r, s = decode_dss_signature(sig_of(source))
    hp.bundle_path("train", "ml-engineer").unlink()
    copy = source.with_name("train.malleated.sigstore.json")
    copy.write_bytes(source.read_bytes())
    set_sig(copy, encode_dss_signature(r, P384_ORDER - s))
    assert hp.keys["ml-reviewer"].public.verify(sig_of(copy), message_of(copy))  # still valid
    expect(cli.verify(hp), case)


# ------------------------------------------------------------ key types the policy must refuse
def _pem(public: Any) -> bytes:
    data: bytes = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data


def _rsa1024() -> bytes:
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key())


def _p224() -> bytes:
    return _pem(ec.generate_private_key(ec.SECP224R1()).public_key())


def _x25519() -> bytes:
    return _pem(x25519.X25519PrivateKey.generate().public_key())


def _dsa() -> bytes:
    return _pem(dsa.generate_private_key(key_size=1024).public_key())


def _label_lies(p: Pipeline) -> bytes:
    body = p.keys["ml-engineer"].pem.splitlines()[1:-1]  # an Ed25519 SPKI
    return "\n".join(
        ["-----BEGIN RSA PUBLIC KEY-----", *body, "-----END RSA PUBLIC KEY-----", ""]
    ).encode()


@pytest.mark.parametrize(
    ("case", "make"),
    [
        case(
            M,
            "functionary-key-rsa-1024",
            "`policy sign` a policy whose release engineer has an RSA-1024 key",
            3,
            None,
            "RSA key of 1024 bits is too small",
            lambda p: _rsa1024(),
        ),
        case(
            M,
            "functionary-key-p224",
            "`policy sign` a policy whose release engineer has an ECDSA P-224 key",
            3,
            None,
            "unsupported elliptic curve",
            lambda p: _p224(),
        ),
        case(
            M,
            "functionary-key-x25519",
            "`policy sign` with an X25519 (key-agreement, not signing) key as a functionary",
            3,
            None,
            "unsupported key type",
            lambda p: _x25519(),
        ),
        case(
            M,
            "functionary-key-dsa",
            "`policy sign` with a DSA key as a functionary",
            3,
            None,
            "unsupported key type",
            lambda p: _dsa(),
        ),
        case(
            M,
            "pem-label-claims-rsa-for-ed25519",
            "an Ed25519 key body under a 'BEGIN RSA PUBLIC KEY' label as a functionary key",
            3,
            None,
            "not a PEM public key",
            _label_lies,
        ),
    ],
)
def test_functionary_key_types(
    case: Scenario, make: Callable[[Pipeline], bytes], hp: Pipeline, cli: Cli
) -> None:
    (hp.root / "keys/release-engineer.pub").write_bytes(make(hp))
    owner = hp.keys["owner"]
    out = hp.root / "weak.signed.json"
    expect(cli("policy", "sign", hp.policy_yaml, "--key", owner.key_path, "--out", out), case)
    assert not out.exists()


@scenario(
    "policy-key-rsa-1024",
    "the verifier is handed an RSA-1024 key as --policy-key (the policy signed by it)",
    3,
    message="too small",
)
def test_weak_policy_key(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    weak = hp.root / "weak-owner.pub"
    weak.write_bytes(_rsa1024())
    expect(cli.verify(hp, policy_keys=[weak]), case)
