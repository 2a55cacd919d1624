"""``mlspec-attest verify``: exit 0 on pass, 1 on deny, one JSON document with --json."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..support import Pipeline, flip_byte
from .conftest import Cli


def test_verify_pass(cli: Cli, honest: Pipeline) -> None:
    result = cli(*honest.cli_verify_args())
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["schemaVersion"] == "https://mlspec-attest.dev/verification-report/v1"
    assert doc["result"] == "PASSED"
    assert doc["runId"] == "run-a"
    assert doc["policy"]["digest"] == honest.signed.digest
    assert [s["status"] for s in doc["stages"]] == ["ok"] * 4
    assert doc["failures"] == []


def test_verify_pass_text(cli: Cli, honest: Pipeline) -> None:
    result = cli(*honest.cli_verify_args(as_json=False))
    assert result.code == 0
    assert result.out.startswith("verification PASSED: policy test-pipeline")
    assert "[ok  ] train" in result.out


def test_verify_deny(cli: Cli, honest: Pipeline) -> None:
    flip_byte(honest.ws / "dist/model/weights.bin")
    result = cli(*honest.cli_verify_args())
    assert result.code == 1
    doc = result.json()
    assert doc["result"] == "FAILED"
    [failure] = doc["failures"]
    assert failure["check"] == "artifact-mismatch"
    assert "changed: weights.bin" in failure["found"]


def test_verify_deny_text_names_everything(cli: Cli, honest: Pipeline) -> None:
    flip_byte(honest.ws / "dist/model/weights.bin")
    result = cli(*honest.cli_verify_args(as_json=False))
    assert result.code == 1
    out = result.out
    assert out.startswith("verification DENIED")
    assert "1. [artifact-mismatch] stage package:" in out
    for label in ("expected:", "found:", "fix:"):
        assert label in out


def test_verify_single_run_needs_no_run_id(cli: Cli, honest: Pipeline) -> None:
    args = honest.cli_verify_args()
    i = args.index("--run-id")
    del args[i : i + 2]
    assert cli(*args).code == 0


def test_verify_several_runs_need_a_run_id(cli: Cli, honest: Pipeline) -> None:
    honest.sign("ingest", run_id="run-b")
    args = honest.cli_verify_args()
    i = args.index("--run-id")
    del args[i : i + 2]
    result = cli(*args)
    assert result.code == 2
    assert "--run-id" in result.err


def test_verify_wrong_policy_key(cli: Cli, honest: Pipeline) -> None:
    result = cli(*honest.cli_verify_args(owner="intruder"))
    assert result.code == 1
    assert [f["check"] for f in result.json()["failures"]] == ["policy-signature"]


# -------------------------------------------------------------- bad input
def test_verify_with_a_yaml_policy(cli: Cli, honest: Pipeline) -> None:
    args = honest.cli_verify_args(as_json=False)
    args[args.index(str(honest.signed_policy_path))] = str(honest.policy_yaml)
    result = cli(*args)
    assert result.code == 3
    assert "signed policy" in result.err
    assert "policy sign" in result.err
    assert result.clean


def truncated_policy(honest: Pipeline, tmp_path: Path) -> Path:
    data = honest.signed_policy_path.read_bytes()
    path = tmp_path / "cut.signed.json"
    path.write_bytes(data[: len(data) - 40])
    return path


def test_verify_truncated_signed_policy(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    args = honest.cli_verify_args(as_json=False)
    args[args.index(str(honest.signed_policy_path))] = str(truncated_policy(honest, tmp_path))
    result = cli(*args)
    assert result.code == 3
    assert "not valid JSON" in result.err
    assert result.clean


def test_verify_truncated_signed_policy_json(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    args = honest.cli_verify_args()
    args[args.index(str(honest.signed_policy_path))] = str(truncated_policy(honest, tmp_path))
    result = cli(*args)
    assert result.code == 3
    doc = result.json()  # still exactly one JSON document
    assert doc["schemaVersion"] == "https://mlspec-attest.dev/error/v1"
    assert doc["result"] == "ERROR"
    assert doc["exitCode"] == 3
    assert "not valid JSON" in doc["error"]["message"]


def test_verify_policy_missing(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    args = honest.cli_verify_args()
    args[args.index(str(honest.signed_policy_path))] = str(tmp_path / "nope.json")
    result = cli(*args)
    assert result.code == 3
    assert "file not found" in result.json()["error"]["message"]


def test_verify_private_key_as_policy_key(cli: Cli, honest: Pipeline) -> None:
    args = honest.cli_verify_args(as_json=False)
    args[args.index(str(honest.keys["owner"].pub_path))] = str(honest.keys["owner"].key_path)
    result = cli(*args)
    assert result.code == 3
    assert "not a PEM public key" in result.err
    assert result.clean


def test_verify_tampered_policy_json_is_denied(cli: Cli, honest: Pipeline) -> None:
    honest.signed_policy_path.write_bytes(
        honest.signed_policy_path.read_bytes().replace(b'"payloadType"', b'"payloadType" ')
    )
    assert cli(*honest.cli_verify_args()).code == 0  # whitespace is not tampering
    honest.signed_policy_path.write_bytes(b'{"apiVersion": "mlspec-attest/v1"}')
    result = cli(*honest.cli_verify_args())
    assert result.code == 3
    assert "not signed" in result.json()["error"]["message"]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda a: a.remove("--policy-key"),
        lambda a: a.__setitem__(a.index("--artifact") + 1, "model"),
        lambda a: a.__setitem__(a.index("--artifact") + 1, "weights=/tmp/x"),
        lambda a: a.append("--no-such-flag"),
    ],
    ids=["missing-policy-key", "artifact-not-pair", "unknown-role", "unknown-flag"],
)
def test_verify_usage_errors(cli: Cli, honest: Pipeline, mutate) -> None:  # type: ignore[no-untyped-def]
    args = honest.cli_verify_args()
    mutate(args)
    result = cli(*args)
    assert result.code == 2
    assert result.clean
    doc = result.json()  # --json on a usage error: still one JSON document
    assert doc["exitCode"] == 2
    assert doc["result"] == "ERROR"
