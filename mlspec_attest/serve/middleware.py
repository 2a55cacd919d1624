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
* for an inference request (``is_inference(method, path)``, a pure function whose
  answers are remembered for up to 4096 pairs; by default a POST to the
  Open Inference Protocol's ``/v2/models/{name}[/versions/{v}]/infer`` or to v1's
  ``/v1/models/{name}:predict``) reads the body first, within its size limit (413
  beyond, before reading it all when Content-Length says so), then holds the
  application's whole response until :meth:`RequestLog.append` has returned. If the
  append raises, the client gets 503 instead, ``/ok`` turns not ready naming the
  failure and ``mlspec_log_failures_total`` counts it: a request is never answered
  without its record. It marks such a request (:func:`is_logged`); an application
  predicts only for a marked one, so a path its router serves but ``is_inference``
  does not take is refused, not answered unlogged (the reference server does so);
* refuses (400) a request whose path holds a control character, before any application
  sees it.

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
from mlspec_attest.log.prepare import ROW_KEYS, RequestRow
from mlspec_attest.serve.asgi import (
    Header,
    error_body,
    find_header,
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
    is_logged,
    request_id_of,
    set_error_kind,
    set_output,
)
from mlspec_attest.serve.endpoints import STATUS_PATHS, ReadinessCheck, StatusEndpoints
from mlspec_attest.serve.exchange import Exchange
from mlspec_attest.serve.metrics import ServeMetrics, error_kind, sha256_ref
from mlspec_attest.serve.model import ServedModel

#: The fault ``/ok`` names while the last inference-log write failed.
LOG_FAULT: Final = "inference-log"

#: An inference path's end: whatever comes before it (a mount's prefix, a root path) is
#: the application's, so a request its router serves as an inference is one here too.
_INFERENCE_PATH: Final = re.compile(
    r"(?:/v2/models/[^/]+(?:/versions/[^/]+)?/infer|/v1/models/[^/]+:predict)\Z"
)
#: A control character in a (decoded) path: no route of any application should see one.
#: Starlette's route patterns end in ``$``, which matches before a final ``\n``: such a
#: path reached the inference route while ``is_inference`` said no, and was answered
#: unlogged; every such path is refused (400) before any application sees it.
_CONTROL_TEXT: Final = re.compile(r"[\x00-\x1f\x7f]")
#: What the middleware does with a request: pass it on, take it as an inference, refuse it.
_PASS, _INFER, _REFUSE = 0, 1, 2
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
    "is_logged",
    "request_id_of",
    "set_error_kind",
    "set_output",
]


def is_inference_request(method: str, path: str) -> bool:
    """Whether this is a POST to a path ending in an Open Inference Protocol v2 infer or a
    v1 predict path (below any prefix: a mounted application's routes match there)."""
    return method == "POST" and _INFERENCE_PATH.search(path) is not None


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
        record = getattr(log, "append_row", None)  # one tuple: no keywords, no map
        self._record: Callable[[RequestRow], object] = (
            record
            if callable(record)
            else lambda row: log.append(**dict(zip(ROW_KEYS, row, strict=True)))
        )
        self.endpoints = endpoints
        self.metrics: ServeMetrics = endpoints.metrics
        self.metrics.set_model(served)
        self.config = endpoints.config or config or ServeConfig()
        self.is_inference = is_inference
        self._decided: dict[tuple[str, str], int] = {}
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
        decided = self._decide(scope["method"], path)
        if decided == _INFER:
            await Exchange(self, scope, send, started).run(receive)
            return
        rid = request_id(find_header(scope["headers"], b"x-request-id"))
        state[REQUEST_ID_KEY] = rid
        ids = ((b"x-request-id", rid.encode("ascii")), self.vsa_header)
        if decided == _REFUSE:
            message = "the request path holds a control character (CR, LF, NUL, ...)"
            await send_response(send, 400, error_body(message), headers=ids)
            self.count(scope, 400, started)  # no route matched: counted as "unmatched"
            return
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

    def _decide(self, method: str, path: str) -> int:
        """Refuse a path with a control character, else ``is_inference``; remembered for
        the paths a server sees most (a bounded map)."""
        key = (method, path)
        decided = self._decided.get(key)
        if decided is None:
            if _CONTROL_TEXT.search(path):
                decided = _REFUSE
            else:
                decided = _INFER if self.is_inference(method, path) else _PASS
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
        self, exchange: Exchange, status: int, bytes_sent: int, output: object, latency_us: int
    ) -> Awaitable[object] | bool:
        """Append the exchange's record: True once written, False (the fault recorded) if
        it failed, or an awaitable of either when the log hands back one to await (a
        writer process's acknowledgement). Not a coroutine: a log that writes at once
        costs no coroutine."""
        scope = exchange.scope
        served, binding = self.served, self.served.binding
        try:
            written = self._record(
                (
                    exchange.request_id,
                    exchange.client(),
                    exchange.user,
                    scope["method"],
                    exchange.logged_path(),
                    "HTTP/" + scope.get("http_version", "1.1"),
                    status,
                    bytes_sent,
                    exchange.referer,
                    exchange.user_agent,
                    served.name,
                    served.version,
                    binding.model_digest,
                    binding.vsa_digest,
                    exchange.body,
                    output,
                    latency_us,
                )  # fmt: skip  (the order of ROW_KEYS)
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
