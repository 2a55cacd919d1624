"""``monitor``: what the client chooses (request target, body, X-Request-Id) never decides
what the evidence leaves out, and what cannot be measured fails closed (withheld, counted,
named under ``omitted``), so a policy bound on it fails as on any missing metric.

Records are written by the real log writer, signed by a real key, audited for real."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from mlspec_attest.evidence.metrics_file import read_metrics_document
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.policy.celexpr import Activation, ExpressionError, compile_expression
from mlspec_attest.policy.criteria import Evidence, evaluate_criterion
from mlspec_attest.serve.monitor import DRIFT_METRICS, LIVE_METRICS, monitor_window

from .test_monitor import ORIGIN, World, world

__all__ = ["world"]  # a fixture, used by name

V1_TARGETS = (
    "/v1/models/m:predict?x=1",
    "/v1/models/m%3Apredict",
    "/v1/models/m%3apredict?a=b",
)


def v2_body(row: list[float]) -> bytes:
    tensor = {"name": "x", "shape": [1, len(row)], "datatype": "FP64", "data": row}
    return json.dumps({"inputs": [tensor]}).encode()


def append(world: World, entries: list[dict[str, Any]]) -> None:
    """Append records to the world's log; each entry overrides a served v2 request's values."""
    log = InferenceLog.open(
        world.log_dir, world.server, origin=ORIGIN, log_inputs=True, checkpoint_interval_s=0
    )
    try:
        for i, entry in enumerate(entries):
            values: dict[str, Any] = {
                "request_id": f"extra-{i}",
                "client": "127.0.0.1",
                "user": None,
                "method": "POST",
                "path": "/v2/models/m/infer",
                "protocol": "HTTP/1.1",
                "status": 200,
                "bytes_sent": 80,
                "referer": None,
                "user_agent": "test",
                "model": "m",
                "model_version": "1",
                "model_digest": "a" * 64,
                "vsa_digest": world.digest,
                "body": v2_body([50.0, 26.0]),
                "output": [100.0],
                "latency_us": 100,
            }
            values.update(entry)
            log.append(**values)
    finally:
        log.close()


def drifted_v1(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Shifted v1 requests behind request targets a naive path check misreads."""
    entries = []
    for i in range(count):
        row = [rng.gauss(80, 10), rng.gauss(26, 4)]
        instance: object = row if i % 2 else {"age": row[0], "bmi": row[1]}
        body = json.dumps({"instances": [instance]}).encode()
        entries.append({"path": V1_TARGETS[i % len(V1_TARGETS)], "body": body})
    return entries


def fails(expr: str, metrics: dict[str, float]) -> bool:
    """Whether a CEL requirement over the monitor stage fails (false or not evaluable)."""
    try:
        return not compile_expression(expr).evaluate(
            Activation({"stages": {"monitor": {"metrics": metrics}}})
        )
    except ExpressionError:
        return True


# ------------------------------------------------------------------ drift (F2)
def test_v1_requests_behind_a_query_or_an_escaped_colon_are_measured(world: World) -> None:
    world.serve(100)
    append(world, drifted_v1(random.Random(5), 200))
    metrics = monitor_window(world.request())["metrics"]
    assert metrics["drift.rows"] == 300.0  # was 100: every v1 request left out
    assert metrics["drift.undecodable"] == 0.0
    assert metrics["drift.psi_max"] > 0.25
    assert metrics["drift.features_shifted"] == 1.0


def test_a_served_input_that_is_not_rows_withholds_drift(world: World, tmp_path: Path) -> None:
    world.serve(200)
    append(world, [{"body": v2_body([50.0, 26.0, 1.0])}, {"status": 201, "body": b"{}"}])
    doc = monitor_window(world.request())
    metrics = doc["metrics"]
    assert not set(DRIFT_METRICS) & set(metrics)  # was: drift over the other 200
    assert metrics["drift.undecodable"] == 2.0
    assert "feature" not in doc["slices"]
    assert set(doc["omitted"]) == set(DRIFT_METRICS)
    assert doc["omitted"]["drift.psi_max"].startswith("withheld: 2 served request(s)")
    path = tmp_path / "monitoring.json"
    path.write_text(json.dumps(doc))
    assert read_metrics_document(path).omitted == doc["omitted"]  # what `sign` records
    bound = {"id": "drift", "stage": "monitor", "metric": "drift.psi_max", "max": 0.25}
    assert not evaluate_criterion(bound, {"monitor": Evidence("monitor", metrics)}, None).passed
    assert fails('stages.monitor.metrics["drift.features_shifted"] == 0.0', metrics)


def test_a_refused_request_is_no_finding(world: World) -> None:
    world.serve(200)
    append(world, [{"status": 400, "body": b"{", "output": None, "path": "/v1/models/m:predict"}])
    metrics = monitor_window(world.request())["metrics"]
    assert metrics["drift.undecodable"] == 0.0
    assert metrics["drift.rows"] == 200.0
    assert metrics["drift.features_shifted"] == 0.0


# ------------------------------------------------------------------ labels (F3)
def test_a_replayed_request_id_withholds_the_live_error(world: World) -> None:
    world.serve(10)
    labels = {f"r-main-{i}": 100.0 + i % 7 + 40.0 for i in range(10)}  # each 40 off
    append(world, [{"request_id": "r-main-3", "output": [143.0]} for _ in range(50)])
    doc = monitor_window(world.request(labels=labels))
    metrics = doc["metrics"]
    assert not set(LIVE_METRICS) & set(metrics)  # was: live.labelled 60, live.mae 33.3
    assert metrics["live.labels_ambiguous"] == 1.0
    assert metrics["live.labels_unpairable"] == 0.0
    assert set(doc["omitted"]) == set(LIVE_METRICS)
    assert "1 name a request id the log holds more than once" in doc["omitted"]["live.mae"]
    assert fails('stages.monitor.metrics["live.mae"] <= 45.0', metrics)


def test_a_request_id_reused_before_the_window_is_ambiguous(world: World) -> None:
    world.serve(10)
    world.serve(10)  # the same request ids again; the window holds only the second
    doc = monitor_window(world.request(window=10, labels={"r-main-0": 90.0}))
    assert doc["metrics"]["window.requests"] == 10.0
    assert "live.mae" not in doc["metrics"]  # was: paired with the record in the window
    assert doc["metrics"]["live.labels_ambiguous"] == 1.0


def test_a_labelled_batch_request_is_unpairable(world: World) -> None:
    world.serve(10)
    append(world, [{"request_id": "batch-1", "output": [100.0, 180.0]}])
    doc = monitor_window(world.request(labels={"r-main-0": 90.0, "batch-1": 180.0}))
    assert set(doc.get("omitted", {})) == set(LIVE_METRICS)  # was: the batch left out
    assert doc["metrics"]["live.labels_unpairable"] == 1.0
    assert doc["metrics"]["live.labels_ambiguous"] == 0.0


def test_unique_request_ids_pair_once_each(world: World) -> None:
    world.serve(10)
    append(world, [{"request_id": "refused", "status": 400, "body": b"{", "output": None}])
    labels = {f"r-main-{i}": 90.0 for i in range(10)} | {"refused": 1.0, "elsewhere": 1.0}
    doc = monitor_window(world.request(labels=labels))
    metrics = doc["metrics"]
    assert metrics["live.labelled"] == 10.0
    assert metrics["live.mae"] == sum(10.0 + i % 7 for i in range(10)) / 10
    assert (metrics["live.labels_ambiguous"], metrics["live.labels_unpairable"]) == (0.0, 0.0)
    assert "omitted" not in doc
