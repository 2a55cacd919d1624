"""The CLI contract: exit codes, --json documents, no tracebacks, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlspec_attest import __version__
from mlspec_attest.cli.main import COMMANDS

from ..support import KeyPair, Pipeline, flip_byte
from .conftest import Cli

PY = sys.executable


def test_help_lists_every_command(cli: Cli) -> None:
    result = cli("--help")
    assert result.code == 0
    for name in COMMANDS:
        assert name in result.out
    assert "Exit codes: 0 passed" in result.out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_has_help(cli: Cli, name: str) -> None:
    result = cli(name, "--help")
    assert result.code == 0
    assert "Usage: mlspec-attest" in result.out


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.code == 0
    assert __version__ in result.out


def test_no_arguments_is_usage(cli: Cli) -> None:
    result = cli()
    assert result.code == 2
    assert "Usage" in result.err


@pytest.mark.parametrize("args", [["frobnicate"], ["policy", "frobnicate"], ["--bogus"]])
def test_unknown_commands_and_options_are_usage(cli: Cli, args: list[str]) -> None:
    result = cli(*args)
    assert result.code == 2
    assert result.clean
    assert "error:" in result.err


def test_usage_error_with_json_prints_one_document(cli: Cli) -> None:
    result = cli("digest", "--json")  # missing PATH
    assert result.code == 2
    doc = result.json()
    assert doc["schemaVersion"] == "https://mlspec-attest.dev/error/v1"
    assert doc["result"] == "ERROR"
    assert doc["exitCode"] == 2
    assert doc["error"]["kind"] == "usage"
    assert "PATH" in doc["error"]["message"]
    assert doc["error"]["remedy"]


def test_json_after_double_dash_is_not_ours(
    cli: Cli, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    (tmp_path / "out").write_text("x")
    result = cli(
        "sign", "--stage", "train", "--key", keys["owner"].key_path, "--store", tmp_path / "s",
        "--run-id", "r", "--base-dir", tmp_path, "--product", tmp_path / "out",
        "--", PY, "-c", "import sys; sys.exit(9)", "--json",
    )  # fmt: skip
    assert result.code == 9
    assert result.out == ""  # no JSON error document: --json belonged to the command


# ------------------------------------------- bad inputs: exit 3, no traceback
def broken_yaml(tmp: Path, _: Pipeline) -> list[str | Path]:
    (tmp / "p.yaml").write_text("apiVersion: mlspec-attest/v1\nkind: Policy\nstages: [\n")
    return ["policy", "show", tmp / "p.yaml"]


def truncated_signed_policy(tmp: Path, p: Pipeline) -> list[str | Path]:
    (tmp / "s.json").write_bytes(p.signed_policy_path.read_bytes()[:100])
    return ["inspect", tmp / "s.json"]


def pub_as_key(tmp: Path, p: Pipeline) -> list[str | Path]:
    return ["policy", "sign", p.policy_yaml, "--key", p.keys["owner"].pub_path, "--out", tmp / "o"]


def missing_file(tmp: Path, p: Pipeline) -> list[str | Path]:
    return ["policy", "show", tmp / "missing.yaml"]


def duplicate_json_key(tmp: Path, p: Pipeline) -> list[str | Path]:
    (tmp / "d.json").write_text('{"payload": "e30=", "payload": "e30="}')
    return ["inspect", tmp / "d.json"]


def not_a_policy_payload(tmp: Path, p: Pipeline) -> list[str | Path]:
    return ["verify", "--policy", p.bundle_path("ingest"), "--policy-key", p.keys["owner"].pub_path,
            "--store", p.store_path]  # fmt: skip


#: case -> (arguments, whether the command takes --json)
BAD_INPUTS: dict[str, tuple[Callable[[Path, Pipeline], list[str | Path]], bool]] = {
    "broken-yaml-policy": (broken_yaml, False),
    "truncated-signed-policy": (truncated_signed_policy, True),
    "public-key-as-private": (pub_as_key, False),
    "missing-file": (missing_file, False),
    "duplicate-json-key": (duplicate_json_key, True),
    "attestation-as-policy": (not_a_policy_payload, True),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_3_without_traceback(
    cli: Cli, honest: Pipeline, tmp_path: Path, case: str
) -> None:
    make_args, takes_json = BAD_INPUTS[case]
    args = make_args(tmp_path, honest)
    result = cli(*args)
    assert result.code == 3, result.err
    assert result.clean
    assert result.out == ""
    assert result.err.startswith("error: ")
    assert len(result.err.strip().splitlines()) <= 12  # a message, not a dump
    if takes_json:
        as_json = cli(*args, "--json")
        assert as_json.code == 3
        doc = as_json.json()  # exactly one JSON document, even on error
        assert doc["exitCode"] == 3 and doc["result"] == "ERROR"
        assert doc["error"]["message"]


# ------------------------------------------------- one versioned JSON doc
def json_outputs(tmp: Path, p: Pipeline) -> dict[str, list[str | Path]]:
    (tmp / "f").write_text("x")
    return {
        "keygen": ["keygen", "--out", tmp / "k", "--json"],
        "sign": ["sign", "--stage", "extra", "--key", p.keys["owner"].key_path, "--store",
                 tmp / "s", "--run-id", "r", "--base-dir", tmp, "--product", tmp / "f", "--json"],
        "digest": ["digest", tmp / "f", "--json"],
        "inspect-bundle": ["inspect", p.bundle_path("ingest"), "--json"],
        "inspect-yaml": ["inspect", p.policy_yaml, "--json"],
        "policy-lint": ["policy", "lint", p.policy_yaml, "--json"],
        "verify": p.cli_verify_args(),
        "stages": ["stages", "--json"],
    }  # fmt: skip


@pytest.mark.parametrize(
    "name",
    [
        "keygen",
        "sign",
        "digest",
        "inspect-bundle",
        "inspect-yaml",
        "policy-lint",
        "verify",
        "stages",
    ],
)
def test_every_json_output_is_one_versioned_document(
    cli: Cli, honest: Pipeline, tmp_path: Path, name: str
) -> None:
    result = cli(*json_outputs(tmp_path, honest)[name])
    assert result.code == 0, result.err
    doc = result.json()
    assert isinstance(doc, dict), f"{name} --json printed a {type(doc).__name__}"
    assert str(doc.get("schemaVersion", "")).startswith("https://mlspec-attest.dev/"), (
        f"{name} --json has no schemaVersion"
    )


# ------------------------------------------------------------ subprocesses
def run_module(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "mlspec_attest", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=120,
    )


def test_subprocess_verify_pass_and_deny(honest: Pipeline) -> None:
    passed = run_module(*honest.cli_verify_args())
    assert passed.returncode == 0, passed.stderr
    assert json.loads(passed.stdout)["result"] == "PASSED"
    flip_byte(honest.ws / "dist/model/weights.bin")
    denied = run_module(*honest.cli_verify_args())
    assert denied.returncode == 1
    assert json.loads(denied.stdout)["result"] == "FAILED"


def test_subprocess_bad_input_has_no_traceback(tmp_path: Path, honest: Pipeline) -> None:
    (tmp_path / "s.json").write_bytes(honest.signed_policy_path.read_bytes()[:50])
    result = run_module(
        "verify", "--policy", tmp_path / "s.json", "--policy-key", honest.keys["owner"].pub_path,
        "--store", honest.store_path,
    )  # fmt: skip
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    assert result.stdout == ""


def test_help_does_not_import_heavy_modules() -> None:
    script = (
        "import sys\n"
        "from mlspec_attest.cli.main import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "heavy = ['cryptography', 'rich', 'ruamel', 'ruamel.yaml', 'jsonschema', 'rfc8785']\n"
        "print('RESULT', code, sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [PY, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    last = result.stdout.strip().splitlines()[-1]
    assert last == "RESULT 0 []", result.stdout + result.stderr


def test_console_script_help() -> None:
    result = run_module("--help")
    assert result.returncode == 0
    assert "mlspec-attest" in result.stdout
