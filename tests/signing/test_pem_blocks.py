"""A key file holds one PEM block (review finding F6).

A ``--key`` file holding two public keys used to be accepted with only the first one
used: swapping them flipped the verdict. Now a public or private key file with more
than one PEM block, or with text after its block, is refused (exit 3) naming the file.
Explanatory text before the block stays allowed (RFC 7468 section 5.2): model-signing's
own test key carries GnuTLS certtool's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlspec_attest.errors import KeyLoadError
from mlspec_attest.formats.bundle import sign_to_bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.signing.keys import LocalPublicKey, load_private_key, load_public_key
from mlspec_attest.signing.sigstore.log_entry import same_key

from ..support import PROJECT_ROOT, KeyPair, asset
from .conftest import Cli

SHA = "cd" * 32


def _two(tmp_path: Path, first: KeyPair, second: KeyPair, name: str = "two.pub") -> Path:
    path = tmp_path / name
    path.write_bytes(first.pub_path.read_bytes() + second.pub_path.read_bytes())
    return path


def test_two_public_keys_in_one_file_are_refused_in_either_order(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    for a, b in (("ml-engineer", "data-engineer"), ("data-engineer", "ml-engineer")):
        path = _two(tmp_path, keys[a], keys[b])
        with pytest.raises(KeyLoadError) as info:
            load_public_key(path)
        assert info.value.message == (
            f"{path}: 2 PEM blocks (PUBLIC KEY, PUBLIC KEY); expected exactly one PEM public key"
        )
        assert info.value.remedy == "pass a file that holds one PEM public key and nothing after it"
        assert info.value.exit_code == 3


def test_text_after_the_block_is_refused_text_before_it_is_not(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    pem = keys["owner"].pem
    path = tmp_path / "k.pub"
    for trailer in ("junk", "-----END PUBLIC KEY-----", "\x00"):
        path.write_text(pem + trailer + "\n")
        with pytest.raises(KeyLoadError, match="text after the PEM block"):
            load_public_key(path)
    path.write_text("Public Key Information: ...\n" + pem + "\r\n\t \n")
    assert load_public_key(path).keyid == keys["owner"].keyid


def test_the_second_block_may_be_of_any_kind(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    pair = keys["owner"]
    mixed = tmp_path / "mixed.key"
    mixed.write_bytes(pair.key_path.read_bytes() + pair.pub_path.read_bytes())
    with pytest.raises(KeyLoadError) as info:
        load_private_key(mixed)
    assert info.value.message == (
        f"{mixed}: 2 PEM blocks (PRIVATE KEY, PUBLIC KEY); expected exactly one PEM private key"
    )
    with pytest.raises(KeyLoadError, match="2 PEM blocks"):
        load_public_key(mixed)
    with pytest.raises(KeyLoadError, match=r"^public key: 2 PEM blocks"):
        LocalPublicKey.from_pem(pair.pem + keys["ml-engineer"].pem)


def test_two_private_keys_and_trailing_text_are_refused(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    path = tmp_path / "two.key"
    path.write_bytes(
        keys["owner"].key_path.read_bytes() + keys["ml-engineer"].key_path.read_bytes()
    )
    with pytest.raises(KeyLoadError, match=r"2 PEM blocks \(PRIVATE KEY, PRIVATE KEY\)"):
        load_private_key(path)
    path.write_bytes(keys["owner"].key_path.read_bytes() + b"trailer")
    with pytest.raises(KeyLoadError, match="text after the PEM block; expected exactly one PEM"):
        load_private_key(path)


def test_example_keys_and_interop_keys_still_load() -> None:
    example = sorted((PROJECT_ROOT / "keys-example").glob("*.pub"))
    assert example
    for path in example:
        load_public_key(path)
    for path in sorted((PROJECT_ROOT / "keys-example").glob("*.key")):
        load_private_key(path)
    # model-signing's test key: certtool's description, then the one block
    fixture = asset("model-signing/cli-fixtures/keys/certificate/signing-key-pub.pem")
    assert not fixture.read_bytes().startswith(b"-----")
    assert load_public_key(fixture).key_details == "PKIX_ECDSA_P384_SHA_384"


def test_a_log_entry_naming_two_keys_is_not_this_key(keys: dict[str, KeyPair]) -> None:
    pair = keys["owner"]
    one = pair.pem.encode()
    assert same_key(one, pair.public)
    assert not same_key(one + keys["ml-engineer"].pem.encode(), pair.public)
    assert not same_key(one + b"junk", pair.public)


def test_bundle_verify_refuses_a_two_key_file_with_exit_3(
    cli: Cli, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    signer = keys["ml-engineer"]
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "m", "digest": {"sha256": SHA}}],
        "predicateType": "https://in-toto.io/attestation/link/v0.3",
        "predicate": {"name": "train"},
    }
    bundle, _ = sign_to_bundle(canonical(statement), INTOTO_PAYLOAD_TYPE, signer.signer)
    path = tmp_path / "b.sigstore.json"
    path.write_bytes(canonical(bundle.to_json()))
    for first, second in ((signer, keys["data-engineer"]), (keys["data-engineer"], signer)):
        two = _two(tmp_path, first, second)
        result = cli("bundle", "verify", path, "--key", two, "--digest", f"sha256:{SHA}")
        assert result.code == 3, result.out + result.err
        assert f"{two}: 2 PEM blocks" in result.err
    ok = cli("bundle", "verify", path, "--key", signer.pub_path, "--digest", f"sha256:{SHA}")
    assert ok.code == 0, ok.out + ok.err
