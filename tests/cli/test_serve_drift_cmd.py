"""``serve --train-data``: the drift signal's training data must be the one the summary names."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mlspec_attest.formats.statement import ResourceDescriptor

from ..serve.test_gate_support import (
    make_model_dir,
    subject_digest,
    summary_for,
    verifier,
    write_keys,
    write_signed,
)
from .conftest import Cli


def test_other_training_data_is_refused_before_serving(cli: Cli, tmp_path: Path) -> None:
    model = make_model_dir(tmp_path / "iris")
    train = tmp_path / "train.csv"
    train.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
    subjects = (
        ResourceDescriptor("model", subject_digest(model)),
        ResourceDescriptor("train-data", {"sha256": hashlib.sha256(b"other bytes").hexdigest()}),
    )
    vsa = write_signed(tmp_path / "m.vsa.json", summary_for(model, subjects=subjects))
    _, pub = write_keys(verifier(), tmp_path / "keys", "verifier")
    server_key, _ = write_keys(verifier(), tmp_path / "keys", "server")
    result = cli(
        "serve", "--vsa", vsa, "--verifier-key", pub, "--model", model,
        "--log-dir", tmp_path / "log", "--log-key", server_key, "--train-data", train,
        "--port", "0",
    )  # fmt: skip
    assert result.code == 1, result.err
    assert "is not the training data the summary names" in result.err
    assert "serving" not in result.err
    assert result.clean
