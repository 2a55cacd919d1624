"""The middleware on a plain third-party Starlette application, added in one line, over
real HTTP on 127.0.0.1: the records it writes, the ids, a log that cannot be written,
concurrency, and (in process) that no byte leaves before the record is written."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from mlspec_attest.serve.config import ServeConfig
from mlspec_attest.serve.metrics import ServeMetrics
from mlspec_attest.serve.middleware import (
    MlspecMiddleware,
    request_id_of,
    set_error_kind,
    set_output,
)
from mlspec_attest.serve.model import ServedModel
from mlspec_attest.serve.runner import RunningServer, start_server

from .server_fixtures import MODEL_NAME, VSA_DIGEST, MemoryLog, sample, served_model

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


# ------------------------------------------------------------------ a third-party app
async def predict(request: Request) -> Response:
    """A hand-written v1 predict: the sum of each row."""
    rows = (await request.json())["instances"]
    outputs = [sum(row) for row in rows]
    set_output(request, outputs)
    return JSONResponse({"predictions": outputs, "id": request_id_of(request)})


async def score(request: Request) -> Response:
    if request.query_params.get("fail"):
        raise RuntimeError("scoring backend down")
    if request.query_params.get("refuse"):
        set_error_kind(request, "quota")
        return JSONResponse({"error": "over quota"}, status_code=429)
    set_output(request, [1.5])
    return JSONResponse({"score": 1.5})


async def hello(request: Request) -> Response:
    return PlainTextResponse(f"hello {request.path_params['who']}")


def third_party_app(lifespan_events: list[str] | None = None) -> Starlette:
    events = lifespan_events if lifespan_events is not None else []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    return Starlette(
        routes=[
            Route("/v1/models/{name}:predict", predict, methods=["POST"]),
            Route("/score", score, methods=["POST"]),
            Route("/hello/{who}", hello),
        ],
        lifespan=lifespan,
    )


@dataclass
class Running:
    url: str
    log: MemoryLog
    metrics: ServeMetrics
    served: ServedModel


@pytest.fixture
def running() -> Iterator[Running]:
    """The third-party app with the middleware added in one line, on 127.0.0.1."""
    app, log, served, metrics = third_party_app(), MemoryLog(), served_model(), ServeMetrics()
    app.add_middleware(MlspecMiddleware, served=served, log=log, metrics=metrics)
    with start_server(app) as server:
        yield Running(server.url, log, metrics, served)


def v1(url: str, rows: list[list[float]], **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/models/{MODEL_NAME}:predict", json={"instances": rows}, **kwargs)


# ------------------------------------------------------------------ one line
def test_one_line_gives_endpoints_ids_and_records(running: Running) -> None:
    answer = v1(
        running.url + "",
        [[1.0, 2.0], [3.0, 4.5]],
        headers={
            "x-user-id": "alice@example.com",
            "referer": "https://app.example/",
            "user-agent": "batch/1.0",
        },
    )
    assert answer.status_code == 200
    assert answer.json() == {"predictions": [3.0, 7.5], "id": answer.headers["x-request-id"]}
    assert answer.headers["x-mlspec-vsa"] == f"sha256:{VSA_DIGEST}"
    (record,) = running.log.records
    binding = running.served.binding
    assert record.request_id == answer.headers["x-request-id"]
    assert (record.client, record.user, record.method) == ("127.0.0.1", "alice@example.com", "POST")
    assert (record.path, record.protocol, record.status) == (
        "/v1/models/diabetes:predict",
        "HTTP/1.1",
        200,
    )
    assert (record.referer, record.user_agent) == ("https://app.example/", "batch/1.0")
    assert record.bytes_sent == len(answer.content)
    assert record.body == answer.request.content
    assert record.output == [3.0, 7.5]
    assert (record.model, record.model_version) == (MODEL_NAME, "3")
    assert (record.model_digest, record.vsa_digest) == (binding.model_digest, binding.vsa_digest)
    assert record.latency_us >= 0 and record.time is None

    hello = httpx.get(f"{running.url}/hello/bob")
    assert hello.text == "hello bob"
    assert UUID4.fullmatch(hello.headers["x-request-id"])
    assert hello.headers["x-mlspec-vsa"] == f"sha256:{VSA_DIGEST}"
    assert len(running.log.records) == 1  # not an inference: counted, not logged

    ok = httpx.get(f"{running.url}/ok")
    assert ok.status_code == 200 and ok.json()["model"]["name"] == MODEL_NAME
    assert httpx.get(f"{running.url}/varz").json()["binding"]["run_id"] == binding.run_id
    metrics = httpx.get(f"{running.url}/metrics").text
    route = "/v1/models/{name}:predict"
    assert sample(metrics, "mlspec_requests_total", route=route, method="POST", status="200") == 1
    assert (
        sample(metrics, "mlspec_requests_total", route="/hello/{who}", method="GET", status="200")
        == 1
    )
    assert sample(metrics, "mlspec_log_records_total") == 1
    assert sample(metrics, "mlspec_predictions_count") == 2
    # 3.0 and 7.5: both above 1, at most 10 (no _sum: the buckets allow negative values)
    assert sample(metrics, "mlspec_predictions_bucket", le="1.0") == 0
    assert sample(metrics, "mlspec_predictions_bucket", le="10.0") == 2


def test_query_string_is_part_of_the_logged_path(running: Running) -> None:
    answer = httpx.post(
        f"{running.url}/v1/models/{MODEL_NAME}:predict?trace=1&a=%20b", json={"instances": [[1]]}
    )
    assert answer.status_code == 200
    assert running.log.records[0].path == "/v1/models/diabetes:predict?trace=1&a=%20b"


def test_lifespan_of_the_application_still_runs() -> None:
    events: list[str] = []
    app = third_party_app(events)
    app.add_middleware(MlspecMiddleware, served=served_model(), log=MemoryLog())
    with start_server(app):
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


# ------------------------------------------------------------------ request ids
@pytest.mark.parametrize(
    "given", ["abc-123", "4bf92f3577b34da6a3ce929d0e0e4736", "a.b:c_d-e", "x" * 128]
)
def test_a_sane_request_id_is_kept(running: Running, given: str) -> None:
    answer = v1(running.url, [[1.0]], headers={"x-request-id": given})
    assert answer.headers["x-request-id"] == given
    assert answer.json()["id"] == given
    assert running.log.records[-1].request_id == given


@pytest.mark.parametrize(
    "given",
    [
        b"x" * 129,
        b"has space",
        b'quote"',
        b"semi;colon",
        b"<script>",
        b"%0d%0aSet-Cookie:x",
        b"caf\xc3\xa9",
        b"\xff\xfe",
        b"tab\there",
    ],
)
def test_any_other_request_id_is_replaced(running: Running, given: bytes) -> None:
    answer = v1(running.url, [[1.0]], headers={b"x-request-id": given})
    assert UUID4.fullmatch(answer.headers["x-request-id"])
    assert running.log.records[-1].request_id == answer.headers["x-request-id"]
    hello = httpx.get(f"{running.url}/hello/x", headers={b"x-request-id": given})
    assert UUID4.fullmatch(hello.headers["x-request-id"])


def raw_exchange(url: str, request: bytes) -> bytes:
    """Send ``request`` as is on a new connection; everything the server answers."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "header",
    [
        b"X-Request-Id: abc\r\n Set-Cookie: evil=1",  # obsolete line folding
        b"X-Request-Id: abc\rSet-Cookie: evil=1",  # a bare CR
        b"X-Request-Id: abc\x00Set-Cookie: evil=1",
        b"X-Request-Id: abc%0d%0aSet-Cookie: evil=1",
        b"X-Request-Id: safe-id\r\nX-Request-Id: evil=1\r\nSet-Cookie: evil=1",
    ],
)
def test_header_injection_never_reaches_the_response(running: Running, header: bytes) -> None:
    request = b"GET /hello/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + header + b"\r\n\r\n"
    answer = raw_exchange(running.url, request)
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert b"evil" not in head and b"set-cookie" not in head
    ids = re.findall(rb"\r\nx-request-id: ([^\r]*)", head)
    if answer.startswith(b"HTTP/1.1 200"):
        # the first X-Request-Id counts, and only a sane one is echoed
        assert ids == [b"safe-id"] or (len(ids) == 1 and UUID4.fullmatch(ids[0].decode()))
    else:
        assert answer.startswith(b"HTTP/1.1 400")  # refused by the HTTP parser itself


# ------------------------------------------------------------------ users
def test_user_id_header_is_configurable_and_bounded() -> None:
    app, log = third_party_app(), MemoryLog()
    config = ServeConfig(user_header="X-Tenant")
    app.add_middleware(MlspecMiddleware, served=served_model(), log=log, config=config)
    with start_server(app) as server:
        assert (
            v1(server.url, [[1.0]], headers={"x-tenant": "acme", "x-user-id": "bob"}).status_code
            == 200
        )
        assert log.records[-1].user == "acme"
        assert v1(server.url, [[1.0]], headers={"x-tenant": "t" * 256}).status_code == 200
        refused = v1(server.url, [[1.0]], headers={"x-tenant": "t" * 257})
        assert refused.status_code == 400
        assert refused.json() == {"error": "X-Tenant: longer than 256 bytes or not text"}
        assert (log.records[-1].status, log.records[-1].user, log.records[-1].body) == (
            400,
            None,
            b"",
        )
        assert v1(server.url, [[1.0]]).status_code == 200
        assert log.records[-1].user is None


# ------------------------------------------------------------------ the log fails
def test_log_failure_answers_503_turns_not_ready_and_is_counted(running: Running) -> None:
    running.log.capacity = 1
    assert v1(running.url, [[1.0]]).status_code == 200
    refused = v1(running.url, [[2.0]])
    assert refused.status_code == 503
    assert refused.json() == {
        "error": "the request was not answered: its inference-log record could not be written"
    }
    assert "predictions" not in refused.text  # the application's answer was held back
    assert UUID4.fullmatch(refused.headers["x-request-id"])
    assert len(running.log.records) == 1

    ok = httpx.get(f"{running.url}/ok")
    assert ok.status_code == 503
    assert ok.json()["ready"] is False and ok.json()["live"] is True
    assert ok.json()["reasons"] == [
        "inference-log: the last write failed: inference log: no space left on device"
    ]
    metrics = httpx.get(f"{running.url}/metrics").text
    assert sample(metrics, "mlspec_log_failures_total") == 1
    assert sample(metrics, "mlspec_log_records_total") == 1
    assert sample(metrics, "mlspec_request_errors_total", kind="log_write") == 1
    route = "/v1/models/{name}:predict"
    assert sample(metrics, "mlspec_requests_total", route=route, method="POST", status="503") == 1

    running.log.capacity = None  # space again: the next record clears the fault
    assert v1(running.url, [[3.0]]).status_code == 200
    assert httpx.get(f"{running.url}/ok").status_code == 200


def test_log_failure_of_an_error_answer_is_503_too(running: Running) -> None:
    running.log.capacity = 0
    refused = httpx.post(f"{running.url}/v1/models/{MODEL_NAME}:predict", content=b"x" * (9 << 20))
    assert refused.status_code == 503  # not 413: no answer without its record


# ------------------------------------------------------------------ application failures
@pytest.fixture
def scoring() -> Iterator[tuple[RunningServer, MemoryLog]]:
    app, log = third_party_app(), MemoryLog()
    app.add_middleware(
        MlspecMiddleware,
        served=served_model(),
        log=log,
        is_inference=lambda method, path: path == "/score",
    )
    with start_server(app) as server:
        yield server, log


def test_custom_inference_routes_and_failures(scoring: tuple[RunningServer, MemoryLog]) -> None:
    server, log = scoring
    assert httpx.post(f"{server.url}/score").json() == {"score": 1.5}
    failed = httpx.post(f"{server.url}/score?fail=1")
    assert failed.status_code == 500
    assert failed.json() == {"error": "internal server error"}
    assert "Traceback" not in failed.text and "scoring backend" not in failed.text
    quota = httpx.post(f"{server.url}/score?refuse=1")
    assert quota.status_code == 429
    assert (
        httpx.post(
            f"{server.url}/v1/models/{MODEL_NAME}:predict", json={"instances": [[1]]}
        ).status_code
        == 200
    )
    assert [(r.path, r.status, r.output) for r in log.records] == [
        ("/score", 200, [1.5]),
        ("/score?fail=1", 500, None),
        ("/score?refuse=1", 429, None),
    ]
    metrics = httpx.get(f"{server.url}/metrics").text
    assert sample(metrics, "mlspec_request_errors_total", kind="internal") == 1
    assert sample(metrics, "mlspec_request_errors_total", kind="quota") == 1
    assert sample(metrics, "mlspec_predictions_count") == 1  # error answers add no predictions


def test_methods_are_counted_within_a_fixed_set(running: Running) -> None:
    # Two methods outside the counted set, both passed on by every HTTP parser uvicorn may
    # pick (httptools refuses "BREW"); they are one OTHER sample, counted twice.
    assert httpx.request("PROPFIND", f"{running.url}/hello/x").status_code == 405
    assert httpx.request("MKCOL", f"{running.url}/hello/y").status_code == 405
    metrics = httpx.get(f"{running.url}/metrics").text
    other = [
        line
        for line in metrics.splitlines()
        if line.startswith('mlspec_requests_total{method="OTHER"')
    ]
    assert len(other) == 1, other  # one sample per label set, however many methods
    assert (
        sample(metrics, "mlspec_requests_total", route="/hello/{who}", method="OTHER", status="405")
        == 2
    )
    assert sample(metrics, "mlspec_request_errors_total", kind="method_not_allowed") == 2


# ------------------------------------------------------------------ concurrency
def test_64_concurrent_clients_give_64_records(running: Running) -> None:
    async def one(client: httpx.AsyncClient, index: int) -> httpx.Response:
        return await client.post(
            f"{running.url}/v1/models/{MODEL_NAME}:predict",
            json={"instances": [[float(index), 1.0]]},
            headers={"x-user-id": f"user-{index}"},
        )

    async def all_at_once() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(limits=limits) as client:
            return list(await asyncio.gather(*(one(client, i) for i in range(64))))

    answers = asyncio.run(all_at_once())
    assert [answer.status_code for answer in answers] == [200] * 64
    ids = [answer.headers["x-request-id"] for answer in answers]
    assert len(set(ids)) == 64
    records = {record.request_id: record for record in running.log.records}
    assert len(running.log.records) == 64 and set(records) == set(ids)
    for index, answer in enumerate(answers):
        record = records[answer.headers["x-request-id"]]
        assert record.user == f"user-{index}"
        assert record.output == [index + 1.0] == answer.json()["predictions"]
        assert json.loads(record.body) == {"instances": [[float(index), 1.0]]}


# ------------------------------------------------------------------ in process: the order
class OrderedLog(MemoryLog):
    """A memory log that notes in ``events`` when each record is written."""

    def __init__(self, events: list[str], capacity: int | None = None) -> None:
        super().__init__(capacity=capacity)
        self.events = events

    def append(self, **fields: Any) -> Any:
        self.events.append("append")
        return super().append(**fields)


def call(app: Any, path: str, body: bytes, events: list[str]) -> list[Message]:
    """Call the ASGI app directly with one POST; what it sent, in order."""
    sent: list[Message] = []
    scope: Scope = {
        "type": "http", "http_version": "1.1", "method": "POST", "path": path, "raw_path": path.encode(),
        "query_string": b"", "headers": [(b"content-length", str(len(body)).encode())],
        "client": ("10.0.0.7", 5555), "server": ("127.0.0.1", 80), "scheme": "http", "root_path": "",
    }  # fmt: skip
    parts = [{"type": "http.request", "body": body[:3], "more_body": True},
             {"type": "http.request", "body": body[3:], "more_body": False}]  # fmt: skip

    async def receive() -> Message:
        return parts.pop(0) if parts else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        events.append(message["type"])
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_nothing_is_sent_before_the_record_is_written() -> None:
    events: list[str] = []

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        """A raw ASGI app answering in three chunks."""
        body = (await receive())["body"]
        set_output(scope, [len(body)])
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"x-request-id", b"mine")]}
        )
        for chunk in (b"a", b"b", b"c"):
            await send({"type": "http.response.body", "body": chunk, "more_body": chunk != b"c"})

    log = OrderedLog(events)
    app = MlspecMiddleware(streaming, served=served_model(), log=log)
    sent = call(app, "/v1/models/m:predict", b'{"instances": []}', events)
    assert events == ["append", "http.response.start", "http.response.body"]
    assert sent[1]["body"] == b"abc"
    headers = dict(sent[0]["headers"])
    assert headers[b"x-request-id"] == log.records[0].request_id.encode()  # ours, not the app's
    assert (log.records[0].client, log.records[0].output) == ("10.0.0.7", [17])
    assert log.records[0].body == b'{"instances": []}'  # the whole body, though sent in two parts


def test_an_app_that_never_answers_gets_500() -> None:
    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

    events: list[str] = []
    log = OrderedLog(events)
    sent = call(
        MlspecMiddleware(silent, served=served_model(), log=log),
        "/v1/models/m:predict",
        b"{}",
        events,
    )
    assert sent[0]["status"] == 500
    assert json.loads(sent[1]["body"]) == {"error": "the application sent no complete response"}
    assert log.records[0].status == 500


def test_a_failed_record_sends_only_the_503() -> None:
    events: list[str] = []

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"secret prediction"})

    metrics = ServeMetrics()
    app = MlspecMiddleware(
        answer, served=served_model(), log=OrderedLog(events, capacity=0), metrics=metrics
    )
    sent = call(app, "/v2/models/m/infer", b"{}", events)
    assert events == ["append", "http.response.start", "http.response.body"]
    assert sent[0]["status"] == 503
    assert b"secret" not in sent[1]["body"]
    assert app.endpoints.not_ready() == [
        "inference-log: the last write failed: inference log: no space left on device"
    ]


class BrokenLog:
    """A log whose write fails with an error that is not the library's (a bug)."""

    def append(self, **fields: Any) -> Any:
        raise OSError(28, "No space left on device")


def test_any_failure_of_the_log_is_a_503() -> None:
    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    app = MlspecMiddleware(answer, served=served_model(), log=BrokenLog())
    sent = call(app, "/v2/models/m/infer", b"{}", [])
    assert sent[0]["status"] == 503
    assert app.endpoints.not_ready() == [
        "inference-log: the last write failed: OSError: [Errno 28] No space left on device"
    ]


def test_a_client_that_leaves_mid_body_gets_nothing_and_no_record() -> None:
    async def never(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the application is not called")

    log = MemoryLog()
    app = MlspecMiddleware(never, served=served_model(), log=log)
    sent: list[Message] = []
    scope = {"type": "http", "method": "POST", "path": "/v2/models/m/infer", "headers": []}
    messages = [
        {"type": "http.request", "body": b"{", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent == [] and log.records == []
    assert (
        sample(
            app.metrics.exposition().decode(),
            "mlspec_request_errors_total",
            kind="client_disconnected",
        )
        == 1
    )
