"""/ok, /varz and /metrics of the reference server over real HTTP: their documents, the
readiness checks, secrets never shown, the exposition parsed by prometheus_client."""

from __future__ import annotations

import os
import platform
import threading
from datetime import datetime
from typing import Any

import httpx
import pytest
from msgspec.structs import replace

from mlspec_attest._version import __version__
from mlspec_attest.errors import BadInputError
from mlspec_attest.formats.rfc3339 import parse_rfc3339
from mlspec_attest.serve.config import ServeConfig
from mlspec_attest.serve.endpoints import REDACTED, StatusEndpoints, scrub
from mlspec_attest.serve.metrics import FOLD_EVERY, EndpointMetrics, ServeMetrics, error_kind
from mlspec_attest.signing.keys import KeyType, generate_key, write_key_pair

from .server_fixtures import (
    MODEL_NAME,
    MODEL_VERSION,
    VSA_DIGEST,
    MemoryLog,
    Server,
    ServerFactory,
    diabetes,
    make_server,
    sample,
    samples,
    served_model,
    server,
)

__all__ = ["make_server", "server"]  # fixtures, used by name


def infer(server: Server, rows: list[list[float]]) -> httpx.Response:
    body = {"inputs": [{"name": "x", "shape": [len(rows), 10], "datatype": "FP64", "data": rows}]}
    return httpx.post(server.infer_url(), json=body)


# ------------------------------------------------------------------ /ok
def test_ok_when_ready(server: Server) -> None:
    answer = httpx.get(f"{server.url}/ok")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "live": True,
        "ready": True,
        "name": MODEL_NAME,
        "model": {
            "name": MODEL_NAME,
            "version": MODEL_VERSION,
            "digest": f"sha256:{server.served.binding.model_digest}",
            "verified": True,
        },
    }


def test_ok_names_every_failing_check(make_server: ServerFactory) -> None:
    state = {"warm": False}

    def cache_check() -> bool:
        raise ConnectionError("feature store unreachable")

    server = make_server(
        readiness=[("warm-up", lambda: state["warm"]), ("feature-cache", cache_check)]
    )
    answer = httpx.get(f"{server.url}/ok")
    assert answer.status_code == 503
    assert answer.json()["status"] == "not ready"
    assert (answer.json()["live"], answer.json()["ready"]) == (True, False)
    assert answer.json()["reasons"] == [
        "warm-up: not ready",
        "feature-cache: check failed (ConnectionError: feature store unreachable)",
    ]
    # the protocol's ready routes say the same
    ready = httpx.get(f"{server.url}/v2/health/ready")
    assert ready.status_code == 503 and ready.json()["ready"] is False
    assert "warm-up: not ready" in ready.json()["error"]
    model_ready = httpx.get(f"{server.url}/v2/models/{MODEL_NAME}/ready")
    assert (model_ready.status_code, model_ready.json()["ready"]) == (503, False)
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200  # alive all the same


def test_ok_only_answers_get(server: Server) -> None:
    for path in ("/ok", "/varz", "/metrics"):
        answer = httpx.post(f"{server.url}{path}")
        assert answer.status_code == 405
        assert answer.headers["allow"] == "GET"
        assert answer.json() == {"error": "method not allowed"}


# ------------------------------------------------------------------ /varz
def test_varz_document(make_server: ServerFactory) -> None:
    config = ServeConfig(host="127.0.0.1", port=8080, log_dir="/var/log/mlspec", log_user_ids=True)
    server = make_server(config=config)
    varz = httpx.get(f"{server.url}/varz").json()
    binding = server.served.binding
    assert varz["name"] == MODEL_NAME
    assert varz["model"] == {
        "name": MODEL_NAME,
        "version": MODEL_VERSION,
        "digest": f"sha256:{binding.model_digest}",
        "format": "pickle",
        "features": list(diabetes().features),
        "extra": {"card": {"owner": "ml-team"}},
    }
    assert varz["binding"] == {
        "model_digest": f"sha256:{binding.model_digest}",
        "vsa_digest": f"sha256:{VSA_DIGEST}",
        "policy_digest": f"sha256:{binding.policy_digest}",
        "run_id": "run-2026-06-01",
        "time_verified": "2026-06-01T12:00:00Z",
        "verifier_id": "https://mlspec-attest.dev/verifier/v1",
        "resource_uri": "https://models.example.com/diabetes",
    }
    assert varz["config"] == {
        "host": "127.0.0.1",
        "port": 8080,
        "log_dir": "/var/log/mlspec",
        "log_inputs": "digest",
        "log_user_ids": "as sent",
        "max_body_bytes": 8 * 1024 * 1024,
        "user_header": "X-User-Id",
        "log_writer": "journal",
        "predict_threads": 1,
    }
    assert varz["mlspec_attest_version"] == __version__
    assert varz["python_version"] == platform.python_version()
    assert varz["pid"] == os.getpid()
    assert isinstance(parse_rfc3339(varz["start_time"]), datetime)
    assert varz["uptime_seconds"] >= 0
    assert varz["vars"] == {}


def test_no_private_key_or_passphrase_is_ever_shown(
    make_server: ServerFactory, tmp_path: Any
) -> None:
    """A server whose log holds a signing key, whose model card carries a key by mistake
    and a passphrase: none of it appears in any endpoint."""
    signer = generate_key(KeyType.ED25519)
    key_path, _ = write_key_pair(signer, tmp_path / "log")
    pem = key_path.read_text()
    body_lines = [line for line in pem.splitlines() if line and "-----" not in line]
    served = served_model()
    card = {
        "owner": "ml-team",
        "signing_key": pem,
        "notes": [f"key: {pem}"],
        "passphrase": "hunter2",
    }
    served = replace(served, extra=card)
    log = MemoryLog()
    log.signer = signer  # type: ignore[attr-defined]  # as the real writer holds its key
    server = make_server(served, log=log, config=ServeConfig(log_dir=str(tmp_path)))
    assert infer(server, diabetes().rows(1)).status_code == 200
    shown = "".join(
        httpx.get(f"{server.url}{path}").text
        for path in ("/ok", "/varz", "/metrics", "/v2/models/diabetes")
    )
    assert "PRIVATE KEY" not in shown and "hunter2" not in shown
    assert all(line not in shown for line in body_lines)
    extra = httpx.get(f"{server.url}/varz").json()["model"]["extra"]
    assert extra == {
        "owner": "ml-team",
        "signing_key": REDACTED,
        "notes": [REDACTED],
        "passphrase": REDACTED,
    }


def test_scrub() -> None:
    assert scrub({"Password": "x", "api_token": 1, "ok": [1, 2.5, None, True]}) == {
        "Password": REDACTED,
        "api_token": REDACTED,
        "ok": [1, 2.5, None, True],
    }
    assert scrub({"raw": b"\x00" * 5, "nan": float("nan"), "when": datetime(2026, 1, 1)}) == {
        "raw": "<5 bytes>",
        "nan": "nan",
        "when": "2026-01-01 00:00:00",
    }
    deep: Any = "bottom"
    for _ in range(20):
        deep = [deep]
    shown = scrub(deep)
    for _ in range(16):
        shown = shown[0]
    assert shown == "..."


# ------------------------------------------------------------------ /metrics
def test_metrics_exposition(server: Server) -> None:
    rows = diabetes().rows(3)
    assert infer(server, rows).status_code == 200
    assert httpx.post(server.infer_url(), content=b"{").status_code == 400
    assert httpx.post(server.infer_url("iris"), content=b"{}").status_code == 404
    server.metrics.set_drift("bmi", 0.31)
    server.metrics.set_drift("age", 0.02)
    answer = httpx.get(f"{server.url}/metrics")
    assert answer.headers["content-type"].startswith("text/plain; version=")
    text = answer.text
    route = "/v2/models/{name}/infer"
    assert sample(text, "mlspec_requests_total", route=route, method="POST", status="200") == 1
    assert sample(text, "mlspec_requests_total", route=route, method="POST", status="400") == 1
    assert sample(text, "mlspec_requests_total", route=route, method="POST", status="404") == 1
    assert sample(text, "mlspec_request_duration_seconds_count", route=route) == 3
    assert sample(text, "mlspec_request_errors_total", kind="bad_request") == 1
    assert sample(text, "mlspec_request_errors_total", kind="not_found") == 1
    assert sample(text, "mlspec_log_records_total") == 3
    assert sample(text, "mlspec_log_failures_total") == 0
    assert sample(text, "mlspec_predictions_count") == 3
    binding = server.served.binding
    info = {
        "name": MODEL_NAME,
        "version": MODEL_VERSION,
        "digest": f"sha256:{binding.model_digest}",
        "vsa": f"sha256:{VSA_DIGEST}",
    }
    assert sample(text, "mlspec_model_info", **info) == 1
    assert sample(text, "mlspec_drift_psi", feature="bmi") == 0.31
    assert sample(text, "mlspec_drift_psi", feature="age") == 0.02
    uptime = sample(text, "mlspec_uptime_seconds")
    assert uptime is not None and uptime >= 0
    # the /metrics request before this one was counted too
    assert (
        sample(
            httpx.get(f"{server.url}/metrics").text,
            "mlspec_requests_total",
            route="/metrics",
            method="GET",
            status="200",
        )
        == 1
    )


def test_each_server_has_its_own_registry(make_server: ServerFactory) -> None:
    first, second = make_server(), make_server()
    assert infer(first, diabetes().rows(1)).status_code == 200
    text = httpx.get(f"{second.url}/metrics").text
    assert sample(text, "mlspec_log_records_total") == 0
    assert not any(name == "mlspec_requests_total" for name, _ in samples(text))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True, "0.3"])
def test_drift_must_be_a_finite_number(value: Any) -> None:
    with pytest.raises(BadInputError, match="drift of feature 'bmi' must be a finite number"):
        ServeMetrics().set_drift("bmi", value)


def test_predictions_histogram_takes_numbers_only() -> None:
    metrics = ServeMetrics()
    metrics.observe_predictions([1, 2.5, float("nan"), "cat", True, [0.25, 0.75], None])
    metrics.observe_predictions("not a list")
    text = metrics.exposition().decode()
    assert sample(text, "mlspec_predictions_count") == 5  # 1, 2.5, True, 0.25, 0.75
    assert sample(text, "mlspec_predictions_bucket", le="0.25") == 1


def test_inference_counts_are_queued_within_a_bound_and_exact_when_read() -> None:
    metrics = ServeMetrics()
    route = "/v2/models/{name}/infer"

    def observe(count: int) -> None:
        for i in range(count):
            error = "predictor" if i % 10 == 0 else None
            status = 500 if error else 200
            metrics.observe_inference(
                route, "POST", status, 0.001, error=error, output=[0.5], logged=i % 7 != 0
            )

    observe(FOLD_EVERY * 2 + 5)
    assert len(metrics._hot.pending) <= FOLD_EVERY  # folded on the way: memory stays bounded
    threads = [threading.Thread(target=observe, args=(3000,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(20):  # scrapes while four threads queue: nothing lost, nothing twice
        metrics.exposition()
    for thread in threads:
        thread.join()
    text = metrics.exposition().decode()
    total = FOLD_EVERY * 2 + 5 + 4 * 3000
    per_run = {
        n: (sum(1 for i in range(n) if i % 10 == 0), sum(1 for i in range(n) if i % 7 == 0))
        for n in (FOLD_EVERY * 2 + 5, 3000)
    }
    errors = per_run[FOLD_EVERY * 2 + 5][0] + 4 * per_run[3000][0]
    failed = per_run[FOLD_EVERY * 2 + 5][1] + 4 * per_run[3000][1]
    ok = sample(text, "mlspec_requests_total", route=route, method="POST", status="200")
    bad = sample(text, "mlspec_requests_total", route=route, method="POST", status="500")
    assert (ok, bad) == (total - errors, errors)
    assert sample(text, "mlspec_request_errors_total", kind="predictor") == errors
    assert sample(text, "mlspec_log_failures_total") == failed
    assert sample(text, "mlspec_log_records_total") == total - failed
    assert sample(text, "mlspec_predictions_count") == total


def test_error_kinds_of_statuses() -> None:
    assert [error_kind(s) for s in (400, 404, 405, 413, 418, 500, 502, 503)] == [
        "bad_request", "not_found", "method_not_allowed", "too_large", "client_error",
        "internal", "server_error", "unavailable",
    ]  # fmt: skip


# ------------------------------------------------------------------ the endpoints alone
def test_endpoints_need_a_name() -> None:
    with pytest.raises(BadInputError, match="need a name or a served model"):
        StatusEndpoints(metrics=EndpointMetrics())


def test_varz_values_must_be_json() -> None:
    endpoints = StatusEndpoints(metrics=EndpointMetrics(), name="train", varz={"epochs": 3})
    with pytest.raises(BadInputError, match="varz 'model': not a JSON value"):
        endpoints.set_var("model", object())
    with pytest.raises(BadInputError, match="varz 'loss': not a JSON value"):
        endpoints.set_var("loss", float("nan"))
    assert endpoints.varz()["vars"] == {"epochs": 3}
    assert "model" not in endpoints.varz()


def test_faults_make_not_ready_until_cleared() -> None:
    endpoints = StatusEndpoints(metrics=EndpointMetrics(), name="train")
    endpoints.set_fault("data", "shard 3 unreadable")
    assert endpoints.ok() == (
        503,
        {
            "status": "not ready",
            "live": True,
            "ready": False,
            "name": "train",
            "reasons": ["data: shard 3 unreadable"],
        },
    )
    endpoints.clear_fault("data")
    assert endpoints.ok() == (200, {"status": "ok", "live": True, "ready": True, "name": "train"})
