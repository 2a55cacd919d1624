"""The ASGI middleware: ``/ok`` ``/varz`` ``/metrics``, metrics for every request, and
one inference-log record for every inference request, written before it is answered.

Any Starlette or FastAPI application adds it with one line::

    app.add_middleware(MlspecMiddleware, served=served, log=log)

(or wraps any ASGI application: ``MlspecMiddleware(app, served=served, log=log)``). It is
a pure ASGI middleware, not ``BaseHTTPMiddleware``, and it

* answers ``/ok``, ``/varz`` and ``/metrics`` itself (:mod:`mlspec_attest.serve.endpoints`);
* times and counts every other request, by route template, method and status;
* gives every response ``X-Request-Id`` (the client's, if it is a sane token, else a new
  UUID) and ``X-Mlspec-Vsa: sha256:<digest of the verification summary>``;
* for an inference request (``is_inference(method, path)``; by default a POST to the
  Open Inference Protocol's ``/v2/models/{name}[/versions/{v}]/infer`` or to v1's
  ``/v1/models/{name}:predict``) reads the body first, within its size limit (413
  beyond, before reading it all when Content-Length says so), then holds the
  application's whole response until :meth:`RequestLog.append` has returned. If the
  append raises, the client gets 503 instead, ``/ok`` turns not ready naming the
  failure and ``mlspec_log_failures_total`` counts it: a request is never answered
  without its record.

The application hands over what it predicted with :func:`set_output` (it lands in the
ASGI scope's ``state`` under :data:`OUTPUT_KEY`, which Starlette's ``request.state``
shares), and may name the kind of an error it answers with :func:`set_error_kind`; the
request id is in the same ``state`` under :data:`REQUEST_ID_KEY` (:func:`request_id_of`).

``append`` runs on the event loop, between the application's last body chunk and the
first byte sent: the log writer must be quick (it batches its fsyncs at checkpoints).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from time import perf_counter
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlspec_attest.errors import MlspecError, UsageError
from mlspec_attest.formats import limits
from mlspec_attest.log.prepare import RequestValues
from mlspec_attest.serve.asgi import (
    BodyTooLargeError,
    ClientDisconnectedError,
    Header,
    error_body,
    find_header,
    read_body,
    replay_body,
    request_id,
    send_response,
    with_ids,
)
from mlspec_attest.serve.config import ServeConfig
from mlspec_attest.serve.context import (
    ERROR_KIND_KEY,
    OUTPUT_KEY,
    REQUEST_ID_KEY,
    RequestLog,
    request_id_of,
    set_error_kind,
    set_output,
)
from mlspec_attest.serve.endpoints import STATUS_PATHS, ReadinessCheck, StatusEndpoints
from mlspec_attest.serve.metrics import ServeMetrics, error_kind, sha256_ref
from mlspec_attest.serve.model import ServedModel

#: The fault ``/ok`` names while the last inference-log write failed.
LOG_FAULT: Final = "inference-log"

_INFERENCE_PATH: Final = re.compile(
    r"/v2/models/[^/]+(?:/versions/[^/]+)?/infer|/v1/models/[^/]+:predict"
)
_CONTROL: Final = re.compile(rb"[\x00-\x1f\x7f]")
#: How many (method, path) pairs the middleware remembers the inference decision of.
_DECIDED_PATHS: Final = 4096

logger = logging.getLogger("mlspec_attest.serve")

__all__ = [
    "ERROR_KIND_KEY",
    "LOG_FAULT",
    "OUTPUT_KEY",
    "REQUEST_ID_KEY",
    "MlspecMiddleware",
    "RequestLog",
    "is_inference_request",
    "request_id_of",
    "set_error_kind",
    "set_output",
]


def is_inference_request(method: str, path: str) -> bool:
    """Whether this is a POST to an Open Inference Protocol v2 infer or a v1 predict path."""
    return method == "POST" and _INFERENCE_PATH.fullmatch(path) is not None


class MlspecMiddleware:
    """The middleware (see the module docstring). ``endpoints`` shares the status of
    the application's own health routes (the reference server's ``/v2/health/ready``);
    without it the middleware makes its own from ``metrics``, ``config`` and ``readiness``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        served: ServedModel,
        log: RequestLog,
        metrics: ServeMetrics | None = None,
        config: ServeConfig | None = None,
        readiness: Iterable[ReadinessCheck] = (),
        endpoints: StatusEndpoints | None = None,
        is_inference: Callable[[str, str], bool] = is_inference_request,
    ) -> None:
        if endpoints is None:
            metrics = metrics if metrics is not None else ServeMetrics()
            endpoints = StatusEndpoints(
                metrics=metrics, served=served, config=config, readiness=readiness
            )
        if not isinstance(endpoints.metrics, ServeMetrics):
            raise UsageError("the middleware's endpoints need ServeMetrics")
        self.app = app
        self.served = served
        self.log = log
        record = getattr(log, "append_values", None)  # one map: no keywords to bind
        self._record: Callable[[RequestValues], object] = (
            record if callable(record) else lambda values: log.append(**values)
        )
        self.endpoints = endpoints
        self.metrics: ServeMetrics = endpoints.metrics
        self.metrics.set_model(served)
        self.config = endpoints.config or config or ServeConfig()
        self.is_inference = is_inference
        self._decided: dict[tuple[str, str], bool] = {}
        self.max_body = self.config.max_body_bytes
        self.user_header = self.config.user_header.lower().encode("ascii")
        self.vsa_header: Header = (
            b"x-mlspec-vsa",
            sha256_ref(served.binding.vsa_digest).encode("ascii"),
        )
        self._log_faulted = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        path: str = scope["path"]
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        if self._inference(scope["method"], path):
            await _Exchange(self, scope, send, started).run(receive)
            return
        rid = request_id(find_header(scope["headers"], b"x-request-id"))
        state[REQUEST_ID_KEY] = rid
        ids = ((b"x-request-id", rid.encode("ascii")), self.vsa_header)
        if path in STATUS_PATHS:
            status = await self.endpoints.respond(path, scope["method"], send, ids)
            self.metrics.observe_request(path, scope["method"], status, perf_counter() - started)
            return
        await self._pass(scope, receive, send, ids, started)

    async def _pass(
        self, scope: Scope, receive: Receive, send: Send, ids: tuple[Header, ...], started: float
    ) -> None:
        """A request that is not an inference: add the ids to the response, count it."""
        status = 500  # if the application raises before answering

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": with_ids(message.get("headers", ()), ids)}
            await send(message)

        try:
            await self.app(scope, receive, send_with_ids)
        finally:
            self.count(scope, status, started)

    def _inference(self, method: str, path: str) -> bool:
        """``is_inference``, remembered for the paths a server sees most (a bounded map)."""
        key = (method, path)
        decided = self._decided.get(key)
        if decided is None:
            decided = self.is_inference(method, path)
            if len(self._decided) < _DECIDED_PATHS:
                self._decided[key] = decided
        return decided

    def count(self, scope: Scope, status: int, started: float) -> None:
        """Count one answered request that is not an inference."""
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        self.metrics.observe_request(route, scope["method"], status, perf_counter() - started)
        if status >= 400:
            self.metrics.count_error(scope["state"].get(ERROR_KIND_KEY) or error_kind(status))

    def write_log(
        self, exchange: _Exchange, status: int, bytes_sent: int, output: object, latency_us: int
    ) -> Awaitable[object] | bool:
        """Append the exchange's record: True once written, False (the fault recorded) if
        it failed, or an awaitable of either when the log hands back one to await (a
        writer process's acknowledgement). Not a coroutine: a log that writes at once
        costs no coroutine."""
        scope = exchange.scope
        served, binding = self.served, self.served.binding
        try:
            written = self._record(
                {
                    "request_id": exchange.request_id,
                    "client": exchange.client(),
                    "user": exchange.user,
                    "method": scope["method"],
                    "path": exchange.logged_path(),
                    "protocol": "HTTP/" + scope.get("http_version", "1.1"),
                    "status": status,
                    "bytes_sent": bytes_sent,
                    "referer": exchange.referer,
                    "user_agent": exchange.user_agent,
                    "model": served.name,
                    "model_version": served.version,
                    "model_digest": binding.model_digest,
                    "vsa_digest": binding.vsa_digest,
                    "body": exchange.body,
                    "output": output,
                    "latency_us": latency_us,
                }
            )
        except Exception as exc:  # any failure means no record: never answer without one
            self._log_failed(exc)
            return False
        if written is not None and hasattr(written, "__await__"):
            return self._acknowledged(written)
        return self._log_ok()

    async def _acknowledged(self, written: Awaitable[object]) -> bool:
        try:
            await written
        except Exception as exc:
            self._log_failed(exc)
            return False
        return self._log_ok()

    def _log_ok(self) -> bool:
        if self._log_faulted:
            self._log_faulted = False
            self.endpoints.clear_fault(LOG_FAULT)
        return True

    def _log_failed(self, exc: Exception) -> None:
        if isinstance(exc, MlspecError):
            reason = exc.message
            logger.error("inference-log write failed: %s", reason)
        else:
            reason = f"{type(exc).__name__}: {exc}"
            logger.exception("inference-log write failed")
        self._log_faulted = True
        self.endpoints.set_fault(LOG_FAULT, f"the last write failed: {reason}")


class _Exchange:
    """One inference request: its body, the application's held response, its record."""

    __slots__ = (
        "body",
        "done",
        "ids",
        "mw",
        "parts",
        "referer",
        "request_id",
        "scope",
        "send",
        "start",
        "started",
        "user",
        "user_agent",
    )

    def __init__(self, mw: MlspecMiddleware, scope: Scope, send: Send, started: float) -> None:
        self.mw, self.scope, self.send, self.started = mw, scope, send, started
        self.body = b""
        self.done = False
        self.start: Message | None = None
        self.parts: list[bytes] = []
        self.user: str | None = None
        self.user_agent: str | None = None
        self.referer: str | None = None
        self.request_id = ""
        self.ids: tuple[Header, ...] = ()

    async def run(self, receive: Receive) -> None:
        problem = self._read_headers()
        if problem is not None:
            await self.finish(problem[0], [], error_body(problem[1]), problem[2])
            return
        try:
            self.body = await self._read_body(receive)
        except BodyTooLargeError:
            await self.finish(413, [], error_body(self._too_large()), "too_large")
            return
        except ClientDisconnectedError:
            self.mw.metrics.count_error("client_disconnected")
            return
        try:
            await self.mw.app(self.scope, replay_body(self.body, receive), self.from_app)
        except Exception:
            if not self.done:
                await self.finish(500, [], error_body("internal server error"), "internal")
            raise
        if not self.done:
            message = "the application sent no complete response"
            await self.finish(500, [], error_body(message), "internal")

    async def _read_body(self, receive: Receive) -> bytes:
        """The request body (:func:`read_body`; a body that came whole in one message, the
        common case, is taken here)."""
        first = await receive()
        if first["type"] == "http.request" and not first.get("more_body", False):
            body: bytes = first.get("body", b"")
            if len(body) > self.mw.max_body:
                raise BodyTooLargeError
            return body
        return await read_body(receive, self.mw.max_body, first)

    def _read_headers(self) -> tuple[int, str, str] | None:
        """Take the headers the record needs; a refusal (status, message, kind) if any."""
        mw, user_raw, length = self.mw, None, None
        rid: bytes | None = None
        for name, value in self.scope["headers"]:
            if name == b"x-request-id":
                rid = value if rid is None else rid
            elif name == mw.user_header:
                user_raw = value
            elif name == b"user-agent":
                self.user_agent = value.decode("latin-1")
            elif name == b"referer":
                self.referer = value.decode("latin-1")
            elif name == b"content-length":
                length = value
        self.request_id = request_id(rid)
        self.scope["state"][REQUEST_ID_KEY] = self.request_id
        self.ids = ((b"x-request-id", self.request_id.encode("ascii")), mw.vsa_header)
        if user_raw:
            if len(user_raw) > limits.MAX_USER_ID_BYTES or _CONTROL.search(user_raw):
                header = mw.config.user_header
                message = f"{header}: longer than {limits.MAX_USER_ID_BYTES} bytes or not text"
                return 400, message, "bad_request"
            self.user = user_raw.decode("latin-1")
        if length is not None and (not length.isdigit() or int(length) > mw.max_body):
            return 413, self._too_large(), "too_large"
        return None

    def _too_large(self) -> str:
        return limits.too_large("request body", self.mw.max_body, "an inference request")

    async def from_app(self, message: Message) -> None:
        """The application's ``send``: hold the response until the record is written."""
        kind = message["type"]
        if kind == "http.response.start":
            self.start = message
        elif kind == "http.response.body":
            if self.done:
                return  # already answered (the application went on after a failure)
            chunk = message.get("body", b"")
            if chunk:
                self.parts.append(chunk)
            if message.get("more_body", False):
                return
            start, parts = self.start, self.parts
            if start is None:
                text = "the application sent a body before its response start"
                await self.finish(500, [], error_body(text), "internal")
                return
            body = parts[0] if len(parts) == 1 else b"".join(parts)
            await self.finish(start["status"], start.get("headers", ()), body, None, start)
        else:
            await self.send(message)

    async def finish(
        self,
        status: int,
        headers: Iterable[Header],
        body: bytes,
        kind: str | None,
        start: Message | None = None,
    ) -> None:
        """Write the record, then send this response (the application's if ``start``),
        or 503 if the record failed; then count it."""
        self.done = True
        mw, scope = self.mw, self.scope
        state = scope["state"]
        output = state.get(OUTPUT_KEY)
        latency_us = int((perf_counter() - self.started) * 1_000_000)
        logged = mw.write_log(self, status, len(body), output, latency_us)
        if logged is not True and logged is not False:
            logged = bool(await logged)
        if not logged:
            status, kind = 503, "log_write"
            message = "the request was not answered: its inference-log record could not be written"
            await send_response(self.send, 503, error_body(message), headers=self.ids)
        elif start is None:
            await send_response(self.send, status, body, headers=self.ids)
        else:
            start["headers"] = with_ids(headers, self.ids)
            await self.send(start)
            await self.send({"type": "http.response.body", "body": body})
        if status >= 400:
            kind = kind or state.get(ERROR_KIND_KEY) or error_kind(status)
        mw.metrics.observe_inference(
            getattr(scope.get("route"), "path", None) or "unmatched",
            scope["method"],
            status,
            perf_counter() - self.started,
            kind if status >= 400 else None,
            output if logged and status < 400 else None,
            logged,
        )

    def client(self) -> str:
        client = self.scope.get("client")
        return str(client[0]) if client else "-"

    def logged_path(self) -> str:
        """The request target as sent (path and query), for the record's request line."""
        scope = self.scope
        raw = scope.get("raw_path")
        path = raw.decode("latin-1") if raw else scope["path"]
        query: bytes = scope.get("query_string", b"")
        return f"{path}?{query.decode('latin-1')}" if query else path
