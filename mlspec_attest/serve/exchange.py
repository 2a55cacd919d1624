"""One inference request as the middleware handles it (:class:`Exchange`): its headers and
body read first, the application's response held, its record written, then the answer sent
and counted. :class:`~mlspec_attest.serve.middleware.MlspecMiddleware` is its host.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Iterable
from time import perf_counter
from typing import Final, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlspec_attest.formats import limits
from mlspec_attest.serve.asgi import (
    BodyTooLargeError,
    ClientDisconnectedError,
    Header,
    error_body,
    header_text,
    read_body,
    replay_body,
    request_id,
    send_response,
    with_ids,
)
from mlspec_attest.serve.config import ServeConfig
from mlspec_attest.serve.context import ERROR_KIND_KEY, LOGGED_KEY, OUTPUT_KEY, REQUEST_ID_KEY
from mlspec_attest.serve.metrics import ServeMetrics, error_kind

_CONTROL: Final = re.compile(rb"[\x00-\x1f\x7f]")


class Host(Protocol):
    """What an exchange needs of the middleware."""

    app: ASGIApp
    metrics: ServeMetrics
    config: ServeConfig
    max_body: int
    user_header: bytes
    vsa_header: Header

    def write_log(
        self, exchange: Exchange, status: int, bytes_sent: int, output: object, latency_us: int
    ) -> Awaitable[object] | bool: ...


class Exchange:
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

    def __init__(self, mw: Host, scope: Scope, send: Send, started: float) -> None:
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
        try:  # the whole body in its one message is the common case: no read_body frame
            first = await receive()
            if first["type"] == "http.request" and not first.get("more_body", False):
                self.body = first.get("body", b"")
                if len(self.body) > self.mw.max_body:
                    raise BodyTooLargeError
            else:
                self.body = await read_body(receive, self.mw.max_body, first)
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

    def _read_headers(self) -> tuple[int, str, str] | None:
        """Take the headers the record needs; a refusal (status, message, kind) if any.
        The request id or user id given twice is refused: which copy a proxy set and
        which the client sent cannot be told apart, so neither may name the request."""
        mw, user_raw, length = self.mw, None, None
        rid: bytes | None = None
        twice: bytes | None = None
        for name, value in self.scope["headers"]:
            if name == b"x-request-id":
                twice, rid = (name if rid is not None else twice), value
            elif name == mw.user_header:
                twice, user_raw = (name if user_raw is not None else twice), value
            elif name == b"user-agent":
                self.user_agent = header_text(value)
            elif name == b"referer":
                self.referer = header_text(value)
            elif name == b"content-length":
                length = value
        self.request_id = request_id(None if twice == b"x-request-id" else rid)
        state = self.scope["state"]
        state[REQUEST_ID_KEY], state[LOGGED_KEY] = self.request_id, True
        self.ids = ((b"x-request-id", self.request_id.encode("ascii")), mw.vsa_header)
        if twice is not None:
            return 400, f"{twice.decode('ascii')}: given more than once", "bad_request"
        if user_raw:
            if len(user_raw) > limits.MAX_USER_ID_BYTES or _CONTROL.search(user_raw):
                header = mw.config.user_header
                message = f"{header}: longer than {limits.MAX_USER_ID_BYTES} bytes or not text"
                return 400, message, "bad_request"
            self.user = header_text(user_raw)
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
        path = header_text(raw) if raw else scope["path"]
        query: bytes = scope.get("query_string", b"")
        return f"{path}?{header_text(query)}" if query else path
