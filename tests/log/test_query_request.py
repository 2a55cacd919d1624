"""``mlspec-attest query request``: from a logged request to the summary it was served
under and its run, the log audited first; a tampered log is refused as ``log trace``
refuses it."""

from __future__ import annotations

from pathlib import Path

from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key
from tests.cli.conftest import Cli, CliResult
from tests.log import tamper
from tests.log.conftest import ORIGIN, request
from tests.log.test_cli import _summary


def query(cli: Cli, tmp_path: Path, key: Path, *extra: str) -> CliResult:
    return cli(
        "query", "request", "--log", str(tmp_path / "log"), "--log-key", str(key),
        "--request-id", "req-0001", "--store", str(tmp_path / "store"), *extra,
    )  # fmt: skip


def test_a_request_is_traced_to_its_summary(
    cli: Cli, tmp_path: Path, signer: LocalKeySigner, key_files: tuple[Path, Path]
) -> None:
    digest = _summary(tmp_path / "store", generate_key(KeyType.ED25519))
    with InferenceLog.open(tmp_path / "log", signer, origin=ORIGIN, checkpoint_interval_s=0) as w:
        for i in range(3):
            w.append(**request(i, vsa_digest=digest))
    result = query(cli, tmp_path, key_files[1], "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert (doc["schemaVersion"], doc["query"], doc["requestId"]) == (
        "https://mlspec-attest.dev/query/v1", "request", "req-0001",
    )  # fmt: skip
    trace = doc["result"]["trace"]
    assert (trace["result"], trace["seq"], trace["vsaDigest"]) == ("PASSED", 1, digest)
    summary = trace["summary"]
    assert (summary["found"], summary["matchesRecord"], summary["runId"]) == (True, True, "r-42")
    assert doc["result"]["lineage"] == []  # the store holds no attestation of run r-42
    text = query(cli, tmp_path, key_files[1])
    assert text.code == 0 and digest in text.out and "r-42" in text.out
    tamper.flip_byte(tmp_path / "log", 1, 40)
    refused = query(cli, tmp_path, key_files[1], "--json")
    assert refused.code == 1, refused.out
