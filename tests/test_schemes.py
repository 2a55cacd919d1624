"""One key and signature-scheme registry: every path gives the registry's answer.

Three paths verified signatures with three rules before (local keys: RSA-PSS only;
Sigstore key bundles: PKCS#1 v1.5 or PSS, ECDSA-SHA256 on any curve; model-signing:
EC only, hash by key size). Each now asks :mod:`mlspec_attest.signing.schemes`; this
file signs one DSSE payload with every (key, scheme) pair and checks that the local
verifier, ``verify_bundle`` on a key bundle and the model-signing signature check agree
with the registry, and that the registry says what docs/sigstore.md's table says.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from mlspec_attest.errors import KeyLoadError, SigstoreVerificationError
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, pae
from mlspec_attest.interop.oms.signature_check import verify_signature
from mlspec_attest.interop.oms.trust import KeyTrust
from mlspec_attest.signing import schemes
from mlspec_attest.signing.keys import KeyType, LocalPublicKey, load_public_key
from mlspec_attest.signing.schemes import Use
from mlspec_attest.signing.sigstore.verify import verify_bundle

PAYLOAD = json.dumps(
    {"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicateType": "x"}
).encode()
MESSAGE = pae(INTOTO_PAYLOAD_TYPE, PAYLOAD)

Sign = Callable[[Any, bytes], bytes]


def _ecdsa(algorithm: hashes.HashAlgorithm) -> Sign:
    return lambda key, data: key.sign(data, ec.ECDSA(algorithm))


def _rsa(pad: padding.AsymmetricPadding) -> Sign:
    return lambda key, data: key.sign(data, pad, hashes.SHA256())


def _pss(salt: Any) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)


KEYS: dict[str, Any] = {
    "ed25519": ed25519.Ed25519PrivateKey.generate(),
    "p256": ec.generate_private_key(ec.SECP256R1()),
    "p384": ec.generate_private_key(ec.SECP384R1()),
    "p521": ec.generate_private_key(ec.SECP521R1()),
    "rsa3072": rsa.generate_private_key(public_exponent=65537, key_size=3072),
}
SCHEMES: dict[str, Sign] = {
    "ed25519": lambda key, data: key.sign(data),
    "ecdsa-sha256": _ecdsa(hashes.SHA256()),
    "ecdsa-sha384": _ecdsa(hashes.SHA384()),
    "ecdsa-sha512": _ecdsa(hashes.SHA512()),
    "rsa-pss-sha256": _rsa(_pss(padding.PSS.DIGEST_LENGTH)),
    "rsa-pss-sha256-max-salt": _rsa(_pss(padding.PSS.MAX_LENGTH)),
    "rsa-pkcs1v15-sha256": _rsa(padding.PKCS1v15()),
}
# (key, scheme) -> accepted by (local keys, Sigstore key bundles, model-signing):
# docs/sigstore.md, "Keys and signature schemes".
TABLE: dict[tuple[str, str], tuple[bool, bool, bool]] = {
    ("ed25519", "ed25519"): (True, True, False),
    ("p256", "ecdsa-sha256"): (True, True, True),
    ("p384", "ecdsa-sha384"): (True, True, True),
    ("p384", "ecdsa-sha256"): (False, True, False),
    ("p521", "ecdsa-sha512"): (True, True, True),
    ("p521", "ecdsa-sha256"): (False, True, False),
    ("rsa3072", "rsa-pss-sha256"): (True, True, False),
    ("rsa3072", "rsa-pss-sha256-max-salt"): (False, True, False),
    ("rsa3072", "rsa-pkcs1v15-sha256"): (False, True, False),
}


def _public(name: str) -> LocalPublicKey:
    return LocalPublicKey(KEYS[name].public_key())


def _bundle(public: LocalPublicKey, signature: bytes) -> dict[str, object]:
    return {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": public.keyid}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(PAYLOAD).decode(),
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
        },
    }


def local_accepts(public: LocalPublicKey, signature: bytes) -> bool:
    return public.verify(signature, MESSAGE)


def key_bundle_accepts(public: LocalPublicKey, signature: bytes) -> bool:
    try:
        verify_bundle(_bundle(public, signature), trust=None, key=public)
    except SigstoreVerificationError:
        return False
    return True


def oms_accepts(public: LocalPublicKey, signature: bytes, tmp_path: Path) -> bool:
    pem = tmp_path / "key.pub"
    pem.write_text(public.pem())
    try:
        trust = KeyTrust.from_file(pem)
    except KeyLoadError:
        return False
    sig = tmp_path / "model.sig"
    sig.write_text(json.dumps(_bundle(public, signature)))
    return verify_signature(sig, trust).verified


@pytest.mark.parametrize(("key", "scheme"), sorted(TABLE))
def test_every_path_gives_the_registry_answer(key: str, scheme: str, tmp_path: Path) -> None:
    public = _public(key)
    signature = SCHEMES[scheme](KEYS[key], MESSAGE)
    registry = tuple(
        schemes.verify(public.key, signature, MESSAGE, use)
        for use in (Use.LOCAL, Use.KEY_BUNDLE, Use.OMS)
    )
    paths = (
        local_accepts(public, signature),
        key_bundle_accepts(public, signature),
        oms_accepts(public, signature, tmp_path),
    )
    assert paths == registry == TABLE[key, scheme]


@pytest.mark.parametrize(
    "make",
    [
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),
        lambda: ec.generate_private_key(ec.SECP256K1()),
        lambda: ec.generate_private_key(ec.SECP192R1()),
    ],
    ids=["rsa-1024", "secp256k1", "p192"],
)
def test_keys_no_path_accepts(make: Callable[[], Any], tmp_path: Path) -> None:
    key = make().public_key()
    pem = tmp_path / "weak.pub"
    pem.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(KeyLoadError):
        load_public_key(pem)  # local keys and `bundle verify --key`
    with pytest.raises(KeyLoadError):
        KeyTrust.from_file(pem)  # model-signing
    for use in Use:
        assert not schemes.accepts(key, use)


def test_keygen_types_are_all_accepted_locally_and_in_key_bundles() -> None:
    for key_type in KeyType:
        assert key_type.value in {"ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-3072"}
    for name in KEYS:
        public = _public(name).key
        assert schemes.accepts(public, Use.LOCAL) and schemes.accepts(public, Use.KEY_BUNDLE)
        assert schemes.accepts(public, Use.OMS) == name.startswith("p")


def test_portability_warnings() -> None:
    """sigstore-js 4.1 verifies key bundles with SHA-256 and PKCS#1 v1.5: our P-384 and
    RSA-PSS bundles do not verify there; ed25519 and P-256 ones do."""
    assert schemes.portability_warning(KeyType.ED25519) is None
    assert schemes.portability_warning(KeyType.ECDSA_P256) is None
    p384 = schemes.portability_warning(KeyType.ECDSA_P384)
    rsa_pss = schemes.portability_warning(KeyType.RSA_3072)
    assert p384 is not None and "sigstore-js" in p384 and "SHA-384" in p384
    assert rsa_pss is not None and "sigstore-js" in rsa_pss and "PKCS#1 v1.5" in rsa_pss


def test_ed25519_never_signs_digests() -> None:
    public = _public("ed25519").key
    digest = hashes.Hash(hashes.SHA256())
    digest.update(MESSAGE)
    raw = digest.finalize()
    signature = KEYS["ed25519"].sign(raw)
    assert not schemes.verify(public, signature, raw, Use.KEY_BUNDLE, prehashed=True)


def test_portability_warning_of_loaded_keys() -> None:
    """The same warning for a key type, a loaded key and a signer (sign --key prints it)."""
    from mlspec_attest.signing.keys import LocalKeySigner, generate_key

    for key_type in KeyType:
        signer = generate_key(key_type)
        expected = schemes.portability_warning(key_type.value)
        assert schemes.portability_warning(signer) == expected
        assert schemes.portability_warning(signer.public_key) == expected
        assert schemes.portability_warning(signer.private_key) == expected
        assert schemes.portability_warning(signer.public_key.key) == expected
    p521 = LocalKeySigner(KEYS["p521"])
    assert "P-521" in (schemes.portability_warning(p521) or "")
    assert schemes.portability_warning(object()) is None
