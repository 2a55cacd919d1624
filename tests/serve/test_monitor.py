"""``monitor``: drift and live metrics over the verified inference log, bound to its summary."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlspec_attest.errors import BadInputError, VerificationError
from mlspec_attest.evidence.metrics_file import read_metrics_document
from mlspec_attest.formats.bundle import sign_to_bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.formats.statement import ResourceDescriptor
from mlspec_attest.formats.vsa import Level, Result, VerificationSummary
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.serve.monitor import MonitorRequest, monitor_window, verified_records
from mlspec_attest.signing.keys import KeyType, generate_key

FEATURES = ("age", "bmi")
ORIGIN = "mlspec-attest/test-model/monitor"


def _train_csv(path: Path, rng: random.Random, rows: int = 400) -> Path:
    lines = ["age,bmi,target"]
    for _ in range(rows):
        lines.append(f"{rng.gauss(50, 10):.3f},{rng.gauss(26, 4):.3f},{rng.gauss(150, 50):.2f}")
    path.write_text("\n".join(lines) + "\n")
    return path


class World:
    """A trained-model world: training data, a signed summary, a server log key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rng = random.Random(3)
        self.train = _train_csv(root / "train.csv", self.rng)
        self.verifier = generate_key(KeyType.ED25519)
        self.server = generate_key(KeyType.ED25519)
        train_sha = hashlib.sha256(self.train.read_bytes()).hexdigest()
        summary = VerificationSummary(
            subjects=(
                ResourceDescriptor("model", {"sha256": "a" * 64}),
                ResourceDescriptor("train-data", {"sha256": train_sha}),
            ),
            resource_uri="file:///models/m",
            policy_uri="file:///policy.json",
            policy_digest="b" * 64,
            time_verified=datetime.now(UTC).replace(microsecond=0),
            result=Result.PASSED,
            levels=(Level.SIGNED_CHAIN.value,),
            details={"runId": "run-1"},
        )
        bundle, _ = sign_to_bundle(summary.to_payload(), INTOTO_PAYLOAD_TYPE, self.verifier)
        self.vsa = root / "model.vsa.json"
        self.vsa.write_bytes(canonical(bundle.to_json()))
        self.summary = summary
        self.digest = hashlib.sha256(bundle.envelope.payload).hexdigest()
        self.log_dir = root / "log"
        self.verifier_pub = root / "verifier.pub"
        self.verifier_pub.write_text(self.verifier.public_key.pem())
        self.server_pub = root / "server.pub"
        self.server_pub.write_text(self.server.public_key.pem())

    def serve(self, n: int, *, shift: float = 0.0, vsa_digest: str | None = None) -> None:
        log = InferenceLog.open(
            self.log_dir, self.server, origin=ORIGIN, log_inputs=True, checkpoint_interval_s=0
        )
        try:
            for i in range(n):
                row = [self.rng.gauss(50 + shift, 10), self.rng.gauss(26, 4)]
                body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": row}]}
                log.append(
                    request_id=f"r-{vsa_digest or 'main'}-{i}",
                    client="127.0.0.1",
                    user=None,
                    method="POST",
                    path="/v2/models/m/infer",
                    protocol="HTTP/1.1",
                    status=200,
                    bytes_sent=80,
                    referer=None,
                    user_agent="test",
                    model="m",
                    model_version="1",
                    model_digest="a" * 64,
                    vsa_digest=vsa_digest or self.digest,
                    body=json.dumps(body).encode(),
                    output=[100.0 + i % 7],
                    latency_us=100 + i,
                )
        finally:
            log.close()

    def request(self, **extra: object) -> MonitorRequest:
        fields: dict[str, object] = {
            "log_dir": self.log_dir,
            "log_key": self.server.public_key,
            "summary": self.summary,
            "summary_digest": self.digest,
            "train_data": self.train,
            "features": FEATURES,
        }
        fields.update(extra)
        return MonitorRequest(**fields)  # type: ignore[arg-type]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_stable_traffic_shows_no_drift(world: World) -> None:
    world.serve(300)
    doc = monitor_window(world.request())
    metrics = doc["metrics"]
    assert metrics["window.requests"] == 300.0
    assert metrics["window.error_rate"] == 0.0
    assert metrics["drift.rows"] == 300.0
    assert metrics["drift.psi_max"] < 0.1
    assert metrics["drift.features_shifted"] == 0.0
    assert set(doc["slices"]["feature"]) == set(FEATURES)
    assert doc["slices"]["feature"]["age"]["count"] == 300
    assert metrics["latency.p50_us"] == 249.0  # latencies 100..399
    assert metrics["prediction.mean"] == pytest.approx(sum(100 + i % 7 for i in range(300)) / 300)


def test_a_shifted_feature_is_named(world: World) -> None:
    world.serve(300, shift=15.0)
    doc = monitor_window(world.request())
    age = doc["slices"]["feature"]["age"]["metrics"]
    bmi = doc["slices"]["feature"]["bmi"]["metrics"]
    assert age["psi"] > 0.25 and age["ks_pvalue"] < 1e-6
    assert bmi["psi"] < 0.1
    assert doc["metrics"]["drift.features_shifted"] == 1.0


def test_the_document_is_a_metrics_document_sign_accepts(world: World, tmp_path: Path) -> None:
    world.serve(50)
    path = tmp_path / "monitoring.json"
    path.write_text(json.dumps(monitor_window(world.request(labels={"r-main-0": 90.0}))))
    doc = read_metrics_document(path)
    assert doc.metrics["live.labelled"] == 1.0
    assert doc.metrics["live.mae"] == 10.0  # predicted 100.0, true 90.0
    assert doc.slices["feature"]["bmi"]["count"] == 50


def test_only_requests_served_under_the_summary_count(world: World) -> None:
    world.serve(40)
    world.serve(25, vsa_digest="c" * 64)  # another model's traffic in the same log
    doc = monitor_window(world.request())
    assert doc["metrics"]["window.requests"] == 40.0
    assert monitor_window(world.request(window=10))["metrics"]["window.requests"] == 10.0


def test_other_training_data_is_refused(world: World, tmp_path: Path) -> None:
    world.serve(20)
    other = _train_csv(tmp_path / "other.csv", random.Random(9))
    with pytest.raises(VerificationError, match="not the training data the summary names"):
        monitor_window(world.request(train_data=other))


def test_a_tampered_log_is_refused(world: World) -> None:
    world.serve(20)
    records = world.log_dir / "records.cbor"
    data = bytearray(records.read_bytes())
    data[len(data) // 2] ^= 0x01
    records.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match="is tampered"):
        verified_records(world.log_dir, world.server.public_key)


def test_unsigned_records_are_not_evidence(world: World) -> None:
    world.serve(10)
    assert len(verified_records(world.log_dir, world.server.public_key)) == 10
    # An appended record that no checkpoint covers: a crash, or a forger without the key.
    log = InferenceLog.open(
        world.log_dir, world.server, origin=ORIGIN, log_inputs=True, checkpoint_interval_s=0
    )
    log.close()
    assert len(verified_records(world.log_dir, world.server.public_key)) == 10


def test_no_request_under_the_summary(world: World) -> None:
    world.serve(5, vsa_digest="d" * 64)
    with pytest.raises(BadInputError, match="no request served under summary"):
        monitor_window(world.request())
