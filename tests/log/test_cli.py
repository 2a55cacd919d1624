"""``mlspec-attest log verify|prove|trace``: exit codes, ``--json``, and proofs that check."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from mlspec_attest.cli.main import cli as cli_group
from mlspec_attest.formats.statement import ResourceDescriptor
from mlspec_attest.formats.vsa import InputAttestation, VerificationSummary, summary_digest
from mlspec_attest.formats.vsa import Result as VsaResult
from mlspec_attest.log.proof import verify_inclusion
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key, write_key_pair
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.summary import sign_summary, store_summary
from tests.cli.conftest import Cli
from tests.log import tamper
from tests.log.conftest import MODEL_DIGEST, ORIGIN, WriteLog, request


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli_group, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def log(tmp_path: Path, write_log: WriteLog) -> Path:
    directory = tmp_path / "log"
    write_log(directory, 9, checkpoint_every=4)
    return directory


def test_verify_ok_json_and_text(log: Path, key_files: tuple[Path, Path]) -> None:
    result = run("log", "verify", log, "--key", key_files[1], "--json")
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["schemaVersion"] == "https://mlspec-attest.dev/log-verification/v1"
    assert (doc["result"], doc["records"], doc["signedSize"], doc["findings"]) == ("ok", 9, 9, [])
    text = run("log", "verify", log, "--key", log / "log.vkey")
    assert text.exit_code == 0 and "log verification PASSED" in text.output


def test_verify_tampered_exits_1_naming_the_record(log: Path, key_files: tuple[Path, Path]) -> None:
    tamper.replace_in_record(log, 5, b"python-httpx", b"pYthon-httpx")
    result = run("log", "verify", log, "--key", key_files[1], "--json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["result"] == "tampered"
    assert [(f["kind"], f["seq"], f["requestId"]) for f in doc["findings"]] == [
        ("edited", 5, "req-0005")
    ]
    assert doc["findings"][0]["remedy"]
    text = run("log", "verify", log, "--key", key_files[1], "--exact")
    assert text.exit_code == 1 and "problem: edited seq 5 (request req-0005)" in text.output


def test_verify_warns_on_an_unsigned_tail(
    tmp_path: Path, write_log: WriteLog, key_files: tuple[Path, Path]
) -> None:
    write_log(tmp_path / "log", 6, checkpoint_every=4, close=False)
    result = run("log", "verify", tmp_path / "log", "--key", key_files[1])
    assert result.exit_code == 0
    assert "warning: unsigned-tail seq 4..5 (request req-0004)" in result.output


def test_verify_unreadable_exits_3(tmp_path: Path, key_files: tuple[Path, Path]) -> None:
    result = run("log", "verify", tmp_path / "missing", "--key", key_files[1], "--json")
    assert result.exit_code == 3
    assert json.loads(result.output)["result"] == "unreadable"


def test_errors_through_main_give_one_json_document(cli: Cli, log: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.pub").write_text("not a key")
    r = cli("log", "verify", log, "--key", tmp_path / "bad.pub", "--json")
    assert r.code == 3 and r.clean
    assert r.json()["error"]["type"] == "KeyLoadError"
    r = cli("log", "verify", log, "--json")
    assert r.code == 2 and r.clean and r.json()["result"] == "ERROR"
    r = cli("log", "prove", "--log", log, "--json")
    assert r.code == 2 and "REQUEST_ID" in r.json()["error"]["message"]
    r = cli("log", "prove", "nope", "--log", log, "--json")
    assert r.code == 3 and "no record of request 'nope'" in r.json()["error"]["message"]


def test_prove_output_checks_with_verify_inclusion(
    log: Path, key_files: tuple[Path, Path], signer: LocalKeySigner, tmp_path: Path
) -> None:
    result = run("log", "prove", "req-0006", "--log", log, "--key", key_files[1], "--json")
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["verified"] is True and doc["leafIndex"] == 6 and doc["treeSize"] == 9
    assert verify_inclusion(doc, signer.public_key).record.request_id == "req-0006"
    (tmp_path / "proof.json").write_text(result.output)
    checked = run(
        "log", "prove", "--log", log, "--check", tmp_path / "proof.json", "--key", key_files[1]
    )
    assert checked.exit_code == 0 and "inclusion proof PASSED" in checked.output
    unverified = run("log", "prove", "req-0001", "--log", log)
    assert unverified.exit_code == 0 and "NOT verified" in unverified.output


def test_prove_consistency(log: Path, key_files: tuple[Path, Path], tmp_path: Path) -> None:
    result = run(
        "log", "prove", "--log", log, "--consistency", "4", "0", "--key", key_files[1], "--json"
    )
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert (doc["oldSize"], doc["newSize"], doc["verified"]) == (4, 9, True)
    (tmp_path / "c.json").write_text(result.output)
    assert (
        run(
            "log", "prove", "--log", log, "--check", tmp_path / "c.json", "--key", key_files[1]
        ).exit_code
        == 0
    )


def test_prove_with_a_wrong_key_is_denied(cli: Cli, log: Path, tmp_path: Path) -> None:
    _, other = write_key_pair(generate_key(KeyType.ED25519), tmp_path / "other")
    r = cli(
        "log", "prove", "req-0001", "--log", log, "--key", other, "--key-name", ORIGIN, "--json"
    )
    assert r.code == 1 and r.clean and "no signature by key" in r.json()["error"]["message"]


def _summary(store: Path, signer: LocalKeySigner) -> str:
    summary = VerificationSummary(
        subjects=(ResourceDescriptor("model", {"sha256": MODEL_DIGEST}),),
        resource_uri="https://models.example/iris",
        policy_uri="policies/iris.signed.json",
        policy_digest="77" * 32,
        time_verified=datetime(2025, 12, 6, 12, 0, tzinfo=UTC),
        result=VsaResult.PASSED,
        levels=("MLSPEC_SIGNED_CHAIN",),
        inputs=(InputAttestation("train", "runs/r-42/train.1a2b3c4d.sigstore.json", "88" * 32),),
        details={"runId": "r-42"},
    )
    bundle = sign_summary(summary, signer)
    store_summary(AttestationStore(store), bundle)
    return summary_digest(bundle.envelope.payload)


def test_trace_shows_the_summary_the_request_was_served_under(
    tmp_path: Path, signer: LocalKeySigner, key_files: tuple[Path, Path]
) -> None:
    store = tmp_path / "store"
    digest = _summary(store, generate_key(KeyType.ED25519))
    with InferenceLog.open(tmp_path / "log", signer, origin=ORIGIN, checkpoint_interval_s=0) as w:
        for i in range(3):
            w.append(**request(i, vsa_digest=digest))
    result = run(
        "log",
        "trace",
        "req-0001",
        "--log",
        tmp_path / "log",
        "--key",
        key_files[1],
        "--store",
        store,
        "--json",
    )
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.output)
    assert doc["result"] == "PASSED" and doc["seq"] == 1 and doc["vsaDigest"] == digest
    assert doc["model"] == {"name": "iris", "version": "3", "digest": MODEL_DIGEST}
    s = doc["summary"]
    assert (s["found"], s["matchesRecord"], s["runId"]) == (True, True, "r-42")
    assert s["policy"]["sha256"] == "77" * 32
    assert s["inputAttestations"] == [
        {"name": "train", "uri": "runs/r-42/train.1a2b3c4d.sigstore.json", "sha256": "88" * 32}
    ]
    text = run(
        "log",
        "trace",
        "req-0001",
        "--log",
        tmp_path / "log",
        "--key",
        key_files[1],
        "--store",
        store,
    )
    assert "run id:   r-42" in text.output and "input:    train" in text.output


def test_trace_without_the_summary_in_the_store_says_so(
    log: Path, key_files: tuple[Path, Path], tmp_path: Path
) -> None:
    result = run(
        "log",
        "trace",
        "req-0002",
        "--log",
        log,
        "--key",
        key_files[1],
        "--store",
        tmp_path / "empty",
        "--json",
    )
    assert result.exit_code == 0
    summary = json.loads(result.output)["summary"]
    assert summary["found"] is False and "no verification summary is stored" in summary["problem"]


def test_trace_refuses_a_summary_that_is_not_the_records(
    tmp_path: Path, signer: LocalKeySigner, key_files: tuple[Path, Path]
) -> None:
    store = tmp_path / "store"
    real = _summary(store, generate_key(KeyType.ED25519))
    fake = "12" * 32
    (store / "summaries" / f"{fake}.sigstore.json").write_bytes(
        (store / "summaries" / f"{real}.sigstore.json").read_bytes()
    )
    with InferenceLog.open(tmp_path / "log", signer, origin=ORIGIN, checkpoint_interval_s=0) as w:
        w.append(**request(0, vsa_digest=fake))
    result = run(
        "log",
        "trace",
        "req-0000",
        "--log",
        tmp_path / "log",
        "--key",
        key_files[1],
        "--store",
        store,
        "--json",
    )
    assert result.exit_code == 1
    summary = json.loads(result.output)["summary"]
    assert summary["matchesRecord"] is False and "not the record's" in summary["problem"]


def test_trace_of_a_tampered_log_is_denied(
    cli: Cli, log: Path, key_files: tuple[Path, Path]
) -> None:
    records = tamper.raw_records(log)
    tamper.write_records(log, records[:3] + records[4:])
    r = cli("log", "trace", "req-0005", "--log", log, "--key", key_files[1], "--json")
    assert r.code == 1 and r.clean
    assert "deleted seq 3" in r.json()["error"]["message"]


def test_every_option_has_help() -> None:
    for command in ("verify", "prove", "trace"):
        result = run("log", command, "--help")
        assert result.exit_code == 0
        group = cli_group.get_command(None, "log")  # type: ignore[arg-type]
        sub = group.commands[command]  # type: ignore[union-attr]
        assert all(
            p.help for p in sub.params if hasattr(p, "help") and p.param_type_name == "option"
        )
