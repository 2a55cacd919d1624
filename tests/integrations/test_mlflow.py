"""MLflow integration against a real local tracking store and model registry (SQLite).

The run's params and metrics end up in a really signed stage attestation; attestations
and the signed verification summary are logged as run artifacts; the registry alias is
set only when the gate's own checks pass for the bytes the model version holds.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest import api
from mlspec_attest.errors import BackendError, BadInputError, GateDeniedError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.serve.vsa_check import GateExpectations, VerifierTrust
from mlspec_attest.verify.summary import SummaryOptions, WrittenSummary, write_summary
from tests.support import VERIFY_NOW, KeyPair, Pipeline

pytest.importorskip("mlflow")
from mlflow import MlflowClient

from mlspec_attest.integrations import mlflow as mlspec_mlflow

MODEL = "diabetes-progression"


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture
def experiment(client: MlflowClient, tmp_path: Path) -> str:
    # An explicit artifact location: MLflow's default is ./mlruns under the working directory.
    artifacts = (tmp_path / "mlflow-artifacts").as_uri()
    return str(client.create_experiment("mlspec", artifact_location=artifacts))


def _run(client: MlflowClient, experiment: str) -> str:
    return str(client.create_run(experiment).info.run_id)


def _statement(path: Path) -> StageStatement:
    bundle = Bundle.from_json(load_file(path, what=str(path)), what=str(path))
    return StageStatement.from_payload(bundle.envelope.payload)


def _summary(p: Pipeline, signer: KeyPair, out: Path, **verify: Any) -> WrittenSummary:
    report = p.verify(**verify)
    options = SummaryOptions("https://models.example/diabetes", "policy.signed.json")
    return write_summary(report, options, signer.signer, p.store, out)


def _register(client: MlflowClient, experiment: str, model_dir: Path) -> str:
    """Log ``model_dir`` as a run's ``model`` artifacts and register them as a version."""
    run_id = _run(client, experiment)
    client.log_artifacts(run_id, str(model_dir), "model")
    if not client.search_registered_models(f"name = '{MODEL}'"):
        client.create_registered_model(MODEL)
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    return str(client.create_model_version(MODEL, source, run_id=run_id).version)


def _trust(keys: dict[str, KeyPair]) -> VerifierTrust:
    return VerifierTrust(keys=(keys["owner"].public,))


def _expect(p: Pipeline) -> GateExpectations:
    return GateExpectations(policy_digest=p.signed.digest, now=VERIFY_NOW)


# ------------------------------------------------------------------ run -> stage
def test_run_params_and_metrics_are_signed_into_the_stage(
    pipeline: Pipeline, client: MlflowClient, experiment: str, keys: dict[str, KeyPair]
) -> None:
    run_id = _run(client, experiment)
    client.log_param(run_id, "max_depth", "4")
    client.log_param(run_id, "learning_rate", "0.05")
    client.log_param(run_id, "criterion", "gini")
    client.log_param(run_id, "seed", "007")  # not a number's own spelling: kept as text
    client.log_metric(run_id, "train_mae", 43.0, step=0)
    client.log_metric(run_id, "train_mae", 41.5, step=1)  # the latest value counts
    (pipeline.ws / "model.bin").write_bytes(b"weights")
    with api.stage(
        "train",
        key=keys["ml-engineer"].signer,
        store=pipeline.store_path,
        run_id="attested-run",
        base_dir=pipeline.ws,
    ) as s:
        s.product(pipeline.ws / "model.bin", role="model")
        values = mlspec_mlflow.record_run(s, run_id, client=client)
    assert s.result is not None
    meta = _statement(s.result.path).metadata
    assert meta.parameters == {
        "criterion": "gini",
        "learning_rate": 0.05,
        "max_depth": 4,
        "seed": "007",
    }
    assert meta.metrics == {"train_mae": 41.5}
    assert meta.infrastructure["mlflow"] == {"runId": run_id, "experimentId": experiment}
    assert values.params == meta.parameters


def test_attest_mlflow_run_signs_in_one_call(
    pipeline: Pipeline, client: MlflowClient, experiment: str, keys: dict[str, KeyPair]
) -> None:
    run_id = _run(client, experiment)
    client.log_param(run_id, "n_estimators", "10")
    client.log_metric(run_id, "mae", 49.0)
    (pipeline.ws / "reports").mkdir()
    (pipeline.ws / "reports/eval.json").write_text("{}")
    signed = mlspec_mlflow.attest_mlflow_run(
        "evaluate",
        run_id,
        client=client,
        key=keys["release-engineer"].signer,
        store=pipeline.store_path,
        attestation_run="eval-run",
        base_dir=pipeline.ws,
        products=[pipeline.ws / "reports/eval.json"],
    )
    statement = _statement(signed.path)
    assert signed.run_id == "eval-run"
    assert statement.metadata.parameters == {"n_estimators": 10}
    assert statement.metadata.metrics == {"mae": 49.0}
    assert [p.name for p in statement.products] == ["reports/eval.json"]


def test_too_many_params_are_refused(
    client: MlflowClient, experiment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = _run(client, experiment)
    for i in range(3):
        client.log_param(run_id, f"p{i}", str(i))
    monkeypatch.setattr(mlspec_mlflow, "MAX_PARAMS", 2)
    with pytest.raises(BadInputError, match="3 entries, more than 2"):
        mlspec_mlflow.values_from_run(run_id, client=client)


def test_a_non_finite_metric_is_refused(client: MlflowClient, experiment: str) -> None:
    run_id = _run(client, experiment)
    client.log_metric(run_id, "loss", float("nan"))
    with pytest.raises(BadInputError, match=r"metric 'loss'.*not a finite number"):
        mlspec_mlflow.values_from_run(run_id, client=client)


def test_an_unknown_run_is_a_backend_error(client: MlflowClient, experiment: str) -> None:
    with pytest.raises(BackendError, match="cannot read MLflow run"):
        mlspec_mlflow.values_from_run("0" * 32, client=client)


# ------------------------------------------------------------------ evidence -> run
def test_attestations_and_summary_are_logged_as_run_artifacts(
    honest: Pipeline,
    client: MlflowClient,
    experiment: str,
    keys: dict[str, KeyPair],
    tmp_path: Path,
) -> None:
    written = _summary(honest, keys["owner"], tmp_path / "run-a.vsa.json")
    run_id = _run(client, experiment)
    logged = mlspec_mlflow.log_attestations(
        run_id, honest.store, honest.run_id, vsa=written.path, client=client
    )
    stored = sorted(a.path.name for a in honest.store.attestations(honest.run_id))
    assert len(stored) == 5  # ingest, split, train (2 signers), package
    assert sorted(Path(p).name for p in logged) == sorted([*stored, "run-a.vsa.json"])
    listed = client.list_artifacts(run_id, "mlspec-attest/attestations")
    assert sorted(Path(f.path).name for f in listed) == stored
    back = client.download_artifacts(run_id, "mlspec-attest/vsa/run-a.vsa.json", str(tmp_path))
    assert Path(back).read_bytes() == written.path.read_bytes()


# ------------------------------------------------------------------ registry alias
def test_alias_is_set_when_the_version_holds_the_verified_bytes(
    honest: Pipeline,
    client: MlflowClient,
    experiment: str,
    keys: dict[str, KeyPair],
    tmp_path: Path,
) -> None:
    written = _summary(honest, keys["owner"], tmp_path / "vsa.json")
    version = _register(client, experiment, honest.ws / "dist/model")
    promoted = mlspec_mlflow.promote_if_verified(
        MODEL, version, written.path, _trust(keys), _expect(honest), client=client
    )
    assert promoted.alias == "verified" and promoted.vsa_digest == written.digest
    assert str(client.get_model_version_by_alias(MODEL, "verified").version) == version
    tags = client.get_model_version(MODEL, version).tags
    assert tags["mlspec.vsa_digest"] == f"sha256:{written.digest}"
    assert tags["mlspec.run_id"] == honest.run_id


def test_alias_is_refused_for_other_bytes(
    honest: Pipeline,
    client: MlflowClient,
    experiment: str,
    keys: dict[str, KeyPair],
    tmp_path: Path,
) -> None:
    written = _summary(honest, keys["owner"], tmp_path / "vsa.json")
    tampered = tmp_path / "tampered"
    shutil.copytree(honest.ws / "dist/model", tampered)
    data = bytearray((tampered / "weights.bin").read_bytes())
    data[0] ^= 1
    (tampered / "weights.bin").write_bytes(bytes(data))
    version = _register(client, experiment, tampered)
    with pytest.raises(GateDeniedError, match="gate denied"):
        mlspec_mlflow.promote_if_verified(
            MODEL, version, written.path, _trust(keys), _expect(honest), client=client
        )
    assert client.get_registered_model(MODEL).aliases == {}
    assert "mlspec.vsa_digest" not in client.get_model_version(MODEL, version).tags


@pytest.mark.parametrize("case", ["untrusted-verifier", "failed-run"])
def test_alias_is_refused_without_a_passing_trusted_summary(
    case: str,
    honest: Pipeline,
    client: MlflowClient,
    experiment: str,
    keys: dict[str, KeyPair],
    tmp_path: Path,
) -> None:
    if case == "untrusted-verifier":
        written = _summary(honest, keys["intruder"], tmp_path / "vsa.json")
    else:  # the deploy bytes differ from what was attested: the summary says FAILED
        other = tmp_path / "other-model"
        shutil.copytree(honest.ws / "dist/model", other)
        (other / "extra.txt").write_text("not attested")
        written = _summary(
            honest,
            keys["owner"],
            tmp_path / "vsa.json",
            artifacts={"model": other, "train-data": honest.ws / "data/split/train.csv"},
        )
        assert written.summary.result.value == "FAILED"
    version = _register(client, experiment, honest.ws / "dist/model")
    with pytest.raises(GateDeniedError):
        mlspec_mlflow.promote_if_verified(
            MODEL, version, written.path, _trust(keys), _expect(honest), client=client
        )
    assert client.get_registered_model(MODEL).aliases == {}


def test_without_mlflow_the_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what an absent package looks like
    with pytest.raises(BackendError) as caught:
        mlspec_mlflow.mlflow_client()
    assert "mlspec-attest[mlflow]" in (caught.value.remedy or "")
