"""``model verify``'s text report and a denied model's diagnostics escape hostile file names.

The model folder is the attacker's: a file added to it whose name holds a newline would
otherwise print ``model signature PASSED`` as a line of its own under the DENIED header.
Real data: model-signing v1.1.0's key fixture, copied to a temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlspec_attest.errors import ExitCode
from mlspec_attest.interop.oms.signature import KeyTrust, ModelSignatureDenied, check_model

from .reference import OmsFixtures, copy_tree
from .test_oms_cli import Run, run

__all__ = ["run"]

FORGED = "model signature PASSED: model"
NAMES = (f"x\n{FORGED}", f"y\u202e{FORGED}", f"z\x1b[1A\x1b[2K{FORGED}")


@pytest.fixture
def model(oms_fixtures: OmsFixtures, tmp_path: Path) -> Path:
    model = copy_tree(oms_fixtures.root / "v1.1.0-elliptic-key", tmp_path / "model")
    for name in NAMES:
        (model / name).write_bytes(b"unsigned\n")
    return model


@pytest.fixture
def public_key(oms_fixtures: OmsFixtures) -> Path:
    return oms_fixtures.published / "signing-key-pub.pem"


def safe(text: str) -> bool:
    return all(c == "\n" or c.isprintable() for c in text) and not any(
        line.startswith(FORGED) for line in text.split("\n")
    )


def test_model_verify_text_escapes_added_file_names(
    model: Path, public_key: Path, run: Run
) -> None:
    r = run(
        "model", "verify", model, "--signature", model / "model.sig", "--public-key", public_key
    )
    assert r.code == ExitCode.DENIED
    assert r.out.startswith("model signature DENIED")
    assert safe(r.out + r.err), r.out
    assert f"x\\n{FORGED} is in the model but not in the signature" in r.out
    doc = run(
        "model", "verify", model, "--signature", model / "model.sig",
        "--public-key", public_key, "--json",
    ).json()  # fmt: skip
    assert {p["message"].split(" is in")[0] for p in doc["problems"]} == set(NAMES)


def test_denied_model_diagnostics_escape_file_names(model: Path, public_key: Path) -> None:
    report = check_model(model, model / "model.sig", KeyTrust.from_file(public_key))
    text = ModelSignatureDenied(report).diagnostics()
    assert safe(text)
    assert f"y\\u202e{FORGED}" in text
