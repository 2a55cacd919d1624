"""The key and signature-scheme registry, exactly: what mutation testing found unpinned.

A model-signing key on a curve outside the table is refused with the model-signing
message and remedy (not the generic curve error); a signature over a message also
verifies as a signature over its sha256 digest (``prehashed``, how Sigstore message
signatures are checked) for ECDSA and RSA keys, and only over that digest.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mlspec_attest.errors import KeyLoadError
from mlspec_attest.signing import schemes
from mlspec_attest.signing.schemes import Use

MESSAGE = b"model.safetensors manifest"
DIGEST = hashlib.sha256(MESSAGE).digest()


@pytest.mark.parametrize("use", [Use.OMS, Use.OMS_LEGACY])
def test_model_signing_refuses_another_curve_with_its_own_words(use: Use) -> None:
    key = ec.generate_private_key(ec.SECP256K1()).public_key()
    with pytest.raises(KeyLoadError) as caught:
        schemes.check_public(key, "signer.pub", use)
    assert str(caught.value) == "signer.pub: model-signing keys are ECDSA P-256, P-384 or P-521"
    assert caught.value.remedy == (
        "create one with `signing.keys.generate_key(KeyType('ecdsa-p256'))`"
    )


def test_local_keys_refuse_another_curve_by_name() -> None:
    key = ec.generate_private_key(ec.SECP256K1()).public_key()
    with pytest.raises(KeyLoadError, match=r"^unsupported elliptic curve secp256k1$"):
        schemes.check_public(key, "signer.pub", Use.LOCAL)


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()], ids=["p256", "p384"])
def test_ecdsa_sha256_signature_verifies_over_its_digest(curve: ec.EllipticCurve) -> None:
    private = ec.generate_private_key(curve)
    signature = private.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    public = private.public_key()
    assert schemes.verify(public, signature, DIGEST, Use.KEY_BUNDLE, prehashed=True)
    other = hashlib.sha256(b"another artifact").digest()
    assert not schemes.verify(public, signature, other, Use.KEY_BUNDLE, prehashed=True)


def test_registry_ecdsa_signature_verifies_over_its_digest() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    signature = schemes.sign(private, MESSAGE)
    public = private.public_key()
    assert schemes.verify(public, signature, DIGEST, Use.KEY_BUNDLE, prehashed=True)
    # prehashed takes the digest, not the message it was made of
    assert not schemes.verify(public, signature, MESSAGE, Use.KEY_BUNDLE, prehashed=True)


def test_registry_rsa_signature_verifies_over_its_digest() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signature = schemes.sign(private, MESSAGE)  # RSA-PSS-SHA256
    public = private.public_key()
    assert schemes.verify(public, signature, DIGEST, Use.KEY_BUNDLE, prehashed=True)
    assert schemes.verify(public, signature, MESSAGE, Use.KEY_BUNDLE)
    # the digest itself is no signed message: hashing it again does not verify
    assert not schemes.verify(public, signature, DIGEST, Use.KEY_BUNDLE)
    other = hashlib.sha256(b"another artifact").digest()
    assert not schemes.verify(public, signature, other, Use.KEY_BUNDLE, prehashed=True)


def test_a_key_on_another_curve_has_no_sigstore_name() -> None:
    """No fallback label: a curve outside the table is refused, not called P-521."""
    other = ec.generate_private_key(ec.SECP256K1()).public_key()
    with pytest.raises(KeyLoadError, match="unsupported elliptic curve secp256k1"):
        schemes.key_details(other)


def test_an_oms_key_of_another_kind_says_which_key_to_make() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    assert schemes.check_public(key.public_key(), "signer.pub", Use.OMS) is not None
    with pytest.raises(KeyLoadError) as caught:
        schemes.check_public(rsa_key, "signer.pub", Use.OMS)
    assert caught.value.remedy == (
        "create one with `signing.keys.generate_key(KeyType('ecdsa-p256'))`"
    )
