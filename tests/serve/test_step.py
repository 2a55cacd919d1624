"""The pipeline-step endpoints: started on a free port of 127.0.0.1, updated by the step,
stopped when the block ends."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import Counter

from mlspec_attest.errors import BadInputError
from mlspec_attest.serve.step import serve_step_endpoints

from .server_fixtures import sample


def test_step_endpoints_start_show_and_stop() -> None:
    with serve_step_endpoints("train", varz={"epochs": 20, "dataset": "diabetes"}) as endpoint:
        assert endpoint.port > 0 and endpoint.host == "127.0.0.1"
        assert endpoint.url == f"http://127.0.0.1:{endpoint.port}"
        ok = httpx.get(f"{endpoint.url}/ok")
        assert ok.status_code == 200
        assert ok.json() == {"status": "ok", "live": True, "ready": True, "name": "train"}

        for epoch, loss in enumerate([0.9, 0.5, 0.25]):
            endpoint.set("epoch", epoch)
            endpoint.observe("loss", loss)
            endpoint.count("batches", 32)
        varz = httpx.get(f"{endpoint.url}/varz").json()
        assert varz["name"] == "train"
        assert varz["vars"] == {"epochs": 20, "dataset": "diabetes", "epoch": 2}
        assert "model" not in varz and "binding" not in varz

        text = httpx.get(f"{endpoint.url}/metrics").text
        assert sample(text, "mlspec_step_value", name="loss") == 0.25
        assert sample(text, "mlspec_step_events_total", name="batches") == 96
        assert sample(text, "mlspec_requests_total", route="/ok", method="GET", status="200") == 1
        assert sample(text, "mlspec_requests_total", route="/varz", method="GET", status="200") == 1
        assert sample(text, "mlspec_uptime_seconds") is not None
        assert sample(text, "mlspec_model_info") is None  # a step serves no model

        nowhere = httpx.get(f"{endpoint.url}/v2")
        assert nowhere.status_code == 404 and nowhere.json() == {"error": "no endpoint /v2"}
        url = endpoint.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/ok")


def test_step_readiness() -> None:
    loaded = {"data": False}
    with serve_step_endpoints("train", ready=lambda: loaded["data"]) as endpoint:
        answer = httpx.get(f"{endpoint.url}/ok")
        assert answer.status_code == 503 and answer.json()["reasons"] == ["train: not ready"]
        loaded["data"] = True
        assert httpx.get(f"{endpoint.url}/ok").status_code == 200
        endpoint.set_fault("checkpoint", "disk full")
        assert httpx.get(f"{endpoint.url}/ok").json()["reasons"] == ["checkpoint: disk full"]
        endpoint.clear_fault("checkpoint")
        assert httpx.get(f"{endpoint.url}/ok").status_code == 200


def test_step_collectors_of_its_own() -> None:
    with serve_step_endpoints("evaluate") as endpoint:
        rows = Counter("rows_scored", "Rows scored.", registry=endpoint.registry)
        rows.inc(1000)
        assert sample(httpx.get(f"{endpoint.url}/metrics").text, "rows_scored_total") == 1000


def test_step_stops_when_the_step_fails() -> None:
    with pytest.raises(RuntimeError, match="training diverged"):  # noqa: SIM117
        with serve_step_endpoints("train") as endpoint:
            url = endpoint.url
            raise RuntimeError("training diverged")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/ok")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: e.observe("loss", float("nan")), "step value 'loss' must be a finite number"),
        (lambda e: e.observe("loss", "0.3"), "step value 'loss' must be a finite number"),
        (lambda e: e.observe("bad name", 1.0), "step metric name 'bad name'"),
        (lambda e: e.count("x" * 65), "step metric name"),
        (lambda e: e.set("model", object()), "varz 'model': not a JSON value"),
    ],
)
def test_step_refuses_what_it_cannot_show(call: Any, message: str) -> None:
    with serve_step_endpoints("train") as endpoint, pytest.raises(BadInputError, match=message):
        call(endpoint)
