"""``mlspec-attest serve --max-connections --request-timeout`` in a real process: the
options reach the server (a half-sent request is closed, a connection beyond the limit is
answered 503 or refused, /ok answers again once the others go), and bad values are usage
errors before the gate runs."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .test_connections import GENEROUS, HALF_A_REQUEST, REFUSED, closed_by_server, ok_soon
from .test_serve_cmd import Setup, free_port


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


@contextlib.contextmanager
def serving(setup: Setup, *options: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    process = subprocess.Popen(setup.argv(port, *options), stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, process.kill)  # a server that never starts fails the test
    watchdog.start()
    try:
        assert process.stderr is not None
        said = [process.stderr.readline() for _ in range(6)]
        assert said[5] == f"serving iris on http://127.0.0.1:{port}\n", said
        yield "127.0.0.1", port
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=60)
        assert process.returncode == 0, rest
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_options_reach_the_server(setup: Setup) -> None:
    with serving(setup, "--max-connections", "4", "--request-timeout", "2") as (host, port):
        url = f"http://{host}:{port}"
        with socket.create_connection((host, port), timeout=GENEROUS) as slow:
            slow.sendall(HALF_A_REQUEST)
            assert closed_by_server(slow) == b""  # after two seconds
        holders = [socket.create_connection((host, port), timeout=GENEROUS) for _ in range(4)]
        try:
            with socket.create_connection((host, port), timeout=GENEROUS) as extra:
                assert closed_by_server(extra).startswith(REFUSED)
        finally:
            for sock in holders:
                sock.close()
        assert ok_soon(url)
        assert httpx.get(f"{url}/ok").status_code == 200


@pytest.mark.parametrize(
    ("option", "value"),
    [("--max-connections", "0"), ("--request-timeout", "0"), ("--request-timeout", "1e9")],
)
def test_bad_limits_are_usage_errors(setup: Setup, option: str, value: str) -> None:
    done = subprocess.run(
        setup.argv(free_port(), option, value), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert option in done.stderr
    assert "gate PASSED" not in done.stderr
