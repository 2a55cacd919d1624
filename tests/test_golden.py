"""Golden files: byte-exact statement, envelope, bundle, signed policy and manifest.

Ed25519 is deterministic, so with a fixed key, clock, environment and inputs the
output bytes never change unless a wire format changes. Regenerate deliberately
with ``MLSPEC_REGEN_GOLDEN=1`` (see tests/golden/README.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlspec_attest.attestation.stage import SignedStage, StageRecord, sign_stage
from mlspec_attest.digest.artifact import digest_directory
from mlspec_attest.digest.directory import DirectoryManifest
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.jsonio import canonical, loads_strict
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.policy import load_policy_yaml, parse_signed_policy, sign_policy
from mlspec_attest.signing.keys import LocalKeySigner, load_private_key, load_public_key
from mlspec_attest.store.ledger import AttestationStore

from .support import indent_pem

GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("MLSPEC_REGEN_GOLDEN") == "1"
ENVIRONMENT = {"tool": {"name": "mlspec-attest", "version": "golden"}, "platform": "golden"}


def check_golden(name: str, actual: bytes) -> None:
    path = GOLDEN / name
    if REGEN:
        path.write_bytes(actual)
        pytest.skip(f"regenerated {path}")
    assert path.exists(), f"{path} missing: run with MLSPEC_REGEN_GOLDEN=1 to create it"
    expected = path.read_bytes()
    assert actual == expected, (
        f"{name} changed (a wire-format change). If intended, regenerate with "
        f"MLSPEC_REGEN_GOLDEN=1 and review the diff.\nexpected: {expected[:400]!r}\n"
        f"actual:   {actual[:400]!r}"
    )


@pytest.fixture(scope="module")
def signer() -> LocalKeySigner:
    key = load_private_key(GOLDEN / "signer.key")
    assert key.public_key.key_details == "PKIX_ED25519"
    assert key.public_key.keyid == load_public_key(GOLDEN / "signer.pub").keyid
    return key


POLICY = """\
apiVersion: mlspec-attest/v1
kind: Policy
metadata:
  name: golden
  owner: golden@example.org
expires: "2099-12-31T23:59:59Z"
functionaries:
  trainer:
    publicKey: |
{pem}
    description: The golden test key.
stages:
  - name: train
    kind: train
    functionaries: [trainer]
    materials:
      - ALLOW data/*
      - DISALLOW *
    products:
      - CREATE model
      - DISALLOW *
deploy:
  artifacts:
    model:
      stage: train
      product: model
"""


def write_inputs(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "model/sub").mkdir(parents=True)
    (root / "data/train.csv").write_bytes(b"x,y\n1,2\n3,4\n")
    (root / "model/weights.bin").write_bytes(bytes(range(64)))
    (root / "model/sub/config.json").write_bytes(b'{"depth": 3}\n')
    (root / "model/a-c").write_bytes(b"")
    return root


def signed_policy_bytes(tmp_path: Path, signer: LocalKeySigner) -> bytes:
    path = tmp_path / "golden.yaml"
    path.write_text(POLICY.format(pem=indent_pem(signer.public_key.pem(), 6)))
    return canonical(sign_policy(load_policy_yaml(path), [signer]).to_json())


def sign_golden_stage(tmp_path: Path, signer: LocalKeySigner) -> SignedStage:
    ws = write_inputs(tmp_path / "ws")
    policy = parse_signed_policy(loads_strict(signed_policy_bytes(tmp_path, signer)))
    record = StageRecord(
        stage="train",
        materials=[ws / "data/train.csv"],
        products=[ws / "model"],
        parameters={"max_depth": 3, "criterion": "squared_error", "warm_start": False},
        metrics={"train_mae": 41.25, "rows": 2},
        slices={"sex": {"f": {"count": 1, "metrics": {"mae": 40.5}}}},
        roles={"train": ws / "data/train.csv", "model": ws / "model"},
        infrastructure={"accelerator": "none"},
        details={
            "search": {"method": "grid", "trials": [{"params": {"max_depth": 3}, "score": 41.25}]}
        },
        policy_digest=policy.digest,
        started_on="2025-06-01T12:00:00Z",
    )
    return sign_stage(
        record,
        signer,
        AttestationStore(tmp_path / "store"),
        run_id="golden-run",
        base_dir=ws,
        clock=lambda: "2025-06-01T12:00:05Z",
        environment=ENVIRONMENT,
    )


def test_golden_statement(tmp_path: Path, signer: LocalKeySigner) -> None:
    result = sign_golden_stage(tmp_path, signer)
    check_golden("stage-statement.json", result.statement.to_payload())


def test_golden_envelope(tmp_path: Path, signer: LocalKeySigner) -> None:
    result = sign_golden_stage(tmp_path, signer)
    check_golden("stage-envelope.json", canonical(result.bundle.envelope.to_json()))


def test_golden_bundle(tmp_path: Path, signer: LocalKeySigner) -> None:
    result = sign_golden_stage(tmp_path, signer)
    check_golden("stage-bundle.json", result.path.read_bytes())


def test_golden_signed_policy(tmp_path: Path, signer: LocalKeySigner) -> None:
    check_golden("policy.signed.json", signed_policy_bytes(tmp_path, signer))


def test_golden_manifest(tmp_path: Path) -> None:
    manifest = digest_directory(write_inputs(tmp_path / "ws") / "model")
    assert [e.path for e in manifest.entries] == ["a-c", "sub/config.json", "weights.bin"]
    check_golden("manifest.json", manifest.canonical_bytes())


# The checked-in goldens must stay meaningful: they parse and verify as they are.
def test_golden_bundle_verifies(signer: LocalKeySigner) -> None:
    if REGEN:
        pytest.skip("regenerating")
    bundle = Bundle.from_json(loads_strict((GOLDEN / "stage-bundle.json").read_bytes()))
    assert bundle.key_hint == signer.public_key.keyid
    assert bundle.envelope.verified_by(signer.public_key)
    statement = StageStatement.from_payload(bundle.envelope.payload)
    assert statement.to_payload() == (GOLDEN / "stage-statement.json").read_bytes()
    assert statement.metadata.run_id == "golden-run"


def test_golden_policy_verifies(signer: LocalKeySigner) -> None:
    if REGEN:
        pytest.skip("regenerating")
    signed = parse_signed_policy(loads_strict((GOLDEN / "policy.signed.json").read_bytes()))
    assert signed.unsigned_by([signer.public_key]) == []
    assert signed.policy.name == "golden"
    statement = StageStatement.from_payload((GOLDEN / "stage-statement.json").read_bytes())
    assert statement.metadata.policy_digest == signed.digest


def test_golden_manifest_parses() -> None:
    if REGEN:
        pytest.skip("regenerating")
    data = (GOLDEN / "manifest.json").read_bytes()
    manifest = DirectoryManifest.from_json(loads_strict(data))
    assert manifest.canonical_bytes() == data
