"""Real trust material and a tiny model for the OpenSSF model-signing targets.

The keys are the repository's published example keys (keys-example/: the
evaluator's P-256 key signs, the owner's P-384 key is the certificate root),
so signatures in the committed seed corpus verify in every fuzzing process.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.interop.oms.signature import CertificateTrust, KeyTrust
from mlspec_attest.signing.keys import LocalKeySigner, load_private_key

from ._harness import PROJECT_ROOT, workdir

KEYS = PROJECT_ROOT / "keys-example"
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


@functools.cache
def signer() -> LocalKeySigner:
    return load_private_key(KEYS / "evaluator.key")


@functools.cache
def key_trust() -> KeyTrust:
    return KeyTrust(signer().public_key, "fuzz key")


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@functools.cache
def certificates() -> tuple[x509.Certificate, x509.Certificate]:
    """(root CA, leaf for signer()), both real and valid from 2025 for ten years."""
    ca_key = load_private_key(KEYS / "owner.key").private_key
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    end = START + dt.timedelta(days=3650)
    root = (
        x509.CertificateBuilder()
        .subject_name(_name("fuzz root"))
        .issuer_name(_name("fuzz root"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(START)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = signer().private_key
    assert isinstance(leaf_key, ec.EllipticCurvePrivateKey)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("fuzz signer"))
        .issuer_name(root.subject)
        .public_key(leaf_key.public_key())
        .serial_number(2)
        .not_valid_before(START)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return root, leaf


@functools.cache
def certificate_trust() -> CertificateTrust:
    return CertificateTrust((certificates()[0],), ("fuzz root",))


@functools.cache
def model_dir() -> Path:
    """A three-file model (one empty, one in a subfolder)."""
    root = workdir() / "model"
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root / "weights.bin").write_bytes(bytes(range(64)))
    (root / "sub" / "config.json").write_bytes(b'{"layers": 2}')
    (root / "empty").write_bytes(b"")
    return root


def signed_bundle(payload: bytes) -> Bundle:
    """``payload`` signed by signer() as model-signing 1.x writes it (public key hint)."""
    envelope = Envelope.sign(payload, INTOTO_PAYLOAD_TYPE, [signer()], keyid_hint=False)
    return Bundle.for_public_key(envelope, signer().public_key.keyid)
