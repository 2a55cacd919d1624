"""``mlspec-attest monitor``: the metrics document of the verified log, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..serve.test_monitor import World
from .conftest import Cli


def test_cli_writes_the_document(cli: Cli, tmp_path: Path) -> None:
    world = World(tmp_path)
    world.serve(60)
    out = tmp_path / "monitoring.json"
    args = [
        "monitor", "--log", world.log_dir, "--log-key", world.server_pub, "--vsa", world.vsa,
        "--verifier-key", world.verifier_pub, "--train-data", world.train, "--out", out,
    ]  # fmt: skip
    result = cli(*args)
    assert result.code == 0, result.err
    assert "monitor: 60 request(s)" in result.out
    assert json.loads(out.read_text())["metrics"]["window.requests"] == 60.0
    swapped = [world.server_pub if a == world.verifier_pub else a for a in args]
    untrusted = cli(*swapped)
    assert untrusted.code == 1
    assert result.clean and untrusted.clean


def test_labels_must_be_finite_and_once_per_request(cli: Cli, tmp_path: Path) -> None:
    world = World(tmp_path)
    world.serve(10)
    out = tmp_path / "monitoring.json"
    base = [
        "monitor", "--log", world.log_dir, "--log-key", world.server_pub, "--vsa", world.vsa,
        "--verifier-key", world.verifier_pub, "--train-data", world.train, "--out", out,
    ]  # fmt: skip
    for body, message in (
        ("request_id,label\nr-main-0,inf\n", "is not a finite number"),
        ("request_id,label\nr-main-0,90\nr-main-0,91\n", "is labelled twice"),
    ):
        labels = tmp_path / "labels.csv"
        labels.write_text(body)
        result = cli(*base, "--labels", labels)
        assert result.code == 3, result.err
        assert message in result.err
        assert result.clean
        assert not out.exists()


def test_a_fifo_as_training_data_is_bad_input_not_a_hang(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.serve(10)
    fifo = tmp_path / "train.csv"
    fifo.unlink()
    os.mkfifo(fifo)
    argv = [
        sys.executable, "-m", "mlspec_attest", "monitor", "--log", str(world.log_dir),
        "--log-key", str(world.server_pub), "--vsa", str(world.vsa),
        "--verifier-key", str(world.verifier_pub), "--train-data", str(fifo),
        "--out", str(tmp_path / "m.json"),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert f"--train-data {fifo}: not a regular file (a FIFO)" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_replayed_labelled_request_id_withholds_the_live_error(cli: Cli, tmp_path: Path) -> None:
    world = World(tmp_path)
    world.serve(20)
    world.serve(5)  # r-main-0 .. r-main-4 again: a client resending ids it chose
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\n" + "".join(f"r-main-{i},90\n" for i in range(20)))
    out = tmp_path / "monitoring.json"
    result = cli(
        "monitor", "--log", world.log_dir, "--log-key", world.server_pub, "--vsa", world.vsa,
        "--verifier-key", world.verifier_pub, "--train-data", world.train, "--out", out,
        "--labels", labels,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert result.clean
    doc = json.loads(out.read_text())
    assert "live.mae" not in doc["metrics"]  # was: 25 pairs for 20 labels
    assert doc["omitted"]["live.mae"].startswith("withheld: ")
    assert "live.labels_ambiguous    5" in result.out
    assert "  live.mae                 withheld: " in result.out  # the reason, not only a count
