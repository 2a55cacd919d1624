"""The reference server with the real inference log, written in the server's process
(``InferenceLog``) and by a writer process (``LogWriterProcess``): records on disk that
an audit accepts, a write that fails (a file size limit: the kernel refuses the write
as it does on a full disk) answered 503, and 64 concurrent clients."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import resource
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlspec_attest.errors import StoreError
from mlspec_attest.log.audit import verify_log
from mlspec_attest.log.checkpoint import default_origin
from mlspec_attest.log.files import RECORDS
from mlspec_attest.log.journaled import JournaledLog
from mlspec_attest.log.process import LogWriterProcess
from mlspec_attest.log.record import InferenceRecord, decode_record
from mlspec_attest.log.scan import RecordScanner
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.serve.config import LOG_WRITERS, ServeConfig
from mlspec_attest.serve.server import checkpoint_check
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key

from .server_fixtures import (
    MODEL_NAME,
    VSA_DIGEST,
    Server,
    ServerFactory,
    diabetes,
    make_server,
    sample,
    served_model,
)

__all__ = ["make_server"]  # a fixture, used by name

ORIGIN = default_origin(MODEL_NAME, VSA_DIGEST)


@pytest.fixture(scope="module")
def server_key() -> LocalKeySigner:
    return generate_key(KeyType.ED25519)


@pytest.fixture(params=LOG_WRITERS)
def real(
    request: pytest.FixtureRequest,
    make_server: ServerFactory,
    server_key: LocalKeySigner,
    tmp_path: Path,
) -> Iterator[Server]:
    writers = {"journal": JournaledLog, "process": LogWriterProcess, "inline": InferenceLog}
    writer = writers[request.param]
    log = writer.open(tmp_path / "log", server_key, origin=ORIGIN)
    config = ServeConfig(log_dir=str(tmp_path / "log"), log_writer=request.param)
    yield make_server(log=log, config=config)
    log.close()


def records(directory: Path) -> list[InferenceRecord]:
    return [decode_record(item.raw) for item in RecordScanner(directory / RECORDS)]


def infer(server: Server, rows: list[list[float]], **kwargs: object) -> httpx.Response:
    body = {"inputs": [{"name": "x", "shape": [len(rows), 10], "datatype": "FP64", "data": rows}]}
    return httpx.post(server.infer_url(), json=body, **kwargs)  # type: ignore[arg-type]


def test_records_on_disk_pass_the_audit(real: Server, server_key: LocalKeySigner) -> None:
    data = diabetes()
    answers = [infer(real, data.rows(2, start=i), headers={"x-user-id": "alice"}) for i in range(3)]
    answers.append(httpx.post(real.infer_url(), content=b"{"))  # refused, logged all the same
    assert [a.status_code for a in answers] == [200, 200, 200, 400]
    real.running.stop()  # a graceful stop closes the log: its last checkpoint is signed
    directory = real.log.directory
    audit = verify_log(directory, server_key.public_key, origin=ORIGIN)
    assert audit.ok, audit.to_json()
    assert (audit.records, audit.signed) == (4, 4)
    kept = records(directory)
    assert [r.request_id for r in kept] == [a.headers["x-request-id"] for a in answers]
    assert [r.status for r in kept] == [200, 200, 200, 400]
    first = kept[0]
    assert first.output == data.expected(data.rows(2))
    assert first.input_digest == "sha256:" + hashlib.sha256(answers[0].request.content).hexdigest()
    assert first.input is None  # bodies are kept as digests unless asked
    assert first.user == "sha256:" + hashlib.sha256(b"alice").hexdigest()
    assert (first.model, first.vsa_digest) == (MODEL_NAME, VSA_DIGEST)
    assert first.model_digest == real.served.binding.model_digest
    assert first.bytes_sent == len(answers[0].content)
    assert kept[3].output is None


@pytest.fixture
def file_size_limit() -> Iterator[None]:
    """Restores the file size limit (and SIGXFSZ) whatever the test did."""
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)


def writer_pid(log: object) -> int:
    """The process that writes ``log``'s files: its writer process, or this one."""
    return log.pid if isinstance(log, LogWriterProcess) else os.getpid()


@pytest.mark.usefixtures("file_size_limit")
def test_a_write_the_disk_refuses_is_a_503(real: Server, server_key: LocalKeySigner) -> None:
    if isinstance(real.log, JournaledLog):
        pytest.skip("journal mode answers first: test_the_journal_keeps_what_the_writer_could_not")
    rows = diabetes().rows(1)
    assert infer(real, rows).status_code == 200
    directory = real.log.directory
    full = (directory / RECORDS).stat().st_size + 10  # room for no further record
    pid = writer_pid(real.log)
    hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (full, hard))
    try:
        refused = infer(real, rows)
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))
    assert refused.status_code == 503
    assert "outputs" not in refused.text
    ok = httpx.get(f"{real.url}/ok").json()
    assert ok["ready"] is False
    (reason,) = ok["reasons"]
    assert reason.startswith(
        f"inference-log: the last write failed: cannot write {directory / RECORDS}: "
    )
    metrics = httpx.get(f"{real.url}/metrics").text
    assert sample(metrics, "mlspec_log_failures_total") == 1
    assert sample(metrics, "mlspec_request_errors_total", kind="log_write") == 1

    # room again: the writer cut its files back, so the log goes on whole
    assert infer(real, rows).status_code == 200
    assert httpx.get(f"{real.url}/ok").status_code == 200
    real.running.stop()
    audit = verify_log(directory, server_key.public_key, origin=ORIGIN)
    assert audit.ok, audit.to_json()
    assert audit.records == 2
    assert [r.request_id for r in records(directory)][1] != refused.headers["x-request-id"]


@pytest.mark.usefixtures("file_size_limit")
def test_the_journal_keeps_what_the_writer_could_not(
    make_server: ServerFactory, server_key: LocalKeySigner, tmp_path: Path
) -> None:
    """Journal mode: a request the writer cannot write was answered (its values wait in
    the journal); later ones are refused until the writer can write again, and then the
    log holds them all, in order."""
    log = JournaledLog.open(tmp_path / "log", server_key, origin=ORIGIN)
    real = make_server(log=log, config=ServeConfig(log_dir=str(log.directory)))
    rows = diabetes().rows(1)
    first = infer(real, rows)
    log.sync()
    directory = log.directory
    full = (directory / RECORDS).stat().st_size + 10  # room for no further record
    hard = resource.prlimit(log.pid, resource.RLIMIT_FSIZE)[1]
    resource.prlimit(log.pid, resource.RLIMIT_FSIZE, (full, hard))
    try:
        kept = infer(real, rows)  # journaled, then answered; the writer fails on it
        with pytest.raises(StoreError, match=r"records\.cbor"):
            log.sync()
        refused = infer(real, rows)
        reasons = httpx.get(f"{real.url}/ok").json()["reasons"]
    finally:
        resource.prlimit(log.pid, resource.RLIMIT_FSIZE, (hard, hard))
    assert (first.status_code, kept.status_code, refused.status_code) == (200, 200, 503)
    assert "outputs" not in refused.text
    assert [r.split(": ")[0] for r in reasons] == ["inference-log"]
    assert "records.cbor" in reasons[0]
    deadline = time.monotonic() + 30
    while infer(real, rows).status_code != 200:  # each refusal has the writer try again
        assert time.monotonic() < deadline
        time.sleep(0.05)
    real.running.stop()
    audit = verify_log(directory, server_key.public_key, origin=ORIGIN)
    assert audit.ok, audit.to_json()
    ids = [r.request_id for r in records(directory)]
    assert ids[:2] == [first.headers["x-request-id"], kept.headers["x-request-id"]]
    assert refused.headers["x-request-id"] not in ids


def test_a_closed_log_refuses_every_request(real: Server) -> None:
    real.log.close()
    refused = infer(real, diabetes().rows(1))
    assert refused.status_code == 503
    reasons = httpx.get(f"{real.url}/ok").json()["reasons"]
    assert reasons == [
        f"inference-log: the last write failed: inference log {real.log.directory} is closed"
    ]


def test_64_concurrent_clients_give_64_records(real: Server, server_key: LocalKeySigner) -> None:
    rows = diabetes().rows(64)

    async def one(client: httpx.AsyncClient, index: int) -> httpx.Response:
        body = {
            "inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP64", "data": [rows[index]]}]
        }
        return await client.post(real.infer_url(), content=json.dumps(body).encode())

    async def all_at_once() -> list[httpx.Response]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as client:
            return list(await asyncio.gather(*(one(client, i) for i in range(64))))

    answers = asyncio.run(all_at_once())
    assert [a.status_code for a in answers] == [200] * 64
    real.running.stop()
    kept = records(real.log.directory)
    assert len(kept) == 64
    assert {r.request_id for r in kept} == {a.headers["x-request-id"] for a in answers}
    assert [r.seq for r in kept] == list(range(64))
    by_id = {r.request_id: r for r in kept}
    for index, answer in enumerate(answers):
        assert by_id[answer.headers["x-request-id"]].output == diabetes().expected([rows[index]])
    audit = verify_log(real.log.directory, server_key.public_key, origin=ORIGIN)
    assert audit.ok and audit.records == audit.signed == 64


def test_a_failed_checkpoint_makes_the_server_not_ready(
    make_server: ServerFactory, server_key: LocalKeySigner, tmp_path: Path
) -> None:
    directory = tmp_path / "log"
    log = InferenceLog.open(directory, server_key, origin=ORIGIN, checkpoint_every=1)
    server = make_server(served_model(), log=log, readiness=[checkpoint_check(log)])
    assert infer(server, diabetes().rows(1)).status_code == 200
    assert httpx.get(f"{server.url}/ok").status_code == 200
    shutil.rmtree(directory / "checkpoints")
    (directory / "checkpoints").write_text("not a directory")  # the next checkpoint fails
    assert infer(server, diabetes().rows(1)).status_code == 200  # the record is written
    answer = httpx.get(f"{server.url}/ok")
    assert answer.status_code == 503
    (reason,) = answer.json()["reasons"]
    assert reason.startswith("inference-log-checkpoint: check failed (StoreError: cannot write ")
