"""Local key pairs: the four key types, PEM files, passphrases, key ids, wrong inputs."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa, x25519

from mlspec_attest.errors import KeyLoadError
from mlspec_attest.signing import PublicKeyVerifier
from mlspec_attest.signing.keys import (
    KeyType,
    LocalPublicKey,
    generate_key,
    load_private_key,
    load_public_key,
    write_key_pair,
)

from .interop.reference import IntotoDemo
from .support import KeyPair

DETAILS = {
    KeyType.ED25519: ("PKIX_ED25519", "ed25519"),
    KeyType.ECDSA_P256: ("PKIX_ECDSA_P256_SHA_256", "ecdsa-secp256r1"),
    KeyType.ECDSA_P384: ("PKIX_ECDSA_P384_SHA_384", "ecdsa-secp384r1"),
    KeyType.RSA_3072: ("PKIX_RSA_PSS_3072_SHA256", "rsa-3072-pss-sha256"),
}


def _write_pem_private(path: Path, key: object) -> Path:
    path.write_bytes(
        key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _write_pem_public(path: Path, key: object) -> Path:
    path.write_bytes(
        key.public_key().public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@pytest.mark.parametrize("key_type", list(KeyType))
def test_each_key_type_round_trips_through_files(
    key_of_type: dict[KeyType, KeyPair], key_type: KeyType
) -> None:
    pair = key_of_type[key_type]
    loaded = load_private_key(pair.key_path)
    public = load_public_key(pair.pub_path)
    assert loaded.public_key.keyid == public.keyid == pair.keyid
    assert (public.key_details, public.algorithm) == DETAILS[key_type]
    assert isinstance(public, PublicKeyVerifier)
    signature = loaded.sign(b"data")
    assert public.verify(signature, b"data")
    assert not public.verify(signature, b"datA")
    assert not public.verify(b"\x00" * len(signature), b"data")
    assert not public.verify(b"junk", b"data")  # never raises on garbage


@pytest.mark.parametrize("key_type", list(KeyType))
def test_key_files_modes_and_formats(
    key_of_type: dict[KeyType, KeyPair], key_type: KeyType
) -> None:
    pair = key_of_type[key_type]
    assert stat.S_IMODE(pair.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(pair.pub_path.stat().st_mode) == 0o644
    assert pair.key_path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert pair.pub_path.read_text().startswith("-----BEGIN PUBLIC KEY-----")


@pytest.mark.parametrize("key_type", list(KeyType))
def test_keyid_is_sha256_of_the_pem_text(
    key_of_type: dict[KeyType, KeyPair], key_type: KeyType
) -> None:
    pair = key_of_type[key_type]
    pem = pair.pub_path.read_bytes()
    assert pair.keyid == hashlib.sha256(pem).hexdigest()
    assert pair.public.pem().encode() == pem
    assert LocalPublicKey.from_pem(pem).keyid == pair.keyid


def test_keyid_ignores_text_before_the_pem(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    # the key id is over the re-serialized PEM, so explanatory text before it (RFC 7468
    # section 5.2; model-signing's test key carries certtool's) does not change it
    path = tmp_path / "k.pub"
    path.write_text("Public Key Info: ...\n" + keys["owner"].pem + "\n \n")
    assert load_public_key(path).keyid == keys["owner"].keyid
    path.write_text("Public Key Info: ...\n" + keys["owner"].pem + "\ntrailer\n")
    with pytest.raises(KeyLoadError) as info:
        load_public_key(path)
    assert info.value.message == (
        f"{path}: text after the PEM block; expected exactly one PEM public key "
        "and nothing after it"
    )


def test_generated_keys_differ() -> None:
    assert (
        generate_key(KeyType.ED25519).public_key.keyid
        != generate_key(KeyType.ED25519).public_key.keyid
    )


# ------------------------------------------------------------ passphrases
def test_encrypted_key(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    key_path, pub_path = write_key_pair(
        keys["ml-engineer"].signer, tmp_path / "enc", passphrase=b"s3cret"
    )
    assert key_path.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    loaded = load_private_key(key_path, passphrase=b"s3cret")
    assert loaded.public_key.keyid == keys["ml-engineer"].keyid == load_public_key(pub_path).keyid

    with pytest.raises(KeyLoadError, match="encrypted") as missing:
        load_private_key(key_path)
    assert missing.value.remedy is not None and "passphrase=" in missing.value.remedy
    with pytest.raises(KeyLoadError, match="wrong passphrase"):
        load_private_key(key_path, passphrase=b"wrong")


def test_passphrase_for_unencrypted_key(keys: dict[str, KeyPair]) -> None:
    with pytest.raises(KeyLoadError, match="not encrypted"):
        load_private_key(keys["owner"].key_path, passphrase=b"pw")


# ---------------------------------------------------------- wrong inputs
def test_public_key_passed_as_private(keys: dict[str, KeyPair]) -> None:
    with pytest.raises(KeyLoadError, match="not a PEM private key") as info:
        load_private_key(keys["owner"].pub_path)
    assert info.value.remedy is not None and ".pub" in info.value.remedy


def test_private_key_passed_as_public(keys: dict[str, KeyPair]) -> None:
    with pytest.raises(KeyLoadError, match="not a PEM public key"):
        load_public_key(keys["owner"].key_path)


def test_missing_and_unreadable_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyLoadError, match="not found"):
        load_private_key(tmp_path / "nope.key")
    with pytest.raises(KeyLoadError, match="not found"):
        load_public_key(tmp_path / "nope.pub")
    with pytest.raises(KeyLoadError, match="cannot read"):
        load_private_key(tmp_path)
    with pytest.raises(KeyLoadError, match="cannot read"):
        load_public_key(tmp_path)


def test_garbage_key_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.key"
    path.write_text("not a key at all\n")
    with pytest.raises(KeyLoadError):
        load_private_key(path)
    with pytest.raises(KeyLoadError):
        load_public_key(path)


def test_rsa_1024_is_too_small(tmp_path: Path) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(KeyLoadError, match="1024 bits is too small"):
        load_private_key(_write_pem_private(tmp_path / "weak.key", weak))
    with pytest.raises(KeyLoadError, match="1024 bits is too small"):
        load_public_key(_write_pem_public(tmp_path / "weak.pub", weak))


def test_unsupported_curve(tmp_path: Path) -> None:
    k1 = ec.generate_private_key(ec.SECP256K1())
    with pytest.raises(KeyLoadError, match="unsupported elliptic curve"):
        load_private_key(_write_pem_private(tmp_path / "k1.key", k1))
    with pytest.raises(KeyLoadError, match="unsupported elliptic curve"):
        load_public_key(_write_pem_public(tmp_path / "k1.pub", k1))


@pytest.mark.parametrize(
    "make",
    [lambda: dsa.generate_private_key(2048), lambda: x25519.X25519PrivateKey.generate()],
    ids=["dsa", "x25519"],
)
def test_unsupported_key_types(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    key = make()
    with pytest.raises(KeyLoadError, match="unsupported"):
        load_private_key(_write_pem_private(tmp_path / "x.key", key))
    with pytest.raises(KeyLoadError, match="unsupported"):
        load_public_key(_write_pem_public(tmp_path / "x.pub", key))


# ------------------------------------------------------- in-toto interop
@pytest.mark.parametrize(
    ("name", "details"),
    [
        ("ecdsa", "PKIX_ECDSA_P256_SHA_256"),
        ("ed25519", "PKIX_ED25519"),
        ("rsa", "PKIX_RSA_PSS_2048_SHA256"),
    ],
)
def test_in_toto_pems_load(intoto_pems: Path, name: str, details: str) -> None:
    pems = intoto_pems
    public = load_public_key(pems / f"{name}_public.pem")
    plain = load_private_key(pems / f"{name}_private_unencrypted.pem")
    encrypted = load_private_key(pems / f"{name}_private_encrypted.pem", passphrase=b"hunter2")
    assert public.key_details == details
    assert plain.public_key.keyid == encrypted.public_key.keyid == public.keyid
    assert public.verify(encrypted.sign(b"x"), b"x")
    with pytest.raises(KeyLoadError, match="encrypted"):
        load_private_key(pems / f"{name}_private_encrypted.pem")


def test_in_toto_pkcs1_rsa_key_loads(intoto_demo: IntotoDemo) -> None:
    demo = intoto_demo.files
    alice = load_private_key(demo / "alice")  # traditional "RSA PRIVATE KEY" PEM
    assert alice.public_key.keyid == load_public_key(demo / "alice.pub").keyid
    assert alice.public_key.key_details == "PKIX_RSA_PSS_3072_SHA256"


def test_in_toto_legacy_json_key_is_refused(intoto_demo: IntotoDemo) -> None:
    with pytest.raises(KeyLoadError):
        load_private_key(intoto_demo.files / "danny")


# ------------------------------------------------------- what each failure says
# Asserted word for word: mutation testing (docs/testing.md) showed that matching a fragment
# would not notice a wrong file name, hint or remedy.


def test_generated_key_types_are_what_they_say() -> None:
    p256 = generate_key(KeyType.ECDSA_P256).private_key
    p384 = generate_key(KeyType.ECDSA_P384).private_key
    rsa_key = generate_key(KeyType.RSA_3072).private_key
    assert isinstance(p256, ec.EllipticCurvePrivateKey) and p256.curve.name == "secp256r1"
    assert isinstance(p384, ec.EllipticCurvePrivateKey) and p384.curve.name == "secp384r1"
    assert isinstance(rsa_key, rsa.RSAPrivateKey) and rsa_key.key_size == 3072


def test_key_pair_files_are_never_readable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The private key is 0600 from the moment it exists, not only after a final chmod."""
    import os

    seen: dict[str, int] = {}
    real_chmod = os.chmod

    def recording_chmod(path: Any, mode: int, **kw: Any) -> None:
        seen[Path(path).name] = stat.S_IMODE(os.stat(path).st_mode)
        real_chmod(path, mode, **kw)

    monkeypatch.setattr(os, "chmod", recording_chmod)
    old = os.umask(0)
    try:
        key_path, pub_path = write_key_pair(generate_key(KeyType.ED25519), tmp_path / "k")
    finally:
        os.umask(old)
    assert seen.get("k.key", 0o600) == 0o600
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(pub_path.stat().st_mode) == 0o644


def test_private_key_load_errors_name_the_file(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    pair = keys["owner"]
    encrypted = tmp_path / "enc.key"
    from cryptography.hazmat.primitives.serialization import (
        BestAvailableEncryption,
        Encoding,
        PrivateFormat,
    )

    private = load_private_key(pair.key_path).private_key
    encrypted.write_bytes(
        private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"pw"))
    )
    with pytest.raises(KeyLoadError) as info:
        load_private_key(encrypted)
    assert info.value.message == f"{encrypted}: private key is encrypted"
    assert info.value.remedy == ("pass the passphrase (passphrase=)")
    with pytest.raises(KeyLoadError) as info:
        load_private_key(encrypted, passphrase=b"wrong")
    assert info.value.message == (
        f"{encrypted}: cannot load private key (wrong passphrase or not a PEM private key)"
    )
    with pytest.raises(KeyLoadError) as info:
        load_private_key(pair.pub_path)
    assert info.value.message == f"{pair.pub_path}: cannot load private key (not a PEM private key)"
    assert info.value.remedy == "pass the .key file written by `mlspec-attest keygen`, not the .pub"


def test_key_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.key"
    with pytest.raises(KeyLoadError) as info:
        load_private_key(missing)
    assert info.value.message == f"key {missing}: file not found"
    with pytest.raises(KeyLoadError) as info:
        load_public_key(missing)
    assert info.value.message == f"public key {missing}: file not found"
    huge = tmp_path / "huge.key"
    huge.write_bytes(b"x" * (64 * 1024 + 1))
    with pytest.raises(KeyLoadError) as info:
        load_private_key(huge)
    assert info.value.message == f"key {huge}: larger than 64 KiB, the limit for a key"
    with pytest.raises(KeyLoadError) as info:
        load_public_key(huge)
    assert info.value.message == f"public key {huge}: larger than 64 KiB, the limit for a key"


def test_private_key_type_errors_name_the_file(tmp_path: Path) -> None:
    small = tmp_path / "small.key"
    small.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(KeyLoadError) as info:
        load_private_key(small)
    assert info.value.message == f"{small}: RSA key of 1024 bits is too small"
    other = tmp_path / "dsa.key"
    dsa_key = dsa.generate_private_key(key_size=2048)
    other.write_bytes(
        dsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(KeyLoadError) as info:
        load_private_key(other)
    assert info.value.message == f"{other}: unsupported private key type {type(dsa_key).__name__}"


def test_public_key_load_errors_name_the_source(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pub"
    garbage.write_text("not a key")
    with pytest.raises(KeyLoadError) as info:
        load_public_key(garbage)
    assert info.value.message == f"{garbage}: not a PEM public key (SubjectPublicKeyInfo)"
    assert info.value.remedy == "pass the .pub file written by `mlspec-attest keygen`"
    with pytest.raises(KeyLoadError) as info:
        LocalPublicKey.from_pem("not a key")
    assert info.value.message == "public key: not a PEM public key (SubjectPublicKeyInfo)"
    small = tmp_path / "small.pub"
    small.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyLoadError) as info:
        load_public_key(small)
    assert info.value.message == f"{small}: RSA key of 1024 bits is too small"
    odd = tmp_path / "x25519.pub"
    x_key = x25519.X25519PrivateKey.generate().public_key()
    odd.write_bytes(
        x_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(KeyLoadError) as info:
        load_public_key(odd)
    assert info.value.message == f"{odd}: unsupported key type {type(x_key).__name__}"
