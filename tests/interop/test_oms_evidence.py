"""The package stage records an OpenSSF model-signing signature; verify checks the served model."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from mlspec_attest.attestation.stage import StageRecord, sign_stage
from mlspec_attest.cli.main import main
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.interop.oms.signature import (
    KeyTrust,
    ModelSignatureDenied,
    oms_evidence,
    sign_model,
)
from mlspec_attest.policy import load_policy_yaml, sign_policy
from mlspec_attest.policy.signed import parse_signed_policy
from mlspec_attest.signing.keys import KeyType, generate_key, write_key_pair
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.pipeline import verify_pipeline
from mlspec_attest.verify.report import Check

POLICY = """\
apiVersion: mlspec-attest/v1
kind: Policy
expires: "2099-01-01T00:00:00Z"
functionaries:
  release: {{key: release.pub}}
stages:
  - name: package
    kind: package
    functionaries: [release]
    materials: [DISALLOW *]
    products: [CREATE dist/model, DISALLOW *]
deploy:
  artifacts:
    model: {{stage: package, product: dist/model}}
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    model = tmp_path / "dist" / "model"
    model.mkdir(parents=True)
    (model / "weights.bin").write_bytes(b"\x00\x01" * 512)
    (model / "config.json").write_text('{"layers": 2}')
    release = generate_key(KeyType.ED25519)
    write_key_pair(release, tmp_path / "release")
    owner = generate_key(KeyType.ED25519)
    write_key_pair(owner, tmp_path / "owner")
    oms = generate_key(KeyType.ECDSA_P256)
    write_key_pair(oms, tmp_path / "oms")
    sign_model(model, tmp_path / "model.sig", oms)
    (tmp_path / "policy.yaml").write_text(POLICY.format())
    policy = load_policy_yaml(tmp_path / "policy.yaml")
    (tmp_path / "policy.signed.json").write_bytes(canonical(sign_policy(policy, [owner]).to_json()))
    return tmp_path


def _sign_package(ws: Path, details: dict[str, object]) -> None:
    from mlspec_attest.signing.keys import load_private_key

    record = StageRecord(stage="package", products=[ws / "dist/model"], details=details)
    sign_stage(
        record, load_private_key(ws / "release.key"), AttestationStore(ws / "store"), base_dir=ws
    )


def _verify(ws: Path) -> list[Check]:
    from mlspec_attest.formats.jsonio import load_file
    from mlspec_attest.signing.keys import load_public_key

    signed = parse_signed_policy(load_file(ws / "policy.signed.json"))
    report = verify_pipeline(
        signed,
        [load_public_key(ws / "owner.pub")],
        AttestationStore(ws / "store"),
        artifacts={"model": ws / "dist/model"},
    )
    return [f.check for f in report.failures]


def test_recorded_signature_of_the_served_model_passes(workspace: Path) -> None:
    evidence = oms_evidence(
        workspace / "dist/model", workspace / "model.sig", KeyTrust.from_file(workspace / "oms.pub")
    )
    _sign_package(workspace, {"omsSignature": evidence})
    assert _verify(workspace) == []


def test_recorded_signature_of_another_model_is_denied(workspace: Path) -> None:
    evidence = oms_evidence(
        workspace / "dist/model", workspace / "model.sig", KeyTrust.from_file(workspace / "oms.pub")
    )
    forged = copy.deepcopy(evidence)
    forged["manifestDigest"] = {"sha256": "0" * 64}  # evidence about some other model
    _sign_package(workspace, {"omsSignature": forged})
    assert _verify(workspace) == [Check.OMS_SIGNATURE]


def test_sign_refuses_a_signature_the_model_does_not_match(workspace: Path) -> None:
    (workspace / "dist/model/weights.bin").write_bytes(b"tampered")
    with pytest.raises(ModelSignatureDenied):
        oms_evidence(
            workspace / "dist/model",
            workspace / "model.sig",
            KeyTrust.from_file(workspace / "oms.pub"),
        )


def test_cli_records_oms_evidence_and_denies_a_mismatch(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(workspace)
    args = [
        "sign", "--stage", "package", "--key", "release.key", "--store", "store",
        "--product", "dist/model", "--oms-signature", "model.sig", "--oms-public-key", "oms.pub",
    ]  # fmt: skip
    with pytest.raises(SystemExit) as ok:
        main(args)
    assert ok.value.code == 0
    assert _verify(workspace) == []
    (workspace / "dist/model/weights.bin").write_bytes(b"tampered")
    with pytest.raises(SystemExit) as denied:
        main([*args, "--store", "store2"])
    assert denied.value.code == 1
    assert "digest-mismatch" in capsys.readouterr().err
    assert not (workspace / "store2" / "runs").exists()
