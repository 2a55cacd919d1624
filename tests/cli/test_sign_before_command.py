"""``sign -- CMD``: a problem with the options or inputs that can be found before the stage
command runs is found before it runs (a training job is not wasted on a typo).

Inputs the command writes (--product, --metrics, --detail) can only be checked after it;
everything else is checked first. Each case runs a real stage command that would leave a
marker file behind.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ..support import KeyPair
from .conftest import Cli

CASES = [
    # (options, exit code, message)
    (["--run-id", "bad id!"], 2, "run id 'bad id!' is not valid"),
    (["--role", "model=elsewhere.bin"], 2, "--role model=elsewhere.bin: not one of this stage's"),
    (["--kind", "nonsense"], 2, "unknown stage kind 'nonsense'"),
    (["--stage", "Bad Name"], 2, "stage name 'Bad Name' is not valid"),
    (["--started-on", "yesterday"], 2, "--started-on 'yesterday' is not an RFC 3339 instant"),
    (["--param", "novalue"], 2, "--param 'novalue' is not KEY=VALUE"),
    (["--policy", "missing.json"], 3, "missing.json: file not found"),
    (["--oms-signature", "model.sig"], 2, "--oms-signature needs exactly one of"),
    (["--passphrase-env", "NO_SUCH_VARIABLE_SET"], 2, "NO_SUCH_VARIABLE_SET"),
    (["--identity-token", "t"], 2, "--identity-token and --staging go with --sigstore"),
]


@pytest.mark.parametrize(("options", "code", "message"), CASES)
def test_found_before_the_stage_command(
    cli: Cli,
    tmp_path: Path,
    keys: dict[str, KeyPair],
    monkeypatch: pytest.MonkeyPatch,
    options: list[str],
    code: int,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_SUCH_VARIABLE_SET", raising=False)
    (tmp_path / "data.csv").write_text("x\n1\n")
    marker = tmp_path / "ran"
    script = f"open({str(marker)!r}, 'w'); open('model.bin', 'w').write('m')"
    result = cli(
        "sign", "--stage", "train", "--key", keys["owner"].key_path, "--material", "data.csv",
        "--product", "model.bin", "--store", "store", *options,
        "--", sys.executable, "-c", script,
    )  # fmt: skip
    assert result.clean, result.err
    assert result.code == code, result.err
    assert message in result.err
    assert not marker.exists(), "the stage command ran before the problem was reported"
    assert not (tmp_path / "store" / "runs").exists()


def test_a_role_naming_a_product_or_split_is_accepted(
    cli: Cli, tmp_path: Path, keys: dict[str, KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The early --role check compares paths as sign_stage names them (./x is x)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("x\n1\n")
    result = cli(
        "sign", "--stage", "train", "--key", keys["owner"].key_path, "--material", "data.csv",
        "--product", "model.bin", "--store", "store", "--role", "model=./model.bin",
        "--role", "train=data.csv", "--", sys.executable, "-c", "open('model.bin', 'w')",
    )  # fmt: skip
    assert result.code == 0, result.err
