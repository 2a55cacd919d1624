"""Keyless signing for real, offline: a Sigstore instance on 127.0.0.1 (see instance.py).

Stages are signed with ``mlspec-attest sign --sigstore`` (unmodified sigstore-python
talks to the loopback Fulcio and Rekor), the policy names Sigstore identities and
the instance's trust root, and ``verify`` checks the chain, the Rekor inclusion
proof and promise and the identities offline. A wrong identity, a bundle from
another instance and an altered bundle are denied (exit 1).
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..support import KeyPair
from .conftest import Cli
from .instance import OIDC_ISSUER, SigstoreInstance
from .reasons import IDENTITY_MISMATCH, assert_fails_for

POLICY = """\
apiVersion: mlspec-attest/v1
kind: Policy
metadata:
  name: keyless-pipeline
expires: "2099-01-01T00:00:00Z"
functionaries:
  data-engineer:
    sigstore:
      issuer: {issuer}
      identity: alice@example.com
  trainer:
    sigstore:
      issuer: {issuer}
      identityRegex: '(bob|carol)@example\\.com'
trust:
  sigstore:
    trustConfig: {trust_config}
stages:
  - name: ingest
    kind: ingest
    functionaries: [data-engineer]
    products: ["CREATE data/raw.csv", "DISALLOW *"]
  - name: train
    kind: train
    after: [ingest]
    functionaries: [trainer]
    materials: ["MATCH data/raw.csv WITH PRODUCTS FROM ingest", "DISALLOW *"]
    products: ["CREATE model.bin", "DISALLOW *"]
"""


@dataclass
class Workspace:
    root: Path
    instance: SigstoreInstance
    owner: KeyPair
    cli: Cli

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def signed_policy(self) -> Path:
        return self.root / "policy.signed.json"

    def sign(
        self,
        stage: str,
        email: str,
        *,
        instance: SigstoreInstance | None = None,
        materials: tuple[str, ...] = (),
        products: tuple[str, ...] = (),
        command: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        by = instance or self.instance
        args: list[str | Path] = [
            "sign",
            "--stage",
            stage,
            "--sigstore",
            "--trust-config",
            by.trust_config_path,
            "--identity-token",
            by.token(email),
            "--store",
            self.store,
            "--run-id",
            "run-1",
            "--base-dir",
            self.root,
            "--policy",
            self.signed_policy,
            "-q",
            "--json",
        ]
        for m in materials:
            args += ["--material", self.root / m]
        for p in products:
            args += ["--product", self.root / p]
        if command:
            args += ["--", *command]
        result = self.cli(*args)
        assert result.code == 0, result.err
        doc: dict[str, Any] = result.json()
        return doc

    def sign_pipeline(self, *, trainer: str = "bob@example.com", **kw: Any) -> None:
        self.sign("ingest", "alice@example.com", products=("data/raw.csv",))
        self.sign("train", trainer, materials=("data/raw.csv",), products=("model.bin",), **kw)

    def verify(self) -> tuple[int, dict[str, Any]]:
        result = self.cli(
            "verify",
            "--policy",
            self.signed_policy,
            "--policy-key",
            self.owner.pub_path,
            "--store",
            self.store,
            "--run-id",
            "run-1",
            "--json",
        )
        assert result.clean, result.err
        return result.code, result.json()


@pytest.fixture
def workspace(
    tmp_path: Path, sigstore_instance: SigstoreInstance, keys: dict[str, KeyPair], cli: Cli
) -> Workspace:
    root = tmp_path / "pipeline"
    (root / "data").mkdir(parents=True)
    (root / "data/raw.csv").write_text("x,y\n1,2\n3,4\n")
    (root / "model.bin").write_bytes(b"\x00weights\x01")
    return make_workspace(root, POLICY, sigstore_instance, keys, cli)


def make_workspace(
    root: Path, policy: str, instance: SigstoreInstance, keys: dict[str, KeyPair], cli: Cli
) -> Workspace:
    """A signed ``policy`` (with ``{issuer}`` and ``{trust_config}`` filled in) in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    sigstore_instance = instance
    trust_config = root / "trust-config.json"
    trust_config.write_text(sigstore_instance.trust_config_path.read_text())
    (root / "policy.yaml").write_text(
        policy.format(issuer=OIDC_ISSUER, trust_config="trust-config.json")
    )
    owner = keys["owner"]
    signed = cli(
        "policy",
        "sign",
        root / "policy.yaml",
        "--key",
        owner.key_path,
        "--out",
        root / "policy.signed.json",
    )
    assert signed.code == 0, signed.err
    return Workspace(root, sigstore_instance, owner, cli)


def failures(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["check"], f["stage"]) for f in report["failures"]]


def test_keyless_pipeline_verifies(workspace: Workspace) -> None:
    summary = workspace.sign("ingest", "alice@example.com", products=("data/raw.csv",))
    assert summary["sigstore"]["identity"] == "alice@example.com"
    assert summary["sigstore"]["issuer"] == OIDC_ISSUER
    workspace.sign(
        "train", "carol@example.com", materials=("data/raw.csv",), products=("model.bin",)
    )
    code, report = workspace.verify()
    assert code == 0, report["failures"]
    assert report["result"] == "PASSED"
    assert [(s["name"], s["status"], s["signers"]) for s in report["stages"]] == [
        ("ingest", "ok", ["data-engineer"]),
        ("train", "ok", ["trainer"]),
    ]


def test_stored_bundle_is_what_sigstore_python_verifies(workspace: Workspace) -> None:
    """Interop: the stored attestation is a plain Sigstore bundle (certificate + Rekor entry)."""
    from sigstore.models import Bundle, ClientTrustConfig
    from sigstore.verify import Verifier, policy

    workspace.sign("ingest", "alice@example.com", products=("data/raw.csv",))
    [path] = (workspace.store / "runs" / "run-1").glob("ingest.*.sigstore.json")
    doc = json.loads(path.read_text())
    assert set(doc["verificationMaterial"]) >= {"certificate", "tlogEntries"}
    [entry] = doc["verificationMaterial"]["tlogEntries"]
    assert entry["kindVersion"] == {"kind": "dsse", "version": "0.0.1"}
    assert {"inclusionProof", "inclusionPromise"} <= set(entry)
    config = ClientTrustConfig.from_json(workspace.instance.trust_config_path.read_text())
    payload_type, payload = Verifier(trusted_root=config.trusted_root).verify_dsse(
        Bundle.from_json(path.read_bytes()),
        policy.Identity(identity="alice@example.com", issuer=OIDC_ISSUER),
    )
    assert payload_type == "application/vnd.in-toto+json"
    assert json.loads(payload)["predicate"]["name"] == "ingest"


def test_wrong_identity_is_denied(workspace: Workspace) -> None:
    workspace.sign_pipeline(trainer="eve@example.com")
    code, report = workspace.verify()
    assert code == 1
    assert ("signer-not-allowed", "train") in failures(report)
    [failure] = [f for f in report["failures"] if f["check"] == "signer-not-allowed"]
    assert "eve@example.com" in failure["found"]


def test_regex_is_anchored(workspace: Workspace) -> None:
    workspace.sign_pipeline(trainer="bob@example.com.evil.test")
    code, report = workspace.verify()
    assert code == 1
    assert ("signer-not-allowed", "train") in failures(report)


def test_identity_of_another_stage_is_denied(workspace: Workspace) -> None:
    # alice is a functionary of the policy, but not of the train stage.
    workspace.sign_pipeline(trainer="alice@example.com")
    code, report = workspace.verify()
    assert code == 1
    assert ("signer-not-allowed", "train") in failures(report)


def test_bundle_from_another_instance_is_denied(
    workspace: Workspace, sigstore_instance_factory: Any
) -> None:
    other = sigstore_instance_factory("other")
    workspace.sign_pipeline(instance=other)
    code, report = workspace.verify()
    assert code == 1
    assert ("signature", "train") in failures(report)
    assert ("stage-missing", "train") in failures(report)


def test_altered_keyless_bundle_is_denied(workspace: Workspace) -> None:
    workspace.sign_pipeline()
    [path] = (workspace.store / "runs" / "run-1").glob("train.*.sigstore.json")
    doc = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(doc))
    code, report = workspace.verify()
    assert code == 1
    assert ("signature", "train") in failures(report)


def test_policy_embeds_the_trust_root(workspace: Workspace) -> None:
    """Verification needs no trust file: the signed policy carries the trusted root."""
    workspace.sign_pipeline()
    (workspace.root / "trust-config.json").unlink()
    envelope = json.loads(workspace.signed_policy.read_text())
    policy = json.loads(base64.b64decode(envelope["payload"]))
    assert policy["trust"]["sigstore"]["trustedRoot"] == workspace.instance.trusted_root
    assert policy["functionaries"]["trainer"] == {
        "sigstore": {"issuer": OIDC_ISSUER, "identityRegex": "(bob|carol)@example\\.com"}
    }
    code, report = workspace.verify()
    assert code == 0, report["failures"]


def test_bundle_verify_cli_on_a_keyless_stage(workspace: Workspace, tmp_path: Path) -> None:
    workspace.sign("ingest", "alice@example.com", products=("data/raw.csv",))
    [path] = (workspace.store / "runs" / "run-1").glob("ingest.*.sigstore.json")
    base: list[str | Path] = [
        "bundle",
        "verify",
        path,
        "--artifact",
        workspace.root / "data/raw.csv",
        "--trust-config",
        workspace.instance.trust_config_path,
        "--issuer",
        OIDC_ISSUER,
        "--json",
    ]
    ok = workspace.cli(*base, "--identity", "alice@example.com")
    assert ok.code == 0, ok.err
    doc = ok.json()
    assert doc["result"] == "PASSED"
    assert doc["signer"]["identity"] == "alice@example.com"
    assert [t["source"] for t in doc["signedTimes"]] == ["transparency-log"]
    regex = workspace.cli(*base, "--identity-regex", "[a-z]+@example\\.com")
    assert regex.code == 0, regex.err
    wrong = workspace.cli(*base, "--identity", "bob@example.com")
    assert_fails_for(wrong, (1, "signed by alice@example.com"), "wrong identity")
    assert_fails_for(wrong, (1, IDENTITY_MISMATCH), "wrong identity")
    other_file = tmp_path / "other.bin"
    other_file.write_bytes(b"not the product")
    other = workspace.cli(
        *[other_file if a == base[4] else a for a in base], "--identity", "alice@example.com"
    )
    assert_fails_for(other, (1, "the in-toto statement has no subject with sha256"), "artifact")


def test_sign_without_token_is_a_usage_error(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIGSTORE_ID_TOKEN", raising=False)
    for var in (
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "BUILDKITE",
        "CIRCLECI",
        "GOOGLE_SERVICE_ACCOUNT_NAME",
    ):
        monkeypatch.delenv(var, raising=False)
    result = workspace.cli(
        "sign",
        "--stage",
        "ingest",
        "--sigstore",
        "--trust-config",
        workspace.instance.trust_config_path,
        "--store",
        workspace.store,
        "--product",
        workspace.root / "data/raw.csv",
        "--base-dir",
        workspace.root,
    )
    assert result.code == 2
    assert "identity token" in result.err


def test_verification_never_touches_the_network(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signing needs the (loopback) instance; verifying needs nothing but the policy."""
    import socket

    workspace.sign_pipeline()

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("verification opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    code, report = workspace.verify()
    assert code == 0, report["failures"]
    [path] = (workspace.store / "runs" / "run-1").glob("train.*.sigstore.json")
    result = workspace.cli(
        "bundle",
        "verify",
        path,
        "--artifact",
        workspace.root / "model.bin",
        "--trust-config",
        workspace.instance.trust_config_path,
        "--identity",
        "bob@example.com",
        "--issuer",
        OIDC_ISSUER,
    )
    assert result.code == 0, result.err


# ------------------------------------------------------------------ directory products
DIRECTORY_POLICY = """\
apiVersion: mlspec-attest/v1
kind: Policy
metadata:
  name: keyless-directories
expires: "2099-01-01T00:00:00Z"
functionaries:
  data-engineer:
    sigstore:
      issuer: {issuer}
      identity: alice@example.com
  trainer:
    sigstore:
      issuer: {issuer}
      identity: bob@example.com
trust:
  sigstore:
    trustConfig: {trust_config}
deploy:
  artifacts:
    dataset:
      stage: ingest
      product: data
    model:
      stage: train
      product: model
stages:
  - name: ingest
    kind: ingest
    functionaries: [data-engineer]
    products: ["CREATE data", "DISALLOW *"]
  - name: train
    kind: train
    after: [ingest]
    functionaries: [trainer]
    materials: ["MATCH data WITH PRODUCTS FROM ingest", "DISALLOW *"]
    products: ["CREATE model", "DISALLOW *"]
"""

# The stage commands write the directories, so the products exist only after they ran.
WRITE_DATASET = """\
import pathlib
d = pathlib.Path("{root}/data")
(d / "shards").mkdir(parents=True)
(d / "shards/part-0.csv").write_text("x,y\\n1,2\\n")
(d / "shards/part-1.csv").write_text("x,y\\n3,4\\n")
(d / "schema.json").write_text('{{"columns": ["x", "y"]}}')
"""
WRITE_MODEL = """\
import pathlib
d = pathlib.Path("{root}/model")
d.mkdir()
(d / "weights.bin").write_bytes(bytes(range(256)) * 64)
(d / "config.json").write_text('{{"layers": 2}}')
"""


@pytest.fixture
def dir_workspace(
    tmp_path: Path, sigstore_instance: SigstoreInstance, keys: dict[str, KeyPair], cli: Cli
) -> Workspace:
    return make_workspace(tmp_path / "pipeline", DIRECTORY_POLICY, sigstore_instance, keys, cli)


def sign_directory_pipeline(ws: Workspace) -> tuple[dict[str, Any], dict[str, Any]]:
    python = sys.executable
    ingest = ws.sign(
        "ingest",
        "alice@example.com",
        products=("data",),
        command=(python, "-c", WRITE_DATASET.format(root=ws.root.as_posix())),
    )
    train = ws.sign(
        "train",
        "bob@example.com",
        materials=("data",),
        products=("model",),
        command=(python, "-c", WRITE_MODEL.format(root=ws.root.as_posix())),
    )
    return ingest, train


def verify_deployed(ws: Workspace) -> tuple[int, dict[str, Any]]:
    result = ws.cli(
        "verify",
        "--policy",
        ws.signed_policy,
        "--policy-key",
        ws.owner.pub_path,
        "--store",
        ws.store,
        "--run-id",
        "run-1",
        "--artifact",
        f"dataset={ws.root / 'data'}",
        "--artifact",
        f"model={ws.root / 'model'}",
        "--json",
    )
    assert result.clean, result.err
    return result.code, result.json()


def stored_statement(ws: Workspace, stage: str) -> dict[str, Any]:
    [path] = (ws.store / "runs" / "run-1").glob(f"{stage}.*.sigstore.json")
    doc = json.loads(path.read_text())
    statement: dict[str, Any] = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    return statement


def test_keyless_directory_dataset_and_model_verify(dir_workspace: Workspace) -> None:
    """A directory product is signed keyless with the same statement a key would sign: its
    subject digest is the manifest digest, which sigstore-python's own statement model
    does not know - the payload bytes are signed unchanged."""
    ingest, train = sign_directory_pipeline(dir_workspace)
    assert ingest["sigstore"]["identity"] == "alice@example.com"
    assert train["sigstore"]["identity"] == "bob@example.com"
    for stage, name in (("ingest", "data"), ("train", "model")):
        [subject] = stored_statement(dir_workspace, stage)["subject"]
        assert subject["name"] == name
        assert "manifest-sha256" in subject["digest"]
    code, report = verify_deployed(dir_workspace)
    assert code == 0, report["failures"]
    assert [(s["name"], s["status"], s["signers"]) for s in report["stages"]] == [
        ("ingest", "ok", ["data-engineer"]),
        ("train", "ok", ["trainer"]),
    ]


def test_keyless_directory_bundle_is_what_sigstore_python_verifies(
    dir_workspace: Workspace,
) -> None:
    from sigstore.models import Bundle, ClientTrustConfig
    from sigstore.verify import Verifier, policy

    sign_directory_pipeline(dir_workspace)
    [path] = (dir_workspace.store / "runs" / "run-1").glob("train.*.sigstore.json")
    config = ClientTrustConfig.from_json(dir_workspace.instance.trust_config_path.read_text())
    payload_type, payload = Verifier(trusted_root=config.trusted_root).verify_dsse(
        Bundle.from_json(path.read_bytes()),
        policy.Identity(identity="bob@example.com", issuer=OIDC_ISSUER),
    )
    assert payload_type == "application/vnd.in-toto+json"
    assert payload == base64.b64decode(json.loads(path.read_text())["dsseEnvelope"]["payload"])
    assert json.loads(payload)["subject"][0]["name"] == "model"


def test_keyless_directory_changed_after_signing_is_denied(dir_workspace: Workspace) -> None:
    sign_directory_pipeline(dir_workspace)
    (dir_workspace.root / "model/weights.bin").write_bytes(b"swapped weights")
    (dir_workspace.root / "data/shards/part-2.csv").write_text("x,y\n5,6\n")
    code, report = verify_deployed(dir_workspace)
    assert code == 1
    assert {("artifact-mismatch", "train"), ("artifact-mismatch", "ingest")} <= set(
        failures(report)
    )


@pytest.mark.parametrize(
    ("algorithm", "serialization"),
    [("blake3", "files"), ("blake2b", "files"), ("sha256", "shards")],
)
def test_keyless_signs_every_digest_scheme(
    dir_workspace: Workspace, monkeypatch: pytest.MonkeyPatch, algorithm: str, serialization: str
) -> None:
    """Subjects with no SHA-2 digest sigstore-python knows, and sharded manifests, sign
    keyless too."""
    monkeypatch.setenv("MLSPEC_ATTEST_DIGEST_ALGORITHM", algorithm)
    monkeypatch.setenv("MLSPEC_ATTEST_DIGEST_SERIALIZATION", serialization)
    sign_directory_pipeline(dir_workspace)
    [subject] = stored_statement(dir_workspace, "train")["subject"]
    # No digest sigstore-python's own statement model accepts: the payload is signed as is.
    assert not set(subject["digest"]) & {"sha256", "sha384", "sha512"}, subject
    code, report = verify_deployed(dir_workspace)
    assert code == 0, report["failures"]


# ------------------------------------------------------ found before the stage command
def keyless_sign_with_command(ws: Workspace, marker: Path, *options: str | Path) -> tuple[int, str]:
    result = ws.cli(
        "sign", "--stage", "train", "--sigstore", *options,
        "--product", ws.root / "model", "--store", ws.store, "--base-dir", ws.root,
        "--", sys.executable, "-c", WRITE_MODEL.format(root=ws.root.as_posix())
        + f"open({str(marker)!r}, 'w')",
    )  # fmt: skip
    assert result.clean, result.err
    return result.code, result.err


def test_missing_token_is_found_before_the_stage_command(
    dir_workspace: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SIGSTORE_ID_TOKEN", raising=False)
    for var in (
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "BUILDKITE",
        "CIRCLECI",
        "GOOGLE_SERVICE_ACCOUNT_NAME",
    ):
        monkeypatch.delenv(var, raising=False)
    marker = tmp_path / "ran"
    config = dir_workspace.instance.trust_config_path
    code, err = keyless_sign_with_command(dir_workspace, marker, "--trust-config", config)
    assert code == 2
    assert "keyless signing needs an OIDC identity token" in err
    assert not marker.exists()
    assert not (dir_workspace.root / "model").exists()


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (None, 3, "file not found"),
        ("{not json", 3, "trust config"),
        ('{"mediaType": "application/json"}', 3, "not a Sigstore ClientTrustConfig"),
    ],
)
def test_unusable_trust_config_is_found_before_the_stage_command(
    dir_workspace: Workspace, tmp_path: Path, content: str | None, code: int, message: str
) -> None:
    config = tmp_path / "trust-config.json"
    if content is not None:
        config.write_text(content)
    marker = tmp_path / "ran"
    token = dir_workspace.instance.token("bob@example.com")
    found, err = keyless_sign_with_command(
        dir_workspace, marker, "--trust-config", config, "--identity-token", token
    )
    assert (found, message in err) == (code, True), err
    assert not marker.exists()


def test_expired_token_is_found_before_the_stage_command(
    dir_workspace: Workspace, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    token = dir_workspace.instance.token("bob@example.com", lifetime=-60)
    code, err = keyless_sign_with_command(
        dir_workspace, marker, "--trust-config", dir_workspace.instance.trust_config_path,
        "--identity-token", token,
    )  # fmt: skip
    assert code == 3
    assert "the OIDC identity token is not usable" in err
    assert not marker.exists()
