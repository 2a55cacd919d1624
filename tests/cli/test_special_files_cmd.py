"""A FIFO, ``/dev/zero`` or a directory given for a file option of ``rollback``, ``serve``,
``gate`` or ``monitor``: a clear refusal, never a hang, a traceback or a JSON parse message.

A FIFO or a device is bad input (exit 3, "not a regular file (a FIFO)"); a directory is a
usage error (exit 2, click: "is a directory"). Every ``serve`` here is given a port already
in use, so a check that let the input through would end in exit 4, not in a server."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlspec_attest.signing.keys import KeyType, generate_key, write_key_pair

from ..serve.test_gate_support import (
    make_model_dir,
    summary_for,
    verifier,
    write_keys,
    write_signed,
)
from .conftest import Cli

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


class World:
    def __init__(self, root: Path, port: int) -> None:
        self.model = make_model_dir(root / "model")
        self.vsa = write_signed(root / "model.vsa.json", summary_for(self.model))
        self.pub = write_keys(verifier(), root / "keys", "verifier")[1]
        self.server_key = write_key_pair(generate_key(KeyType.ED25519), root / "server")[0]
        self.train = root / "train.csv"
        self.train.write_text("a,b\n1,2\n")
        self.root, self.port = root, port
        self.fifo = root / "fifo"
        os.mkfifo(self.fifo)

    def argv(self, command: str) -> list[str | Path]:
        """A command line that passes every file check."""
        trust: list[str | Path] = ["--verifier-key", self.pub]
        if command == "rollback":
            return ["rollback", "--to", self.vsa, "--model", self.model, *trust]
        if command == "gate":
            return ["gate", "--vsa", self.vsa, "--model", self.model, *trust]
        if command == "monitor":
            return ["monitor", "--log", self.root / "log", "--log-key", self.pub, "--vsa",
                    self.vsa, *trust, "--train-data", self.train, "--out", self.root / "m.json"]  # fmt: skip
        return ["serve", "--vsa", self.vsa, "--model", self.model, *trust, "--log-dir",
                self.root / "log", "--log-key", self.server_key, "--port", str(self.port)]  # fmt: skip


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        yield World(tmp_path, taken.getsockname()[1])
    finally:
        taken.close()


CASES = [
    ("rollback", "--to"),
    ("rollback", "--verifier-key"),
    ("rollback", "--policy"),
    ("rollback", "--policy-key"),
    ("serve", "--vsa"),
    ("serve", "--verifier-key"),
    ("serve", "--log-key"),
    ("serve", "--train-data"),
    ("gate", "--vsa"),
    ("gate", "--verifier-key"),
    ("monitor", "--vsa"),
    ("monitor", "--verifier-key"),
    ("monitor", "--log-key"),
    ("monitor", "--train-data"),
    ("monitor", "--labels"),
]


def given(world: World, command: str, option: str, value: str | Path) -> list[str | Path]:
    argv = world.argv(command)
    if option in ("--policy", "--policy-key"):  # the other one a regular file
        argv += ["--policy", world.vsa, "--policy-key", world.pub]
    if option in argv:
        argv[argv.index(option) + 1] = value
    else:
        argv += [option, value]
    return argv


@pytest.mark.parametrize(("command", "option"), CASES)
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_a_device_is_refused_as_such(
    cli: Cli, world: World, command: str, option: str, kind: str
) -> None:
    value = world.fifo if kind == "fifo" else Path("/dev/zero")
    result = cli(*given(world, command, option, value))
    assert result.code == 3, result.err
    what = "a FIFO" if kind == "fifo" else "a character device"
    assert f"{value}: not a regular file ({what}); give the file itself" in result.err
    assert "not valid JSON" not in result.err
    assert result.clean


@pytest.mark.parametrize(("command", "option"), CASES)
def test_a_directory_is_a_usage_error(cli: Cli, world: World, command: str, option: str) -> None:
    result = cli(*given(world, command, option, world.root))
    assert result.code == 2, result.err
    assert "is a directory" in result.err
    assert result.clean


@pytest.mark.parametrize("option", ["--trusted-root", "--trust-config"])
def test_a_fifo_as_the_trust_root_is_refused_as_such(cli: Cli, world: World, option: str) -> None:
    keyless = [
        "--verifier-identity",
        "v@example.com",
        "--verifier-issuer",
        "https://issuer.example",
    ]
    for command in ("rollback", "serve"):
        result = cli(*world.argv(command), *keyless, option, world.fifo)
        assert result.code == 3, result.err
        assert f"{option} {world.fifo}: not a regular file (a FIFO)" in result.err


def test_rollback_json_names_the_refusal(cli: Cli, world: World) -> None:
    result = cli(*given(world, "rollback", "--to", world.fifo), "--json")
    assert result.code == 3
    doc = result.json()
    assert (doc["exitCode"], doc["error"]["kind"]) == (3, "bad-input")
    assert "not a regular file (a FIFO)" in doc["error"]["message"]


def test_a_regular_file_still_passes(cli: Cli, world: World) -> None:
    assert cli(*world.argv("rollback")).code == 0, "the summary on disk gates as before"
