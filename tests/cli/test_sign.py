"""``mlspec-attest sign``."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.signing.keys import write_key_pair
from mlspec_attest.store.ledger import AttestationStore

from ..support import KeyPair, Pipeline
from .conftest import Cli

PY = sys.executable


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "ws/data").mkdir(parents=True)
    (tmp_path / "ws/data/train.csv").write_text("x,y\n1,2\n")
    (tmp_path / "ws/model.pkl").write_bytes(b"model-bytes")
    return tmp_path / "ws"


def base_args(ws: Path, key: KeyPair, *extra: str | Path) -> list[str | Path]:
    return [
        "sign",
        "--stage",
        "train",
        "--key",
        key.key_path,
        "--store",
        ws.parent / "store",
        "--run-id",
        "r1",
        "--base-dir",
        ws,
        *extra,
    ]


def statements(ws: Path) -> list[StageStatement]:
    store = AttestationStore(ws.parent / "store")
    if not store.run_dir("r1").exists():
        return []
    out = []
    for att in store.attestations("r1"):
        assert att.bundle is not None
        out.append(StageStatement.from_payload(att.bundle.envelope.payload))
    return out


def store_files(ws: Path) -> list[Path]:
    root = ws.parent / "store"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_sign_materials_products_params(cli: Cli, ws: Path, keys: dict[str, KeyPair]) -> None:
    (ws / "metrics.json").write_text('{"metrics": {"mae": 3.5}}')
    result = cli(
        *base_args(ws, keys["ml-engineer"]),
        "--material",
        ws / "data/train.csv",
        "--product",
        ws / "model.pkl",
        "--param",
        "max_depth=4",
        "--param",
        "criterion=mse",
        "--infra",
        "gpus=0",
        "--role",
        f"train={ws / 'data/train.csv'}",
        "--metrics",
        ws / "metrics.json",
        "--json",
    )
    assert result.code == 0, result.err
    summary = result.json()
    assert summary["stage"] == "train" and summary["runId"] == "r1"
    assert summary["keyid"] == keys["ml-engineer"].keyid
    assert summary["subjects"][0]["digest"] == {
        "sha256": hashlib.sha256(b"model-bytes").hexdigest()
    }
    bundle = Bundle.from_json(load_file(Path(summary["attestation"])))
    assert bundle.envelope.verified_by(keys["ml-engineer"].public)
    [statement] = statements(ws)
    meta = statement.metadata
    assert meta.parameters == {"max_depth": 4, "criterion": "mse"}
    assert meta.infrastructure == {"gpus": 0}
    assert meta.roles == {"train": "data/train.csv"}
    assert meta.metrics == {"mae": 3.5}
    assert [m.name for m in statement.materials] == ["data/train.csv"]


def test_sign_text_output_goes_to_stderr(cli: Cli, ws: Path, keys: dict[str, KeyPair]) -> None:
    result = cli(*base_args(ws, keys["ml-engineer"]), "--product", ws / "model.pkl")
    assert result.code == 0
    assert result.out == ""
    assert "signed stage 'train'" in result.err


def test_sign_wraps_a_command(cli: Cli, ws: Path, keys: dict[str, KeyPair]) -> None:
    script = (
        f"import pathlib; pathlib.Path({str(ws / 'out.txt')!r}).write_text('new'); print('trained')"
    )
    result = cli(
        *base_args(ws, keys["ml-engineer"]), "--product", ws / "out.txt", "--", PY, "-c", script
    )
    assert result.code == 0, result.err
    assert "trained" in result.out  # the command's output is passed through
    [statement] = statements(ws)
    assert statement.command.argv == (PY, "-c", script)
    assert statement.command.exit_code == 0
    assert statement.command.stdout_sha256 == hashlib.sha256(b"trained\n").hexdigest()
    assert statement.products[0].digest == {"sha256": hashlib.sha256(b"new").hexdigest()}


@pytest.mark.parametrize("status", [1, 5, 42])
def test_failing_command_returns_its_status_and_writes_nothing(
    cli: Cli, ws: Path, keys: dict[str, KeyPair], status: int
) -> None:
    result = cli(
        *base_args(ws, keys["ml-engineer"]),
        "--material",
        ws / "data/train.csv",
        "--product",
        ws / "model.pkl",
        "--",
        PY,
        "-c",
        f"import sys; sys.exit({status})",
    )
    assert result.code == status
    assert f"exited with status {status}" in result.err
    assert result.clean
    assert store_files(ws) == []


def test_failing_command_with_json(cli: Cli, ws: Path, keys: dict[str, KeyPair]) -> None:
    result = cli(
        *base_args(ws, keys["ml-engineer"]),
        "--product",
        ws / "model.pkl",
        "--json",
        "--",
        PY,
        "-c",
        "import sys; sys.exit(3)",
    )
    assert result.code == 3
    doc = result.json()
    assert doc["result"] == "ERROR"
    assert doc["exitCode"] == 3
    assert "exited with status 3" in doc["error"]["message"]


@pytest.mark.parametrize("status", [2, 3])
def test_failed_command_error_kind_is_not_its_exit_status(
    cli: Cli, ws: Path, keys: dict[str, KeyPair], status: int
) -> None:
    # The command's own status is propagated as the exit code, but the error
    # document must still say what happened: the stage command failed. A stage
    # exiting 2 is not a usage error of mlspec-attest, nor 3 a bad input.
    result = cli(
        *base_args(ws, keys["ml-engineer"]),
        "--product",
        ws / "model.pkl",
        "--json",
        "--",
        PY,
        "-c",
        f"import sys; sys.exit({status})",
    )
    assert result.code == status
    kind = result.json()["error"]["kind"]
    assert kind not in ("usage", "bad-input"), kind


def test_sign_json_with_a_command_prints_one_json_document(
    cli: Cli, ws: Path, keys: dict[str, KeyPair]
) -> None:
    # --json promises exactly one document on stdout, even when the wrapped
    # command prints: its output must not be mixed into the JSON stream.
    result = cli(
        *base_args(ws, keys["ml-engineer"]),
        "--product",
        ws / "model.pkl",
        "--json",
        "--",
        PY,
        "-c",
        "print('training log line')",
    )
    assert result.code == 0, result.err
    assert result.json()["stage"] == "train"


def test_sign_binds_the_policy_digest(
    cli: Cli, pipeline: Pipeline, keys: dict[str, KeyPair]
) -> None:
    ws = pipeline.ws
    (ws / "data").mkdir(exist_ok=True)
    (ws / "data/raw.csv").write_text("a\n1\n")
    result = cli(
        "sign",
        "--stage",
        "ingest",
        "--key",
        keys["data-engineer"].key_path,
        "--store",
        pipeline.store_path,
        "--run-id",
        "run-a",
        "--base-dir",
        ws,
        "--policy",
        pipeline.signed_policy_path,
        "--product",
        ws / "data/raw.csv",
    )
    assert result.code == 0, result.err
    att = next(pipeline.store.attestations("run-a"))
    assert att.bundle is not None
    statement = StageStatement.from_payload(att.bundle.envelope.payload)
    assert statement.metadata.policy_digest == pipeline.signed.digest


def test_sign_with_encrypted_key(
    cli: Cli, ws: Path, keys: dict[str, KeyPair], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_path, _ = write_key_pair(keys["ml-engineer"].signer, tmp_path / "enc", passphrase=b"pw")
    args = ["sign", "--stage", "train", "--key", key_path, "--store", tmp_path / "store"]
    args += ["--run-id", "r1", "--base-dir", ws, "--product", ws / "model.pkl"]
    result = cli(*args)
    assert result.code == 3
    assert "encrypted" in result.err and "--passphrase-env" in result.err
    monkeypatch.setenv("PW", "pw")
    assert cli(*args, "--passphrase-env", "PW").code == 0


def test_sign_key_from_environment(
    cli: Cli, ws: Path, keys: dict[str, KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSPEC_ATTEST_KEY", str(keys["ml-engineer"].key_path))
    monkeypatch.setenv("MLSPEC_ATTEST_STORE", str(ws.parent / "store"))
    monkeypatch.setenv("MLSPEC_RUN_ID", "r1")
    result = cli("sign", "--stage", "train", "--base-dir", ws, "--product", ws / "model.pkl")
    assert result.code == 0, result.err
    assert len(statements(ws)) == 1


# -------------------------------------------------------------- bad input
def test_public_key_as_signing_key(cli: Cli, ws: Path, keys: dict[str, KeyPair]) -> None:
    args = base_args(ws, keys["ml-engineer"], "--product", ws / "model.pkl")
    args[args.index(keys["ml-engineer"].key_path)] = keys["ml-engineer"].pub_path
    result = cli(*args)
    assert result.code == 3
    assert "not a PEM private key" in result.err
    assert ".pub" in result.err  # the fix names the mistake
    assert result.clean
    assert store_files(ws) == []


def test_rsa_1024_key_is_refused(cli: Cli, ws: Path, tmp_path: Path) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (tmp_path / "weak.key").write_bytes(
        weak.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    args = ["sign", "--stage", "train", "--key", tmp_path / "weak.key", "--store", tmp_path / "s"]
    result = cli(*args, "--run-id", "r1", "--base-dir", ws, "--product", ws / "model.pkl")
    assert result.code == 3
    assert "1024 bits is too small" in result.err
    assert result.clean


def test_missing_key_file(cli: Cli, ws: Path, tmp_path: Path) -> None:
    args = ["sign", "--stage", "train", "--key", tmp_path / "nope.key", "--store", tmp_path / "s"]
    result = cli(*args, "--product", ws / "model.pkl")
    assert result.code == 3
    assert "not found" in result.err


def test_missing_product(cli: Cli, ws: Path, keys: dict[str, KeyPair]) -> None:
    result = cli(*base_args(ws, keys["ml-engineer"], "--product", ws / "nope.pkl"))
    assert result.code == 3
    assert "no such file" in result.err
    assert result.clean


def test_nan_in_metrics_file(cli: Cli, ws: Path, keys: dict[str, KeyPair]) -> None:
    (ws / "m.json").write_text('{"mae": NaN}')
    result = cli(
        *base_args(
            ws, keys["ml-engineer"], "--product", ws / "model.pkl", "--metrics", ws / "m.json"
        )
    )
    assert result.code == 3
    assert result.clean
    assert statements(ws) == []


@pytest.mark.parametrize(
    "extra",
    [
        ["--product", "model.pkl", "--param", "novalue"],
        ["--product", "model.pkl", "--role", "model"],
        ["--product", "model.pkl", "--kind", "deploy"],
        ["--product", "model.pkl", "--started-on", "yesterday"],
        [],  # no product
    ],
    ids=["param", "role", "kind", "started-on", "no-product"],
)
def test_usage_errors(cli: Cli, ws: Path, keys: dict[str, KeyPair], extra: list[str]) -> None:
    extra = [str(ws / e) if e == "model.pkl" else e for e in extra]
    result = cli(*base_args(ws, keys["ml-engineer"], *extra))
    assert result.code == 2, result.err
    assert result.clean
    assert statements(ws) == []


def test_no_key_at_all(cli: Cli, ws: Path) -> None:
    result = cli("sign", "--stage", "train", "--product", ws / "model.pkl")
    assert result.code == 2
    assert "no signing key" in result.err


def test_bad_stage_name(cli: Cli, ws: Path, keys: dict[str, KeyPair]) -> None:
    args = base_args(ws, keys["ml-engineer"], "--product", ws / "model.pkl")
    args[args.index("train")] = "Train Model"
    result = cli(*args)
    assert result.code == 2
    assert "stage name" in result.err
