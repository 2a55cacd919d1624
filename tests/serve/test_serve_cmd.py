"""``mlspec-attest serve`` in a real process: the gate opens a signed scikit-learn package,
the server answers on 127.0.0.1, SIGTERM stops it (exit 0) and the signed inference log
it leaves passes the audit; a model the summary does not cover is never served."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from mlspec_attest.log.audit import verify_log
from mlspec_attest.log.checkpoint import default_origin
from mlspec_attest.serve.runner import bind
from mlspec_attest.signing.keys import KeyType, generate_key, load_public_key, write_key_pair

from .test_gate_support import (
    FEATURES,
    POLICY_DIGEST,
    iris_rows,
    make_model_dir,
    signed,
    summary_for,
    verifier,
    write_keys,
)


class Setup:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.model = make_model_dir(root / "iris")
        self.verifier_pub = write_keys(verifier(), root / "keys", "verifier")[1]
        self.server_key, self.server_pub = write_key_pair(
            generate_key(KeyType.ED25519), root / "server"
        )
        self.vsa = root / "iris.vsa.sigstore.json"
        fresh = datetime.now(UTC) - timedelta(hours=1)
        self.vsa.write_bytes(signed(summary_for(self.model, time_verified=fresh)))
        payload = json.loads(self.vsa.read_bytes())["dsseEnvelope"]["payload"]
        self.vsa_digest = hashlib.sha256(base64.b64decode(payload)).hexdigest()
        self.log_dir = root / "log"

    def argv(self, port: int, *extra: str) -> list[str]:
        return [
            sys.executable, "-m", "mlspec_attest", "serve",
            "--vsa", str(self.vsa), "--verifier-key", str(self.verifier_pub),
            "--model", str(self.model), "--policy-digest", POLICY_DIGEST, "--max-age", "7d",
            "--log-dir", str(self.log_dir), "--log-key", str(self.server_key),
            "--port", str(port), *extra,
        ]  # fmt: skip


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def free_port() -> int:
    sock = bind("127.0.0.1", 0)
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def test_serve_answers_stops_on_sigterm_and_leaves_an_audited_log(setup: Setup) -> None:
    port = free_port()
    process = subprocess.Popen(setup.argv(port), stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, process.kill)  # a server that never starts fails the test
    watchdog.start()
    try:
        assert process.stderr is not None
        said = [process.stderr.readline() for _ in range(6)]
        assert said[0] == "gate PASSED: iris 3 (pickle)\n", said
        assert said[2] == f"  vsa digest     sha256:{setup.vsa_digest}\n"
        assert said[5] == f"serving iris on http://127.0.0.1:{port}\n"
        url = f"http://127.0.0.1:{port}"
        rows = iris_rows()
        body = {"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP32", "data": rows}]}
        answer = httpx.post(f"{url}/v2/models/iris/infer", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-mlspec-vsa"] == f"sha256:{setup.vsa_digest}"
        output = answer.json()["outputs"][0]
        assert (output["datatype"], output["shape"], output["data"]) == ("INT64", [3], [0, 1, 2])
        v1 = httpx.post(
            f"{url}/v1/models/iris:predict",
            json={"instances": [dict(zip(FEATURES, rows[0], strict=True))]},
        )
        assert v1.json() == {"predictions": [0]}
        varz = httpx.get(f"{url}/varz").json()
        assert varz["binding"]["vsa_digest"] == f"sha256:{setup.vsa_digest}"
        assert varz["config"]["log_dir"] == str(setup.log_dir)
        assert "PRIVATE KEY" not in json.dumps(varz)
        assert httpx.get(f"{url}/ok").json()["ready"] is True
        os.kill(process.pid, signal.SIGTERM)
        _, rest = process.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    assert rest.rstrip().endswith("stopped; the inference log is closed")
    origin = default_origin("iris", setup.vsa_digest)
    audit = verify_log(setup.log_dir, load_public_key(setup.server_pub), origin=origin)
    assert audit.ok, audit.to_json()
    assert audit.records == audit.signed == 2


def test_a_model_the_summary_does_not_cover_is_never_served(setup: Setup) -> None:
    (setup.model / "model.pkl").write_bytes((setup.model / "model.pkl").read_bytes() + b"\0")
    port = free_port()
    done = subprocess.run(setup.argv(port), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "serving" not in done.stderr
    assert not setup.log_dir.exists()  # nothing was opened, nothing listened


def test_an_encrypted_log_key_needs_its_passphrase(setup: Setup) -> None:
    key, _ = write_key_pair(
        generate_key(KeyType.ED25519), setup.root / "locked", passphrase=b"s3cret"
    )
    argv = setup.argv(free_port())
    argv[argv.index("--log-key") + 1] = str(key)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    env = {**os.environ}
    env.pop("SERVE_PASS", None)
    missing = subprocess.run(
        [*argv, "--passphrase-env", "SERVE_PASS"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert missing.returncode == 2, missing.stderr
    assert "--passphrase-env SERVE_PASS: environment variable is not set" in missing.stderr


def test_a_port_in_use_is_exit_4(setup: Setup) -> None:
    taken = bind("127.0.0.1", 0)
    try:
        done = subprocess.run(
            setup.argv(taken.getsockname()[1]), capture_output=True, text=True, timeout=120
        )
    finally:
        taken.close()
    assert done.returncode == 4, done.stderr
    assert "cannot listen on 127.0.0.1:" in done.stderr
    assert not setup.log_dir.exists()  # the port is refused before the log is touched


def test_without_the_serve_extra_it_says_what_to_install(setup: Setup) -> None:
    """uvicorn missing (an import that fails): exit 4 naming the extra, before the gate runs."""
    code = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "from mlspec_attest.cli.main import main\n"
        "sys.argv = ['mlspec-attest', *sys.argv[1:]]\n"
        "main()\n"
    )
    argv = [sys.executable, "-c", code, *setup.argv(free_port())[3:]]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stderr
    assert done.stderr == (
        "error: serving a model needs uvicorn, which is not installed\n"
        "  fix: pip install 'mlspec-attest[serve]'\n"
    )
