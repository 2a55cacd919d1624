"""Running `mlspec-attest serve` and talking to it over HTTP (stdlib only), for stages 11-13.

The deploy gate's verdict is ``gate/model.vsa.json``: a signed SLSA verification summary
(``verify --vsa-out``) whose model subject is the digest of ``dist/model``. The server is
started only through it, with the verifier's public key as the only trust.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from common import REPO, policy_digest

VSA = Path("gate/model.vsa.json")
DIST = Path("dist/model")
LOG_DIR = Path("deploy/inference-log")
MODEL_NAME = "diabetes-progression"
RESOURCE_URI = "https://models.example.org/diabetes-progression"
"""Where this deployment serves the model from: the summary's resourceUri (verify --resource-uri)."""
START_TIMEOUT_S = 60


def keys_dir() -> Path:
    return Path(os.environ.get("MLSPEC_DEMO_KEYS", REPO / "keys-example"))


def gate_args(vsa: Path = VSA, model: Path = DIST) -> list[str]:
    """The gate's trust and expectations: the verifier key, this policy, at most an hour old."""
    return [
        "--vsa", str(vsa), "--verifier-key", str(keys_dir() / "verifier.pub"),
        "--model", str(model), "--policy-digest", policy_digest(), "--max-age", "1h",
        "--resource-uri", RESOURCE_URI,
    ]  # fmt: skip


def mlspec_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlspec_attest", *args]


class Server:
    """``mlspec-attest serve`` in a child process on a free loopback port."""

    def __init__(self, *extra: str) -> None:
        argv = mlspec_argv(
            "serve", *gate_args(), "--log-dir", str(LOG_DIR),
            "--log-key", str(keys_dir() / "server.key"), "--log-inputs", "--port", "0", *extra,
        )  # fmt: skip
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.url = self._wait_for_url()
        threading.Thread(target=self._drain, daemon=True).start()

    def _wait_for_url(self) -> str:
        assert self.proc.stderr is not None
        timer = threading.Timer(START_TIMEOUT_S, self.proc.kill)
        timer.start()
        try:
            for line in self.proc.stderr:
                self.lines.append(line.rstrip("\n"))
                if line.startswith("serving ") and " on http" in line:
                    return line.rsplit(" on ", 1)[1].strip()
        finally:
            timer.cancel()
        self.proc.wait()
        raise SystemExit(
            f"the server did not start (exit {self.proc.returncode}):\n" + "\n".join(self.lines)
        )

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> int:
        """SIGTERM: the server answers what it has, signs a last checkpoint and exits 0."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


def request(
    url: str, doc: Any | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    """(status, parsed JSON body or text, response headers)."""
    data = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request(
        url, data=data, headers=headers or {}, method="POST" if data else "GET"
    )
    if data:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            status, body, got = response.status, response.read(), _lower(response.headers)
    except urllib.error.HTTPError as exc:
        status, body, got = exc.code, exc.read(), _lower(exc.headers)
    text = body.decode()
    try:
        return status, json.loads(text), got
    except json.JSONDecodeError:
        return status, text, got


def infer_v2(
    url: str, rows: list[list[float]], request_id: str, user: str
) -> tuple[int, Any, dict[str, str]]:
    """One Open Inference Protocol v2 request with ``rows`` as a [n, features] FP64 tensor."""
    body = {
        "id": request_id,
        "inputs": [
            {
                "name": "features",
                "shape": [len(rows), len(rows[0])],
                "datatype": "FP64",
                "data": rows,
            }
        ],
    }
    headers = {
        "X-Request-Id": request_id,
        "X-User-Id": user,
        "User-Agent": "mlspec-demo-client/1.0",
    }
    return request(f"{url}/v2/models/{MODEL_NAME}/infer", body, headers)


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}
