"""Running an ASGI application on uvicorn: in a background thread (tests, pipeline
steps) or in the foreground until SIGTERM or Ctrl-C (the ``serve`` command).

The listening socket is bound before uvicorn starts, so port 0 (any free port) is
resolved at once and a port in use is a clear :class:`~mlspec_attest.errors.BackendError`.
A background server is ready when uvicorn says so (``Server.started``); stopping asks
uvicorn to shut down gracefully (``should_exit``): it stops accepting, lets the
requests in flight finish, then runs the application's lifespan shutdown, where the
reference server closes its inference log (its final checkpoint).

Every server keeps :class:`~mlspec_attest.serve.connections.ConnectionLimits`: at most
so many open connections, and a deadline for each request to arrive
(:mod:`mlspec_attest.serve.connections`); ``limits=`` sets them, else the
defaults.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Final

import uvicorn
from starlette.types import ASGIApp

from mlspec_attest.errors import BackendError
from mlspec_attest.serve.connections import ConnectionLimits, guarded_protocol

#: How often a starting server is checked (its thread is joined for this long).
_POLL_SECONDS: Final = 0.005
_STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
#: Connections waiting to be accepted (uvicorn's default).
_BACKLOG: Final = 2048


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free port).

    Made with the protocol number TCP (not 0, as ``socket.create_server`` does): asyncio
    turns Nagle's algorithm off only on connections of such a socket, and with it on, a
    response written in two parts waits for the client's delayed ACK (some 40 ms).
    """
    sock: socket.socket | None = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
        return sock
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise BackendError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            remedy="choose another port, or stop what listens on this one",
        ) from exc


def _config(
    app: ASGIApp, log_level: str, graceful_timeout: int, limits: ConnectionLimits | None
) -> uvicorn.Config:
    resolved = (limits or ConnectionLimits()).resolved()
    return uvicorn.Config(
        app,
        log_config=None,  # the embedding program configures logging
        log_level=log_level,
        access_log=False,  # the inference log is the access log
        server_header=False,
        timeout_graceful_shutdown=graceful_timeout,
        http=guarded_protocol(resolved),  # closes connections beyond the limit, or too slow
        # 503 once more requests than that are in progress (connections never reach it)
        limit_concurrency=resolved.max_connections + 1,
    )


def _url(sock: socket.socket) -> tuple[str, int, str]:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return host, port, f"http://{shown}:{port}"


class RunningServer:
    """A server running in a background thread; a context manager that stops it."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, sock: socket.socket):
        self.server = server
        self.thread = thread
        self.host, self.port, self.url = _url(sock)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop gracefully (requests in flight finish, lifespan shutdown runs) and wait."""
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_server(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    graceful_timeout: int = 30,
    startup_timeout: float = 60.0,
    limits: ConnectionLimits | None = None,
) -> RunningServer:
    """Serve ``app`` on ``host:port`` in a background thread; return once it is serving."""
    sock = bind(host, port)
    server = uvicorn.Server(_config(app, log_level, graceful_timeout, limits))
    failures: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # uvicorn exits (SystemExit) when startup fails
            failures.append(exc)

    thread = threading.Thread(target=run, name=f"mlspec-serve:{sock.getsockname()[1]}")
    thread.daemon = True
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        thread.join(_POLL_SECONDS)
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(startup_timeout)
            sock.close()
            why = _why(failures[0]) if failures else "it did not start in time"
            raise BackendError(f"the server on {host}:{port} did not start: {why}")
    return RunningServer(server, thread, sock)


class _ForegroundServer(uvicorn.Server):
    """uvicorn, except that a graceful stop on SIGTERM or SIGINT returns normally, that
    it says when it serves, and that it can freeze the heap it starts with.

    uvicorn re-raises the signal once it has stopped, which would end the process by
    that signal; a server asked to stop that stopped cleanly has succeeded (exit 0).
    """

    def __init__(
        self,
        config: uvicorn.Config,
        url: str,
        on_started: Callable[[str], None] | None,
        freeze_heap: bool,
    ) -> None:
        super().__init__(config)
        self.url = url
        self.on_started = on_started
        self.freeze_heap = freeze_heap

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.freeze_heap:
            freeze_startup_heap()
        if self.started and self.on_started is not None:
            self.on_started(self.url)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def freeze_startup_heap() -> None:
    """Move every object made so far (the model, the libraries, the application) out of
    the cyclic garbage collector's reach (``gc.freeze`` after a collection): they live as
    long as the server, and otherwise every full collection walks them again. Under load
    the reference server of a scikit-learn model spent about 8.5 % of its CPU in the
    collector, 2 % once frozen (perf, docs/benchmarks.md). Objects made later are
    collected as before."""
    gc.collect()
    gc.freeze()


def serve_forever(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    log_level: str = "info",
    graceful_timeout: int = 30,
    on_started: Callable[[str], None] | None = None,
    sock: socket.socket | None = None,
    freeze_heap: bool = True,
    limits: ConnectionLimits | None = None,
) -> None:
    """Serve ``app`` in the foreground until SIGTERM or Ctrl-C, then stop gracefully.

    ``on_started`` is called with the server's URL once it is serving (the CLI says so).
    ``sock``: a socket :func:`bind` made already (else ``host:port`` is bound here).
    ``freeze_heap``: once started, :func:`freeze_startup_heap` (this process serves from
    now on; a process that will drop much of what it holds must pass False).
    ``limits``: see the module doc.
    """
    sock = sock if sock is not None else bind(host, port)
    config = _config(app, log_level, graceful_timeout, limits)
    server = _ForegroundServer(config, _url(sock)[2], on_started, freeze_heap)
    try:
        server.run(sockets=[sock])
    except SystemExit as exc:  # uvicorn's way to say the application did not start
        raise BackendError(f"the server on {host}:{port} did not start: {_why(exc)}") from exc


def _why(failure: BaseException) -> str:
    if isinstance(failure, SystemExit):  # uvicorn logged the application's error
        return "the application's startup failed (its error is in the server's log)"
    return f"{type(failure).__name__}: {failure}"
