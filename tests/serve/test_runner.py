"""Running servers: a port in use, graceful stops that close the log, SIGTERM in the
foreground (a real subprocess)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from mlspec_attest.errors import BackendError
from mlspec_attest.serve.app import build_app
from mlspec_attest.serve.runner import bind, start_server

from .server_fixtures import MemoryLog, served_model

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_port_in_use_is_a_backend_error() -> None:
    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        with pytest.raises(BackendError, match=f"cannot listen on 127.0.0.1:{port}: ") as info:
            start_server(build_app(served_model(), MemoryLog()), port=port)
        assert info.value.remedy == "choose another port, or stop what listens on this one"
    finally:
        taken.close()


def test_listening_socket_is_tcp_so_connections_are_not_delayed() -> None:
    """asyncio turns Nagle's algorithm off only on connections of a socket made with the
    protocol number TCP; with it on, a response in two writes waits ~40 ms for an ACK."""
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
    finally:
        sock.close()


def test_stop_closes_the_log_after_the_last_request() -> None:
    log = MemoryLog()
    with start_server(build_app(served_model(), log)) as server:
        assert httpx.get(f"{server.url}/ok").status_code == 200
        assert not log.closed
    assert log.closed
    assert not server.thread.is_alive()


def test_log_stays_open_when_asked() -> None:
    log = MemoryLog()
    with start_server(build_app(served_model(), log, close_log=False)):
        pass
    assert not log.closed


def test_an_app_that_fails_to_start_is_an_error() -> None:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("cannot open the feature store")
        yield

    with pytest.raises(BackendError) as info:
        start_server(Starlette(lifespan=lifespan))
    assert info.value.message == (
        "the server on 127.0.0.1:0 did not start: "
        "the application's startup failed (its error is in the server's log)"
    )


SERVE_SCRIPT = textwrap.dedent(
    """
    import gc
    import sys
    from pathlib import Path

    sys.path.insert(0, sys.argv[1])
    from tests.serve.server_fixtures import MemoryLog, served_model
    from mlspec_attest.serve.app import build_app
    from mlspec_attest.serve.runner import serve_forever

    marker = Path(sys.argv[2])

    class MarkedLog(MemoryLog):
        def close(self):
            marker.write_text(f"closed after {len(self.records)} records, {gc.get_freeze_count()} frozen")

    def started(url):
        print("serving on", url, flush=True)

    serve_forever(build_app(served_model(), MarkedLog()), host="127.0.0.1", port=int(sys.argv[3]),
                  on_started=started, freeze_heap=sys.argv[4] == "freeze")
    print("stopped cleanly")
    """
)


@pytest.mark.parametrize(
    ("stop", "freeze"), [(signal.SIGTERM, "freeze"), (signal.SIGINT, "no-freeze")]
)
def test_foreground_server_stops_gracefully_on_a_signal(
    tmp_path: Path, stop: signal.Signals, freeze: str
) -> None:
    """It serves, stops on the signal with exit 0 after closing the log, and (by
    default) froze the heap it started with: the model's, the libraries', the app's."""
    script = tmp_path / "serve.py"
    script.write_text(SERVE_SCRIPT)
    marker = tmp_path / "closed"
    probe = bind("127.0.0.1", 0)
    port = probe.getsockname()[1]
    probe.close()
    process = subprocess.Popen(
        [sys.executable, str(script), str(PROJECT_ROOT), str(marker), str(port), freeze],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, process.kill)  # a server that never starts fails the test
    watchdog.start()
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == f"serving on http://127.0.0.1:{port}\n"
        body = {"instances": [[0.0] * 10]}
        url = f"http://127.0.0.1:{port}/v1/models/diabetes:predict"
        assert httpx.post(url, json=body).status_code == 200
        os.kill(process.pid, stop)
        out, _ = process.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert out.strip() == "stopped cleanly"
    closed, frozen = marker.read_text().split(", ")
    assert closed == "closed after 1 records"
    count = int(frozen.removesuffix(" frozen"))
    assert count > 10_000 if freeze == "freeze" else count == 0
