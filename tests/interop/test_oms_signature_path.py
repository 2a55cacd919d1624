"""The signature file left out of a model is the path as given, never a symlink's target.

``model verify MODEL --signature MODEL/model.sig`` leaves the signature out of the model
walk. It used to decide which entry that was by the *resolved* path: an attacker who
controls the model folder added an unsigned ``adapter_config.json`` (the genuine
signature JSON plus extra keys, which the bundle reader ignores) and made ``model.sig``
a symlink to it; ``model.sig`` was left out by the signature's recorded ignore_paths and
``adapter_config.json`` as "the signature", so the added file went unreported.

Now the entry left out is the signature path read lexically, and a signature path that
goes through a symlink inside the model (or whose ``..`` leads elsewhere) is refused
(exit 3). Real data: model-signing v1.1.0's key fixture (tests/assets), copied to a
temporary folder; the reference ``model_signing`` for what it does with the same tree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlspec_attest.errors import ArtifactPathError, ExitCode
from mlspec_attest.interop.oms.paths import path_in_model, signature_in_model
from mlspec_attest.interop.oms.signature import KeyTrust, check_model, sign_model, verify_model
from mlspec_attest.signing.keys import load_private_key

from .reference import OmsFixtures, copy_tree
from .test_oms import needs_reference, reference_verify_key
from .test_oms_cli import Run, run

__all__ = ["run"]

FIXTURE = "v1.1.0-elliptic-key"


@pytest.fixture
def model(oms_fixtures: OmsFixtures, tmp_path: Path) -> Path:
    """A private copy of model-signing v1.1.0's key-signed model (``model.sig`` inside)."""
    return copy_tree(oms_fixtures.root / FIXTURE, tmp_path / "model")


@pytest.fixture
def public_key(oms_fixtures: OmsFixtures) -> Path:
    return oms_fixtures.published / "signing-key-pub.pem"


@pytest.fixture
def test_key(oms_fixtures: OmsFixtures) -> Path:
    """Keys made in this session (``signing-key.pem``, ECDSA P-384)."""
    return oms_fixtures.generated


def trust(public_key: Path) -> KeyTrust:
    return KeyTrust.from_file(public_key)


def hide_behind_signature(model: Path) -> Path:
    """The attack: ``adapter_config.json`` = the genuine bundle plus extra keys, and
    ``model.sig`` a symlink to it."""
    bundle = json.loads((model / "model.sig").read_text())
    bundle["base_model_name_or_path"] = "attacker/backdoored-adapter"
    bundle["peft_type"] = "LORA"
    added = model / "adapter_config.json"
    added.write_text(json.dumps(bundle))
    (model / "model.sig").unlink()
    (model / "model.sig").symlink_to("adapter_config.json")
    return added


def test_the_honest_fixture_passes_with_its_signature_inside(
    model: Path, public_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = verify_model(model, model / "model.sig", trust(public_key))
    assert "model.sig" in report.ignored
    monkeypatch.chdir(model)
    for signature in ("model.sig", "./model.sig", "../model/model.sig"):
        assert check_model(Path("."), Path(signature), trust(public_key)).passed, signature


def test_a_symlinked_signature_cannot_hide_an_added_file(model: Path, public_key: Path) -> None:
    hide_behind_signature(model)
    with pytest.raises(ArtifactPathError, match=r"symlink inside the model \(model\.sig\)"):
        check_model(model, model / "model.sig", trust(public_key))


def test_the_cli_refuses_a_symlinked_signature_with_exit_3(
    model: Path, public_key: Path, run: Run
) -> None:
    hide_behind_signature(model)
    result = run(
        "model", "verify", model, "--signature", model / "model.sig",
        "--public-key", public_key, "--json",
    )  # fmt: skip
    assert result.code == ExitCode.BAD_INPUT
    error = result.json()["error"]
    assert error["type"] == "ArtifactPathError"
    assert "symlink inside the model" in error["message"]


def test_the_file_behind_an_outside_symlink_is_checked(
    model: Path, public_key: Path, tmp_path: Path
) -> None:
    """A signature named outside the model leaves nothing out, wherever it points."""
    (model / "model.sig").rename(model / "extra.json")
    outside = tmp_path / "sig.json"
    outside.symlink_to(model / "extra.json")
    report = check_model(model, outside, trust(public_key))
    assert [(p.check, p.message) for p in report.problems] == [
        ("file-added", "extra.json is in the model but not in the signature")
    ]
    assert "extra.json" not in report.ignored


def test_a_signature_under_a_symlinked_folder_is_refused(
    model: Path, public_key: Path, tmp_path: Path
) -> None:
    (tmp_path / "real").mkdir()
    (model / "model.sig").rename(tmp_path / "real" / "model.sig")
    (model / "sub").symlink_to(tmp_path / "real")
    with pytest.raises(ArtifactPathError, match=r"symlink inside the model \(sub\)"):
        check_model(model, model / "sub" / "model.sig", trust(public_key))


def test_dot_dot_through_a_symlink_is_refused(
    model: Path, public_key: Path, tmp_path: Path
) -> None:
    """``MODEL/l/../model.sig`` reads ``elsewhere/model.sig``; lexically it is ``MODEL/model.sig``,
    which would be left out unread."""
    (tmp_path / "elsewhere" / "deep").mkdir(parents=True)
    (model / "model.sig").rename(tmp_path / "elsewhere" / "model.sig")
    (model / "model.sig").write_text("an unsigned file where the signature seems to be\n")
    (model / "l").symlink_to(tmp_path / "elsewhere" / "deep")
    with pytest.raises(ArtifactPathError, match=r"'\.\.' leads elsewhere than model\.sig"):
        check_model(model, Path(f"{model}/l/../model.sig"), trust(public_key))


def test_signing_refuses_a_symlinked_signature_path(tmp_path: Path, test_key: Path) -> None:
    """Signing left out (and recorded as ignored) the symlink's target: here the weights."""
    model = tmp_path / "m"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00" * 64)
    (model / "model.sig").symlink_to("weights.bin")
    with pytest.raises(ArtifactPathError, match="symlink inside the model"):
        sign_model(model, model / "model.sig", load_private_key(test_key / "signing-key.pem"))
    assert (model / "model.sig").is_symlink()  # nothing written


@pytest.mark.parametrize(
    ("path", "model", "expected"),
    [
        ("m/model.sig", "m", "model.sig"),
        ("m/./a/../model.sig", "m", "model.sig"),
        ("m/sub/model.sig", "m/", "sub/model.sig"),
        ("m", "m", None),
        ("m-other/model.sig", "m", None),
        ("m/../model.sig", "m", None),
        ("model.sig", "m", None),
    ],
)
def test_path_in_model_is_lexical(path: str, model: str, expected: str | None) -> None:
    assert path_in_model(Path(path), Path(model)) == expected


def test_signature_in_model_of_a_single_file_model(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"w")
    assert signature_in_model(tmp_path / "weights.bin.sig", tmp_path / "weights.bin") is None


@needs_reference
def test_the_reference_refuses_the_symlinked_signature_too(model: Path, public_key: Path) -> None:
    """model_signing 1.1.1 refuses this tree too, but for other reasons: its bundle reader
    rejects the extra keys, and its walk refuses every symlink (ignored ones included)
    unless ``--allow_symlinks``; with the genuine bundle behind the symlink and
    ``--allow_symlinks`` it resolves the signature path as we used to and passes."""
    hide_behind_signature(model)
    result = reference_verify_key(model, model / "model.sig", public_key)
    assert result.returncode != 0
