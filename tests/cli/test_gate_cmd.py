"""``mlspec-attest gate``: exit 0/1/2/3/4, one JSON document with --json, the verified copy,
and ``-- CMD`` executed only when the gate passed (run in a real subprocess).

Summaries are signed with real keys; the gate's clock is the system's, so summaries here
are stamped relative to it (an hour old) and ages compared with days of margin.
"""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlspec_attest.formats.vsa import Level, Result

from ..serve.test_gate_support import (
    POLICY_DIGEST,
    RESOURCE_URI,
    RUN_ID,
    make_model_dir,
    signed,
    stranger,
    subject_digest,
    summary_for,
    verifier,
    write_keys,
)
from .conftest import Cli

PRINT_ENV = (
    "import os; print(' '.join(os.environ[k] for k in ('MLSPEC_GATE_MODEL_DIR', "
    "'MLSPEC_GATE_MODEL_DIGEST', 'MLSPEC_GATE_VSA_DIGEST', 'MLSPEC_GATE_POLICY_DIGEST', "
    "'MLSPEC_GATE_RUN_ID')))"
)


class Setup:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.model = make_model_dir(root / "iris")
        self.pub = write_keys(verifier(), root / "keys", "verifier")[1]
        self.vsa = root / "iris.vsa.sigstore.json"
        self.write()

    def write(self, **changes: object) -> None:
        fresh = {"time_verified": datetime.now(UTC) - timedelta(hours=1)}
        self.vsa.write_bytes(signed(summary_for(self.model, **{**fresh, **changes})))

    def args(self, *extra: str | Path, json_out: bool = True) -> list[str | Path]:
        base: list[str | Path] = ["gate", "--vsa", self.vsa, "--verifier-key", self.pub]
        base += ["--model", self.model, "--max-age", "7d", "--policy-digest", POLICY_DIGEST]
        return [*base, *(["--json"] if json_out else []), *extra]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_a_covered_model_passes_with_one_json_document(cli: Cli, setup: Setup) -> None:
    result = cli(*setup.args("--resource-uri", RESOURCE_URI, "--entry", "model.pkl"))
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["schemaVersion"] == "https://mlspec-attest.dev/gate/v1"
    assert (doc["result"], doc["exitCode"], doc["reasons"]) == ("PASSED", 0, [])
    assert doc["vsa"]["signer"] == verifier().public_key.keyid
    assert doc["summary"]["policyDigest"] == POLICY_DIGEST
    assert doc["summary"]["runId"] == RUN_ID
    assert 3590 <= doc["summary"]["ageSeconds"] < 86400
    digest = subject_digest(setup.model)
    assert doc["model"]["digest"] == digest["sha256"]
    assert doc["model"]["manifestDigest"] == digest["manifest-sha256"]
    assert (doc["model"]["files"], doc["model"]["entry"], doc["model"]["copy"]) == (
        3,
        "model.pkl",
        None,
    )


def test_the_text_report_says_what_was_checked(cli: Cli, setup: Setup) -> None:
    result = cli(*setup.args(json_out=False))
    assert result.code == 0, result.err
    assert result.out.startswith(f"gate PASSED: {setup.model} is what the verification summary")
    for label in ("vsa digest", "policy digest", "model digest", "run id", "verified"):
        assert f"  {label}" in result.out
    assert f"sha256:{POLICY_DIGEST}" in result.out and RUN_ID in result.out
    assert "1h ago" in result.out


def test_a_failed_summary_is_denied_with_its_reasons(cli: Cli, setup: Setup) -> None:
    setup.write(result=Result.FAILED, levels=(Level.FAILED.value,))
    result = cli(*setup.args())
    assert result.code == 1
    doc = result.json()
    assert (doc["result"], doc["exitCode"]) == ("DENIED", 1)
    [reason] = doc["reasons"]
    assert reason["check"] == "verification-result"
    assert reason["message"].startswith("summary says FAILED")
    assert "gate DENIED" in result.err and "summary says FAILED" in result.err
    assert result.clean


def test_too_old_and_wrong_resource_are_both_denied(cli: Cli, setup: Setup) -> None:
    setup.write(time_verified=datetime.now(UTC) - timedelta(days=30))
    result = cli(*setup.args("--resource-uri", "https://other.example/iris", json_out=False))
    assert result.code == 1
    assert "- resource-uri: the summary is for another deployment" in result.err
    assert "- time-verified: the summary is 30d" in result.err
    assert "fix:      verify the run again, or allow an older summary (--max-age)" in result.err


def test_an_untrusted_signer_is_denied(cli: Cli, setup: Setup) -> None:
    setup.vsa.write_bytes(
        signed(summary_for(setup.model, time_verified=datetime.now(UTC)), stranger())
    )
    result = cli(*setup.args())
    assert result.code == 1
    assert [r["check"] for r in result.json()["reasons"]] == ["signature"]


def test_a_swapped_model_file_is_denied(cli: Cli, setup: Setup) -> None:
    data = bytearray((setup.model / "model.pkl").read_bytes())
    data[-2] ^= 0xFF
    (setup.model / "model.pkl").write_bytes(bytes(data))
    result = cli(*setup.args())
    assert result.code == 1
    [reason] = result.json()["reasons"]
    assert reason["check"] == "model-digest"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{oops", "not valid JSON"),
        (b"[" * 65 + b"]" * 65, "nested deeper than 64 levels"),
        (
            b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}',
            "carries no DSSE envelope",
        ),
    ],
)
def test_a_malformed_summary_is_bad_input(
    cli: Cli, setup: Setup, content: bytes, message: str
) -> None:
    setup.vsa.write_bytes(content)
    result = cli(*setup.args())
    assert result.code == 3
    doc = result.json()
    assert (doc["result"], doc["exitCode"], doc["error"]["kind"]) == ("ERROR", 3, "bad-input")
    assert message in doc["error"]["message"]
    assert result.clean


def test_an_oversize_summary_is_refused_unread(cli: Cli, setup: Setup) -> None:
    with setup.vsa.open("wb") as f:
        f.truncate(48 * 1024 * 1024 + 1)
    result = cli(*setup.args(json_out=False))
    assert result.code == 3
    assert "larger than 48 MiB, the limit for a Sigstore bundle" in result.err


def test_no_trust_at_all_is_exit_4(cli: Cli, setup: Setup) -> None:
    result = cli("gate", "--vsa", setup.vsa, "--model", setup.model, "--json")
    assert result.code == 4
    doc = result.json()
    assert doc["error"]["kind"] == "backend"
    assert (
        doc["error"]["message"]
        == "no verifier is trusted: the gate accepts no verification summary"
    )
    assert doc["error"]["remedy"] == (
        "pass --verifier-key PUB, or --verifier-identity ID with --verifier-issuer URL "
        "and --trusted-root FILE or --trust-config FILE"
    )


def test_usage_errors_are_exit_2(cli: Cli, setup: Setup) -> None:
    assert cli(*setup.args("--max-age", "soon")).code == 2
    result = cli(*setup.args("--verifier-identity", "ci@example.com", json_out=False))
    assert result.code == 2
    assert "--verifier-identity and --verifier-issuer go together" in result.err
    result = cli(*setup.args("--entry", "weights.onnx", json_out=False))
    assert result.code == 2
    assert "--entry 'weights.onnx' is not a file of the verified model" in result.err


@pytest.mark.parametrize(
    "age", ["1000000000d", "99999999999999999999w", "9" * 5000 + "s", "36501d", "\u0663d", "1h1h"]
)
def test_a_max_age_too_long_or_not_in_ascii_digits_is_a_usage_error(
    cli: Cli, setup: Setup, age: str
) -> None:
    result = cli(*setup.args("--max-age", age, json_out=False))
    assert result.code == 2, result.err
    assert "--max-age" in result.err


def test_copy_to_materializes_the_verified_files(cli: Cli, setup: Setup) -> None:
    target = setup.root / "verified-model"
    result = cli(*setup.args("--copy-to", target))
    assert result.code == 0, result.err
    assert result.json()["model"]["copy"] == str(target)
    for name in ("model.pkl", "model-card.json", "docs/README.md"):
        assert (target / name).read_bytes() == (setup.model / name).read_bytes()
        assert stat.S_IMODE((target / name).stat().st_mode) == 0o400
    assert stat.S_IMODE(target.stat().st_mode) == 0o500
    for folder in (target, target / "docs"):
        folder.chmod(0o700)


# ------------------------------------------------------------------ exec, in a real process
def run_gate(setup: Setup, *args: str | Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "mlspec_attest", *map(str, setup.args(*args, json_out=False))]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_the_server_command_runs_with_the_gate_environment(setup: Setup) -> None:
    target = setup.root / "copy"
    done = run_gate(setup, "--copy-to", target, "--", sys.executable, "-c", PRINT_ENV)
    assert done.returncode == 0, done.stderr
    payload = json.loads(setup.vsa.read_bytes())["dsseEnvelope"]["payload"]
    vsa_digest = hashlib.sha256(base64.b64decode(payload)).hexdigest()
    expected = [
        str(target.resolve()),
        subject_digest(setup.model)["sha256"],
        vsa_digest,
        POLICY_DIGEST,
        RUN_ID,
    ]
    assert done.stdout.split() == expected
    assert "gate PASSED" in done.stderr  # the report goes to stderr: stdout is the server's
    for folder in (target, target / "docs"):
        folder.chmod(0o700)


def test_without_a_copy_the_model_dir_is_the_original(setup: Setup) -> None:
    done = run_gate(setup, "--", sys.executable, "-c", PRINT_ENV)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == str(setup.model.resolve())


def test_on_denial_the_command_does_not_run(setup: Setup) -> None:
    (setup.model / "extra.bin").write_bytes(b"\x00")
    marker = setup.root / "server-started"
    done = run_gate(setup, "--", sys.executable, "-c", f"open({str(marker)!r}, 'w').close()")
    assert done.returncode == 1
    assert "gate DENIED" in done.stderr and "model-digest" in done.stderr
    assert not marker.exists()
    assert done.stdout == ""


def test_a_missing_command_is_a_usage_error(setup: Setup) -> None:
    done = run_gate(setup, "--", str(setup.root / "no-such-server"))
    assert done.returncode == 2
    assert "cannot run the server command" in done.stderr
