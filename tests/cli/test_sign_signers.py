"""One signer rule for ``mlspec-attest sign`` and the Python API (attestation.signers).

The CLI and the API used to build their signers separately; both now call
``stage_signer``. Each case gives the same choice to every front end and asserts
the same answer: the same key names the attestation, the same missing key is
refused, keyless options win over a key from the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from mlspec_attest import api
from mlspec_attest.attestation import signers
from mlspec_attest.attestation.signers import KeylessOptions, signer_summary, stage_signer
from mlspec_attest.errors import ExitCode, UsageError
from mlspec_attest.signing.keys import KeyType, load_private_key
from mlspec_attest.signing.schemes import portability_warning
from mlspec_attest.signing.sigstore.sign import SigstoreSigner

from ..support import KeyPair
from .conftest import Cli


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws/out.txt").write_text("product\n")
    return tmp_path / "ws"


class Refused(UsageError):
    """Stands in for the Sigstore client: records how it was asked, then stops."""

    def __init__(self) -> None:
        super().__init__("keyless signing refused by the test")


@pytest.fixture
def keyless_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def create(cls: type[SigstoreSigner], **options: Any) -> SigstoreSigner:
        calls.append(options)
        raise Refused

    monkeypatch.setattr(SigstoreSigner, "create", classmethod(create))
    return calls


def test_a_key_path_an_env_key_and_a_loaded_key_sign_alike(
    keys: dict[str, KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = keys["ml-engineer"]
    monkeypatch.setenv(signers.KEY_ENV, str(pair.key_path))
    found = [
        stage_signer(pair.key_path),
        stage_signer(str(pair.key_path)),
        stage_signer(None),
        stage_signer(pair.signer),
    ]
    assert {signer_summary(s)["keyid"] for s in found} == {pair.keyid}
    assert found[3] is pair.signer  # an object signs as it is


def test_cli_and_api_name_the_attestation_by_the_same_key(
    cli: Cli, ws: Path, tmp_path: Path, keys: dict[str, KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = keys["ml-engineer"]
    monkeypatch.setenv(signers.KEY_ENV, str(pair.key_path))
    monkeypatch.delenv("MLSPEC_ATTEST_POLICY", raising=False)
    result = cli(
        "sign", "--stage", "train", "--product", ws / "out.txt", "--base-dir", ws,
        "--store", tmp_path / "cli", "--run-id", "r1", "-q", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    from_api = api.attest(
        "train", products=[ws / "out.txt"], store=tmp_path / "api", run_id="r1", base_dir=ws
    )
    assert result.json()["keyid"] == from_api.bundle.key_hint == pair.keyid
    assert Path(result.json()["attestation"]).name == from_api.path.name


def test_no_key_is_refused_by_every_front_end(
    cli: Cli, ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(signers.KEY_ENV, raising=False)
    with pytest.raises(UsageError, match=r"^no signing key$") as info:
        stage_signer(None)
    assert info.value.exit_code == ExitCode.USAGE
    with pytest.raises(UsageError, match=r"^no signing key$"):
        api.attest("train", products=[ws / "out.txt"], store=tmp_path / "api")
    result = cli("sign", "--stage", "train", "--product", ws / "out.txt", "--store", tmp_path)
    assert result.code == ExitCode.USAGE
    assert result.err.startswith("error: no signing key\n")
    assert "--sigstore" in result.err  # the CLI names its own options in the fix


def test_keyless_options_win_over_a_key_in_the_environment(
    keys: dict[str, KeyPair], keyless_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(signers.KEY_ENV, str(keys["ml-engineer"].key_path))
    with pytest.raises(Refused):
        stage_signer(None, keyless=KeylessOptions("a.b.c", None, staging=True))
    with pytest.raises(Refused):
        stage_signer(Path("no-such.key"), keyless=KeylessOptions())
    assert keyless_calls == [
        {"identity_token": "a.b.c", "trust_config": None, "staging": True},
        {"identity_token": None, "trust_config": None, "staging": False},
    ]


def test_cli_sigstore_asks_the_library_for_the_same_keyless_signer(
    cli: Cli,
    ws: Path,
    tmp_path: Path,
    keys: dict[str, KeyPair],
    keyless_calls: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A key and a trust config from the environment: --sigstore ignores the key, and
    # --staging overrides an environment default trust config (but not a command-line one).
    monkeypatch.setenv(signers.KEY_ENV, str(keys["ml-engineer"].key_path))
    monkeypatch.setenv("MLSPEC_ATTEST_TRUST_CONFIG", str(tmp_path / "env-trust.json"))
    args = ("sign", "--stage", "train", "--product", ws / "out.txt", "--store", tmp_path / "s")
    for extra in (("--staging", "--identity-token", "a.b.c"), ()):
        result = cli(*args, "--sigstore", *extra)
        assert result.code == ExitCode.USAGE
        assert "keyless signing refused by the test" in result.err
    assert keyless_calls == [
        {"identity_token": "a.b.c", "trust_config": None, "staging": True},
        {"identity_token": None, "trust_config": tmp_path / "env-trust.json", "staging": False},
    ]


def test_an_encrypted_key_needs_its_passphrase_on_every_path(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    pem = keys["ml-engineer"].signer.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    path = tmp_path / "enc.key"
    path.write_bytes(pem)
    assert signer_summary(stage_signer(path, passphrase=b"pw")) == signer_summary(
        load_private_key(path, passphrase=b"pw")
    )
    with pytest.raises(Exception, match="encrypted"):
        stage_signer(path)


@pytest.mark.parametrize("key_type", list(KeyType))
def test_sign_warns_of_keys_other_verifiers_refuse(
    cli: Cli, ws: Path, tmp_path: Path, key_of_type: dict[KeyType, KeyPair], key_type: KeyType
) -> None:
    """The scheme registry's portability warning, as keygen prints it; the exit code stays 0."""
    pair = key_of_type[key_type]
    result = cli(
        "sign", "--stage", "train", "--key", pair.key_path, "--product", ws / "out.txt",
        "--base-dir", ws, "--store", tmp_path / "s", "-q", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    warning = portability_warning(key_type.value)
    warnings = [line for line in result.err.splitlines() if line.startswith("warning: ")]
    assert warnings == ([f"warning: {warning}"] if warning else [])
    assert result.json()["keyid"] == pair.keyid  # stdout stays one JSON document
