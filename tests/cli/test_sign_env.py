"""``sign`` and the Python API read the pipeline's digest scheme from the environment alike.

The CLI reads ``MLSPEC_ATTEST_DIGEST_*`` and ``MLSPEC_ATTEST_SHARD_SIZE`` through its
options' defaults, the API through ``HashingOptions.from_env``; artifact rules
compare digests of one scheme, so both must take the same values, hash the same
way, and refuse the same values (exit 2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlspec_attest import api
from mlspec_attest.errors import ExitCode, UsageError

from ..support import KeyPair
from .conftest import Cli

ACCEPTED = [
    {},
    {"MLSPEC_ATTEST_DIGEST_ALGORITHM": "blake2b"},
    {"MLSPEC_ATTEST_DIGEST_SERIALIZATION": "shards", "MLSPEC_ATTEST_SHARD_SIZE": "4"},
    {"MLSPEC_ATTEST_DIGEST_ALGORITHM": "", "MLSPEC_ATTEST_SHARD_SIZE": ""},  # empty: unset
]
REFUSED = [
    {"MLSPEC_ATTEST_DIGEST_ALGORITHM": "SHA256"},
    {"MLSPEC_ATTEST_DIGEST_SERIALIZATION": "Shards"},
    {"MLSPEC_ATTEST_SHARD_SIZE": "0"},
    {"MLSPEC_ATTEST_SHARD_SIZE": "big"},
]


def both(
    cli: Cli, tmp_path: Path, pair: KeyPair, env: dict[str, str], mp: pytest.MonkeyPatch
) -> tuple[object, object]:
    for name, value in env.items():
        mp.setenv(name, value)
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    (ws / "model.bin").write_bytes(b"0123456789" * 3)
    result = cli(
        "sign", "--stage", "train", "--key", pair.key_path, "--product", ws / "model.bin",
        "--base-dir", ws, "--store", tmp_path / "cli", "--run-id", "r1", "-q", "--json",
    )  # fmt: skip
    from_cli: object = result.code if result.code else result.json()["subjects"]
    try:
        signed = api.attest(
            "train",
            key=pair.signer,
            products=[ws / "model.bin"],
            store=tmp_path / "api",
            run_id="r1",
            base_dir=ws,
        )
        from_api: object = [p.to_json() for p in signed.statement.products]
    except UsageError as exc:
        from_api = exc.exit_code
    return from_cli, from_api


@pytest.mark.parametrize("env", ACCEPTED)
def test_the_same_environment_hashes_alike(
    cli: Cli,
    tmp_path: Path,
    keys: dict[str, KeyPair],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
) -> None:
    from_cli, from_api = both(cli, tmp_path, keys["ml-engineer"], env, monkeypatch)
    assert isinstance(from_cli, list) and from_cli == from_api


@pytest.mark.parametrize("env", REFUSED)
def test_the_same_environment_is_refused_alike(
    cli: Cli,
    tmp_path: Path,
    keys: dict[str, KeyPair],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
) -> None:
    assert both(cli, tmp_path, keys["ml-engineer"], env, monkeypatch) == (
        ExitCode.USAGE,
        ExitCode.USAGE,
    )
