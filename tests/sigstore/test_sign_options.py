"""``sign --sigstore`` option rules (no Sigstore instance needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..support import KeyPair
from .conftest import Cli


def sign_args(tmp_path: Path, *extra: str | Path) -> list[str | Path]:
    product = tmp_path / "out.txt"
    product.write_text("x")
    return ["sign", "--stage", "ingest", "--product", product, "--base-dir", tmp_path,
            "--store", tmp_path / "store", *extra]  # fmt: skip


def test_key_and_sigstore_conflict(cli: Cli, tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    result = cli(*sign_args(tmp_path, "--key", keys["owner"].key_path, "--sigstore"))
    assert result.code == 2
    assert "--sigstore" in result.err


def test_sigstore_options_need_sigstore(cli: Cli, tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    key = keys["owner"].key_path
    assert cli(*sign_args(tmp_path, "--key", key, "--staging")).code == 2
    assert cli(*sign_args(tmp_path, "--key", key, "--identity-token", "t")).code == 2


def test_environment_key_does_not_block_sigstore(
    cli: Cli, tmp_path: Path, keys: dict[str, KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLSPEC_ATTEST_KEY is a default; --sigstore on the command line wins (then needs a token)."""
    monkeypatch.setenv("MLSPEC_ATTEST_KEY", str(keys["owner"].key_path))
    monkeypatch.delenv("SIGSTORE_ID_TOKEN", raising=False)
    for var in (
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "BUILDKITE",
        "CIRCLECI",
        "GOOGLE_SERVICE_ACCOUNT_NAME",
    ):
        monkeypatch.delenv(var, raising=False)
    result = cli(*sign_args(tmp_path, "--sigstore", "--staging"))
    assert result.code == 2
    assert "identity token" in result.err


def test_malformed_token_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    result = cli(*sign_args(tmp_path, "--sigstore", "--staging", "--identity-token", "not-a-jwt"))
    assert result.code == 3
    assert "identity token" in result.err
