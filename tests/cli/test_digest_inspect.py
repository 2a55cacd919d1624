"""``mlspec-attest digest`` and ``mlspec-attest inspect``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mlspec_attest.digest.artifact import digest_directory
from mlspec_attest.formats.jsonio import canonical

from ..support import Pipeline, asset
from .conftest import Cli


# ----------------------------------------------------------------- digest
def test_digest_file(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"abc")
    sha = hashlib.sha256(b"abc").hexdigest()
    result = cli("digest", tmp_path / "f.bin")
    assert result.code == 0
    assert result.out.strip() == f"sha256:{sha}  {tmp_path / 'f.bin'}"
    doc = cli("digest", tmp_path / "f.bin", "--json").json()
    assert doc["kind"] == "file"
    assert doc["digest"] == {"sha256": sha}
    assert doc["size"] == 3
    assert doc["schemaVersion"].startswith("https://")


def test_digest_directory(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "m/sub").mkdir(parents=True)
    (tmp_path / "m/a-c").write_bytes(b"1")
    (tmp_path / "m/sub/x").write_bytes(b"22")
    manifest = digest_directory(tmp_path / "m")
    doc = cli("digest", tmp_path / "m", "--json").json()
    assert doc["kind"] == "directory"
    assert doc["root"] == manifest.root
    assert doc["digest"] == {"sha256": manifest.root, "manifest-sha256": manifest.address}
    assert [f["path"] for f in doc["files"]] == ["a-c", "sub/x"]
    assert doc["size"] == 3
    text = cli("digest", tmp_path / "m")
    assert text.code == 0
    assert f"sha256:{manifest.root}" in text.out and "2 files" in text.out


def test_digest_missing_path(cli: Cli, tmp_path: Path) -> None:
    result = cli("digest", tmp_path / "nope")
    assert result.code == 3
    assert "no such file" in result.err
    assert result.clean
    result = cli("digest", tmp_path / "nope", "--json")
    assert result.code == 3
    assert result.json()["exitCode"] == 3


def test_digest_symlink_escape(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s")
    (tmp_path / "m").mkdir()
    (tmp_path / "m/link").symlink_to(tmp_path / "secret")
    result = cli("digest", tmp_path / "m")
    assert result.code == 3
    assert "outside" in result.err


# ---------------------------------------------------------------- inspect
def test_inspect_bundle(cli: Cli, honest: Pipeline) -> None:
    path = honest.bundle_path("train", "ml-engineer")
    doc = cli("inspect", path, "--json").json()
    assert doc["type"] == "bundle"
    assert doc["keyHint"] == honest.keys["ml-engineer"].keyid
    assert doc["stage"] == {"name": "train", "kind": "train", "runId": "run-a"}
    assert doc["statement"]["predicateType"] == "https://in-toto.io/attestation/link/v0.3"
    assert "NOT VERIFIED" in doc["trust"]
    text = cli("inspect", path)
    assert text.code == 0
    assert "stage: train [train]  run run-a" in text.out
    assert "material  data/split/train.csv" in text.out
    assert "product   model" in text.out


def test_inspect_signed_policy(cli: Cli, honest: Pipeline) -> None:
    doc = cli("inspect", honest.signed_policy_path, "--json").json()
    assert doc["type"] == "signed-policy"
    assert doc["policyDigest"] == honest.signed.digest
    assert [s["name"] for s in doc["policy"]["stages"]] == ["ingest", "split", "train", "package"]
    text = cli("inspect", honest.signed_policy_path).out
    assert "stages: ingest, split, train, package" in text
    assert honest.signed.digest in text


def test_inspect_yaml_policy(cli: Cli, honest: Pipeline) -> None:
    result = cli("inspect", honest.policy_yaml, "--json")
    assert result.code == 0
    doc = result.json()
    assert doc["type"] == "policy"
    assert doc["signed"] is False
    assert doc["policy"]["metadata"]["name"] == "test-pipeline"
    text = cli("inspect", honest.policy_yaml)
    assert text.code == 0
    assert "stages: ingest, split, train, package" in text.out


def test_inspect_bare_dsse_envelope(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    bundle = json.loads(honest.bundle_path("ingest").read_bytes())
    (tmp_path / "env.json").write_bytes(canonical(bundle["dsseEnvelope"]))
    doc = cli("inspect", tmp_path / "env.json", "--json").json()
    assert doc["type"] == "dsse"
    assert doc["stage"]["name"] == "ingest"


def test_inspect_model_signing_bundle(cli: Cli) -> None:
    path = asset("model-signing/cli-fixtures/v1.1.0-elliptic-key/model.sig")
    doc = cli("inspect", path, "--json").json()
    assert doc["type"] == "bundle"
    assert doc["stage"] is None
    assert "not a Link v0.3" in doc["notMlspec"]
    assert doc["statement"]["predicateType"] == "https://model_signing/signature/v1.0"


def test_inspect_unknown_document(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("[1, 2]")
    result = cli("inspect", tmp_path / "x.json")
    assert result.code == 3
    assert "not a bundle" in result.err
    assert result.clean


def test_inspect_truncated_json(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    data = honest.bundle_path("ingest").read_bytes()
    (tmp_path / "cut.json").write_bytes(data[: len(data) // 2])
    result = cli("inspect", tmp_path / "cut.json")
    assert result.code == 3
    assert "not valid JSON" in result.err
    assert result.clean
