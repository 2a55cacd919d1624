"""Connection limits of a real server on 127.0.0.1 (serve/connections.py): a client that
does not finish its request in time is closed, one beyond the limit is answered 503 or
refused, and ordinary clients (keep-alive included) never notice either bound.

Real sockets against the real uvicorn server. The only time bounds asserted are generous
ones ("closed within 30 s" for a deadline of half a second); nothing is timed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mlspec_attest.errors import UsageError
from mlspec_attest.serve.app import build_app
from mlspec_attest.serve.connections import (
    DEFAULT_REQUEST_TIMEOUT,
    MAX_DEFAULT_CONNECTIONS,
    ConnectionLimits,
    ResolvedLimits,
)
from mlspec_attest.serve.runner import RunningServer, start_server

from .server_fixtures import MemoryLog, served_model

#: How long a test waits for what the server should do at once or after a short deadline.
GENEROUS = 30.0
HALF_A_REQUEST = b"POST /v2/models/diabetes/infer HTTP/1.1\r\nHost: x\r\n"  # never finished
REFUSED = b"HTTP/1.1 503 Service Unavailable\r\n"


@contextlib.contextmanager
def reference_server(
    limits: ConnectionLimits, log: MemoryLog | None = None
) -> Iterator[RunningServer]:
    with start_server(build_app(served_model(), log or MemoryLog()), limits=limits) as server:
        yield server


def connect(server: RunningServer, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=GENEROUS)
    if data:
        sock.sendall(data)
    return sock


def closed_by_server(sock: socket.socket) -> bytes:
    """What the server sent before it closed ``sock`` (fails if it keeps it open)."""
    received = b""
    deadline = time.monotonic() + GENEROUS
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        except TimeoutError:
            break
        if not chunk:
            return received
        received += chunk
    pytest.fail(f"the server kept the connection open for {GENEROUS} s")


def exchange(sock: socket.socket, path: str = "/ok") -> bytes:
    """One keep-alive GET on ``sock``: the response's status line."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed a connection that was in time"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(
        int(v) for k, _, v in (ln.partition(b":") for ln in lines) if k.lower() == b"content-length"
    )
    while len(body) < length:
        body += sock.recv(65536)
    return lines[0]


# ------------------------------------------------------------------ the request deadline
def test_a_half_sent_request_is_closed_after_the_deadline() -> None:
    log = MemoryLog()
    with reference_server(ConnectionLimits(50, request_timeout=0.5), log) as server:
        half_line = connect(server, HALF_A_REQUEST)
        silent = connect(server)  # opens and never says anything
        body = b'{"inputs": '  # a head that promises 100 bytes of body, and 11 of them
        head = b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        short_body = connect(server, HALF_A_REQUEST + head + body)
        for sock in (half_line, silent, short_body):
            with sock:
                assert closed_by_server(sock) == b""  # closed silently, nothing answered
        assert log.records == []  # a request that never arrived is not an inference
        assert httpx.get(f"{server.url}/ok").status_code == 200


def test_after_a_response_the_next_request_has_the_same_deadline() -> None:
    with (
        reference_server(ConnectionLimits(50, request_timeout=0.5)) as server,
        connect(server) as sock,
    ):
        assert exchange(sock) == b"HTTP/1.1 200 OK"
        sock.sendall(b"GET /ok HTTP/1.1\r\n")  # the next request, half sent
        assert closed_by_server(sock) == b""


def test_a_keep_alive_client_in_time_keeps_its_connection() -> None:
    """Twelve requests on one connection over more than twice the deadline: the deadline
    starts again with each response."""
    with (
        reference_server(ConnectionLimits(50, request_timeout=1.0)) as server,
        connect(server) as sock,
    ):
        for _ in range(12):
            assert exchange(sock) == b"HTTP/1.1 200 OK"
            time.sleep(0.2)


def test_time_spent_answering_does_not_count() -> None:
    async def slow(request: Request) -> PlainTextResponse:
        await asyncio.sleep(1.5)  # three deadlines
        return PlainTextResponse("done", headers={"content-length": "4"})

    app = Starlette(routes=[Route("/slow", slow)])
    limits = ConnectionLimits(50, request_timeout=0.5)
    with start_server(app, limits=limits) as server, connect(server) as sock:
        assert exchange(sock, "/slow") == b"HTTP/1.1 200 OK"
        assert exchange(sock, "/slow") == b"HTTP/1.1 200 OK"  # the same connection, again


# ------------------------------------------------------------------ the connection limit
def test_connections_beyond_the_limit_are_refused_and_the_server_recovers() -> None:
    limits = ConnectionLimits(max_connections=8, request_timeout=GENEROUS)
    with reference_server(limits) as server:
        client = connect(server)  # an ordinary keep-alive client, then 7 stalled ones
        holders = [client, *(connect(server, HALF_A_REQUEST) for _ in range(7))]
        try:
            assert exchange(client) == b"HTTP/1.1 200 OK"
            # Accepted after the holders (the listen queue is first in, first out): over the limit.
            for _ in range(5):
                with connect(server) as extra:  # answered at once: it has sent nothing
                    assert closed_by_server(extra).startswith(REFUSED)
            with contextlib.suppress(httpx.TransportError):  # 503, or the connection reset
                assert httpx.get(f"{server.url}/ok").status_code == 503
            assert exchange(client) == b"HTTP/1.1 200 OK"  # those it holds are served
        finally:
            for sock in holders:
                sock.close()
        assert ok_soon(server.url)


def ok_soon(url: str) -> bool:
    """/ok answers 200 from a fresh connection once the server has seen the others go."""
    deadline = time.monotonic() + GENEROUS
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/ok").status_code == 200:
                return True
        time.sleep(0.05)
    return False


def test_the_default_limit_is_half_the_open_file_limit() -> None:
    probe = (
        "import resource; from mlspec_attest.serve.connections import default_max_connections as d\n"
        "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)); print(d())\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "128"
    resolved = ConnectionLimits().resolved().max_connections
    assert resolved is not None and 1 <= resolved <= MAX_DEFAULT_CONNECTIONS
    assert ConnectionLimits(7).resolved() == ResolvedLimits(7, DEFAULT_REQUEST_TIMEOUT)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_connections": 0}, "max_connections must be between 1 and 1000000: 0"),
        ({"max_connections": True}, "max_connections must be between 1 and 1000000: True"),
        ({"request_timeout": 0.0}, "request_timeout must be more than 0 and at most 3600"),
        ({"request_timeout": float("nan")}, "request_timeout must be more than 0"),
        ({"request_timeout": 86400.0}, "request_timeout must be more than 0 and at most 3600"),
    ],
)
def test_limits_are_checked(fields: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        ConnectionLimits(**fields)  # type: ignore[arg-type]


def test_a_server_keeps_the_limits_it_is_started_with() -> None:
    """How `serve` passes its options (through serve_model, to the runner)."""
    limits = ConnectionLimits(50, request_timeout=0.5)
    server = start_server(build_app(served_model(), MemoryLog()), limits=limits)
    with server, connect(server, HALF_A_REQUEST) as sock:
        assert closed_by_server(sock) == b""
