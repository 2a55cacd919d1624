"""``mlspec-attest monitor``: the metrics document of the verified log, exit codes."""

from __future__ import annotations

import json
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
