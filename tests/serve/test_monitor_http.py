"""``monitor`` over a log the reference server wrote: requests sent over HTTP with the
request targets and request ids a client chooses, the real inference log, a real audit."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import httpx

from mlspec_attest.formats.statement import ResourceDescriptor
from mlspec_attest.formats.vsa import Level, Result, VerificationSummary
from mlspec_attest.log.checkpoint import default_origin
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.serve.config import ServeConfig
from mlspec_attest.serve.monitor import MonitorRequest, monitor_window, verified_records
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key

from .server_fixtures import MODEL_NAME, VSA_DIGEST, ServerFactory, diabetes, make_server

__all__ = ["make_server"]  # a fixture, used by name

TRAIN_ROWS = 300
BMI = 2  # the column the drifted traffic shifts


def summary_of(train: Path) -> VerificationSummary:
    return VerificationSummary(
        subjects=(
            ResourceDescriptor("model", {"sha256": "a" * 64}),
            ResourceDescriptor(
                "train-data", {"sha256": hashlib.sha256(train.read_bytes()).hexdigest()}
            ),
        ),
        resource_uri="https://models.example.com/diabetes",
        policy_uri="file:///policy.json",
        policy_digest="b" * 64,
        time_verified=datetime.now(UTC).replace(microsecond=0),
        result=Result.PASSED,
        levels=(Level.SIGNED_CHAIN.value,),
    )


def write_train(path: Path) -> Path:
    data = diabetes()
    lines = [",".join(data.features)]
    lines += [",".join(repr(v) for v in row) for row in data.rows(TRAIN_ROWS)]
    path.write_text("\n".join(lines) + "\n")
    return path


def serve_traffic(make_server: ServerFactory, log_dir: Path, key: LocalKeySigner) -> None:
    """Stable v2 requests with labelled ids, drifted v1 requests behind a query or an
    escaped colon, and the best-predicted labelled request replayed under its id."""
    origin = default_origin(MODEL_NAME, VSA_DIGEST)
    log = InferenceLog.open(log_dir, key, origin=origin, log_inputs=True)
    server = make_server(log=log, config=ServeConfig(log_dir=str(log_dir), log_inputs=True))
    rows = diabetes().rows(442 - TRAIN_ROWS, start=TRAIN_ROWS)
    targets = (":predict?x=1", "%3Apredict")
    with httpx.Client(base_url=server.url) as client:
        for i, row in enumerate(rows):
            tensor = {"name": "x", "shape": [1, len(row)], "datatype": "FP64", "data": row}
            answer = client.post(
                server.infer_url(), json={"inputs": [tensor]}, headers={"x-request-id": f"q-{i}"}
            )
            assert answer.status_code == 200
            shifted = [v + 0.15 if c == BMI else v for c, v in enumerate(row)]
            target = f"/v1/models/{MODEL_NAME}{targets[i % 2]}"
            assert client.post(target, json={"instances": [shifted]}).status_code == 200
        for _ in range(20):
            tensor = {"name": "x", "shape": [1, 10], "datatype": "FP64", "data": rows[0]}
            client.post(
                server.infer_url(), json={"inputs": [tensor]}, headers={"x-request-id": "q-0"}
            )
    server.running.stop()  # a graceful stop closes the log: its last checkpoint is signed


def test_what_the_client_chose_is_measured_or_withheld(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    key = generate_key(KeyType.ED25519)
    serve_traffic(make_server, tmp_path / "log", key)
    paths = {r.path for r in verified_records(tmp_path / "log", key.public_key)}
    assert f"/v1/models/{MODEL_NAME}:predict?x=1" in paths  # logged as sent
    assert f"/v1/models/{MODEL_NAME}%3Apredict" in paths
    train = write_train(tmp_path / "train.csv")
    served = 442 - TRAIN_ROWS
    request = MonitorRequest(
        log_dir=tmp_path / "log",
        log_key=key.public_key,
        summary=summary_of(train),
        summary_digest=VSA_DIGEST,
        train_data=train,
        features=diabetes().features,
        labels={f"q-{i}": 150.0 for i in range(served)},
    )
    doc = monitor_window(request)
    metrics = doc["metrics"]
    assert metrics["drift.rows"] == 2 * served + 20  # the v1 requests are measured
    assert metrics["drift.undecodable"] == 0.0
    assert doc["slices"]["feature"]["bmi"]["metrics"]["psi"] > 0.25
    assert metrics["live.labels_ambiguous"] == 1.0  # q-0, replayed
    assert "live.mae" not in metrics and "live.mae" in doc["omitted"]
