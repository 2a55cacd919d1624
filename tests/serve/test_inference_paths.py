"""No inference is answered without its record, whatever path or headers a client sends:
a path the application's router serves but the middleware's ``is_inference`` does not
take (a final ``%0A``, which Starlette's ``$`` lets through; a mounted application's
prefix; a custom ``is_inference`` that disagrees) is refused or logged, never answered
unlogged; a header that names the request twice is refused; header bytes are logged as
sent. Real servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from mlspec_attest.log.audit import verify_log
from mlspec_attest.log.checkpoint import default_origin
from mlspec_attest.log.files import ACCESS_LOG, RECORDS
from mlspec_attest.log.record import decode_record
from mlspec_attest.log.scan import RecordScanner
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.serve.endpoints import StatusEndpoints
from mlspec_attest.serve.metrics import ServeMetrics
from mlspec_attest.serve.middleware import MlspecMiddleware, is_logged, set_output
from mlspec_attest.serve.oip import OipRoutes
from mlspec_attest.serve.runner import start_server
from mlspec_attest.signing.keys import KeyType, generate_key

from .server_fixtures import (
    MODEL_NAME,
    VSA_DIGEST,
    MemoryLog,
    Server,
    ServerFactory,
    served_model,
)
from .server_fixtures import make_server as make_server
from .server_fixtures import server as server

ROW = [0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02]
V2_BODY = {"inputs": [{"name": "input-0", "shape": [1, 10], "datatype": "FP64", "data": [ROW]}]}


@pytest.mark.parametrize("tail", ["%0A", "%0D", "%00", "%09", "%7F", "%0D%0A"])
@pytest.mark.parametrize("kind", ["v2", "v1"])
def test_a_path_with_a_control_character_is_refused_before_any_route(
    server: Server, tail: str, kind: str
) -> None:
    if kind == "v2":
        url, body = f"{server.infer_url()}{tail}", V2_BODY
    else:
        url, body = f"{server.url}/v1/models/{MODEL_NAME}:predict{tail}", {"instances": [ROW]}
    answer = httpx.post(url, json=body)
    assert answer.status_code == 400, answer.text
    assert "control character" in answer.json()["error"]
    assert answer.headers["x-request-id"]
    assert server.log.records == []  # no prediction was made, none answered
    assert httpx.post(server.infer_url(), json=V2_BODY).status_code == 200
    assert [r.status for r in server.log.records] == [200]


def _unmarked_server(make: ServerFactory) -> tuple[str, MemoryLog]:
    """The reference server's routes behind a middleware whose ``is_inference`` takes no
    request as an inference: the router and the middleware disagree on every path."""
    served, metrics, log = served_model(), ServeMetrics(), MemoryLog()
    endpoints = StatusEndpoints(metrics=metrics, served=served)
    app = Starlette(routes=OipRoutes(served, endpoints).routes())
    app.add_middleware(
        MlspecMiddleware,
        served=served,
        log=log,
        endpoints=endpoints,
        is_inference=lambda method, path: False,
    )
    running = start_server(app)
    make.started.append(running)
    return running.url, log


def test_the_reference_server_predicts_only_for_a_request_being_logged(
    make_server: ServerFactory,
) -> None:
    url, log = _unmarked_server(make_server)
    v2 = httpx.post(f"{url}/v2/models/{MODEL_NAME}/infer", json=V2_BODY)
    v1 = httpx.post(f"{url}/v1/models/{MODEL_NAME}:predict", json={"instances": [ROW]})
    for answer in (v2, v1):
        assert answer.status_code == 500, answer.text
        assert answer.json() == {"error": "refused: this request would not be in the inference log"}
    assert log.records == []
    metrics = httpx.get(f"{url}/metrics").text
    assert 'mlspec_request_errors_total{kind="not_logged"} 2.0' in metrics


async def _sum(request: Request) -> Response:
    rows = (await request.json())["instances"]
    outputs = [sum(row) for row in rows]
    set_output(request, outputs)
    return JSONResponse({"predictions": outputs, "logged": is_logged(request)})


@pytest.fixture
def mounted() -> Iterator[tuple[str, MemoryLog]]:
    """A third-party v1 predict mounted under ``/api``, the middleware on the outer app."""
    inner = Starlette(routes=[Route("/v1/models/{name}:predict", _sum, methods=["POST"])])
    app = Starlette(routes=[Mount("/api", app=inner)])
    log = MemoryLog()
    app.add_middleware(MlspecMiddleware, served=served_model(), log=log)
    with start_server(app) as running:
        yield running.url, log


def test_an_inference_below_a_mount_is_logged(mounted: tuple[str, MemoryLog]) -> None:
    url, log = mounted
    answer = httpx.post(f"{url}/api/v1/models/{MODEL_NAME}:predict", json={"instances": [[1, 2]]})
    assert answer.json() == {"predictions": [3], "logged": True}
    assert [(r.path, r.status, r.output) for r in log.records] == [
        (f"/api/v1/models/{MODEL_NAME}:predict", 200, [3])
    ]


@pytest.mark.parametrize("header", ["X-User-Id", "X-Request-Id"])
def test_a_header_naming_the_request_twice_is_refused_and_logged(
    server: Server, header: str
) -> None:
    headers = [(header, "alice"), (header, "mallory")]
    answer = httpx.post(server.infer_url(), json=V2_BODY, headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"error": f"{header.lower()}: given more than once"}
    (record,) = server.log.records
    assert (record.status, record.user, record.output) == (400, None, None)
    assert record.request_id not in ("alice", "mallory")
    assert answer.headers["x-request-id"] == record.request_id


def test_header_bytes_are_logged_as_sent(
    make_server: ServerFactory,
    tmp_path: Path,
) -> None:
    key = generate_key(KeyType.ED25519)
    origin = default_origin(MODEL_NAME, VSA_DIGEST)
    log = InferenceLog.open(tmp_path / "log", key, origin=origin)
    server = make_server(log=log)
    agent = b"caf\xc3\xa9 \xff"  # UTF-8 text, then a byte that is no UTF-8
    answer = httpx.post(server.infer_url(), json=V2_BODY, headers=[(b"user-agent", agent)])
    assert answer.status_code == 200, answer.text
    server.running.stop()  # closes the log: its last checkpoint signed
    (record,) = [decode_record(item.raw) for item in RecordScanner(tmp_path / "log" / RECORDS)]
    assert record.user_agent == "café \\xff"  # the UTF-8 as text, the other byte as \xHH
    line = (tmp_path / "log" / ACCESS_LOG).read_text("ascii")
    assert '"caf\\xC3\\xA9 \\x5Cxff"' in line  # the bytes sent, escaped as nginx does
    assert verify_log(tmp_path / "log", key.public_key, origin=origin).ok
