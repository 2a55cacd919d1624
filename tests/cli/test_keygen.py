"""``mlspec-attest keygen``."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from mlspec_attest.errors import KeyLoadError
from mlspec_attest.signing.keys import KeyType, load_private_key, load_public_key

from .conftest import Cli


@pytest.mark.parametrize("key_type", [k.value for k in KeyType])
def test_keygen_each_type(cli: Cli, tmp_path: Path, key_type: str) -> None:
    result = cli("keygen", "--type", key_type, "--out", tmp_path / "k", "--json")
    assert result.code == 0, result.err
    doc = result.json()
    key_path, pub_path = tmp_path / "k.key", tmp_path / "k.pub"
    assert doc["private"] == str(key_path) and doc["public"] == str(pub_path)
    assert doc["type"] == key_type
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert doc["keyid"] == hashlib.sha256(pub_path.read_bytes()).hexdigest()
    assert load_private_key(key_path).public_key.keyid == load_public_key(pub_path).keyid


def test_keygen_default_is_ed25519_and_text_output(cli: Cli, tmp_path: Path) -> None:
    result = cli("keygen", "--out", tmp_path / "k")
    assert result.code == 0
    assert load_public_key(tmp_path / "k.pub").key_details == "PKIX_ED25519"
    keyid = hashlib.sha256((tmp_path / "k.pub").read_bytes()).hexdigest()
    assert f"keyid {keyid}" in result.out
    assert "0600" in result.out


def test_keygen_passphrase_env(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEY_PW", "correct horse")
    result = cli("keygen", "--out", tmp_path / "k", "--passphrase-env", "KEY_PW")
    assert result.code == 0, result.err
    assert (tmp_path / "k.key").read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600
    with pytest.raises(KeyLoadError, match="encrypted"):
        load_private_key(tmp_path / "k.key")
    load_private_key(tmp_path / "k.key", passphrase=b"correct horse")
    assert "correct horse" not in result.out + result.err


def test_keygen_passphrase_env_unset(cli: Cli, tmp_path: Path) -> None:
    result = cli("keygen", "--out", tmp_path / "k", "--passphrase-env", "MLSPEC_TEST_UNSET_PW")
    assert result.code == 2
    assert "MLSPEC_TEST_UNSET_PW" in result.err
    assert not (tmp_path / "k.key").exists()


def test_keygen_refuses_to_overwrite(cli: Cli, tmp_path: Path) -> None:
    assert cli("keygen", "--out", tmp_path / "k").code == 0
    before = (tmp_path / "k.key").read_bytes()
    result = cli("keygen", "--out", tmp_path / "k")
    assert result.code == 2
    assert "already exists" in result.err and "--force" in result.err
    assert (tmp_path / "k.key").read_bytes() == before
    assert cli("keygen", "--out", tmp_path / "k", "--force").code == 0
    assert (tmp_path / "k.key").read_bytes() != before


@pytest.mark.parametrize(
    "args", [["--type", "dsa", "--out", "x"], [], ["--type", "ed25519"], ["--bogus"]]
)
def test_keygen_usage_errors(cli: Cli, tmp_path: Path, args: list[str]) -> None:
    result = cli("keygen", *args)
    assert result.code == 2
    assert result.clean
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key_type", [k.value for k in KeyType])
def test_keygen_warns_of_keys_other_verifiers_refuse(
    cli: Cli, tmp_path: Path, key_type: str
) -> None:
    """P-384 and RSA-PSS key bundles do not verify in sigstore-js 4.1: a warning on
    stderr, the key written and the exit code unchanged."""
    for args in ([], ["--json"]):
        out = tmp_path / f"k{len(args)}"
        result = cli("keygen", "--type", key_type, "--out", out, *args)
        assert result.code == 0, result.err
        warnings = [line for line in result.err.splitlines() if line.startswith("warning: ")]
        if key_type in ("ecdsa-p384", "rsa-3072"):
            assert len(warnings) == 1 and "sigstore-js" in warnings[0], result.err
        else:
            assert warnings == []
        assert "warning" not in result.out
        assert (out.with_name(out.name + ".pub")).exists()
