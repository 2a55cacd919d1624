"""The writer process: the same bytes as the in-process writer, grouped appends, each
request's own refusal, and every way the two processes can part (one killed, the
other gone, a log that cannot be opened)."""

from __future__ import annotations

import asyncio
import atexit
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.errors import BadInputError, MlspecError, StoreError, UsageError
from mlspec_attest.log.audit import verify_log
from mlspec_attest.log.files import ACCESS_LOG, LATEST, RECORDS
from mlspec_attest.log.journaled import JournaledLog
from mlspec_attest.log.process import LogWriterProcess
from mlspec_attest.log.record import RecordError, decode_record
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.signing.keys import LocalKeySigner, write_key_pair
from tests.log import tamper
from tests.log.conftest import ORIGIN, request


def open_process(directory: Path, signer: LocalKeySigner, **options: Any) -> LogWriterProcess:
    options.setdefault("checkpoint_interval_s", 0)
    return LogWriterProcess.open(directory, signer, origin=ORIGIN, **options)


def test_the_files_are_byte_identical_to_the_in_process_writers(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    with InferenceLog.open(tmp_path / "inline", signer, origin=ORIGIN, checkpoint_every=4) as log:
        for i in range(10):
            log.append(**request(i))
    with open_process(tmp_path / "process", signer, checkpoint_every=4) as writer:
        for i in range(10):
            assert writer.append(**request(i)) is None  # outside a loop: blocks until written
        assert (writer.size, writer.signed_size) == (10, 8)
    for name in (RECORDS, ACCESS_LOG, LATEST):  # Ed25519 signatures are deterministic
        assert (tmp_path / "process" / name).read_bytes() == (
            tmp_path / "inline" / name
        ).read_bytes()
    audit = verify_log(tmp_path / "process", signer.public_key, origin=ORIGIN)
    assert audit.ok and (audit.records, audit.signed) == (10, 10)


def test_concurrent_appends_from_an_event_loop(tmp_path: Path, signer: LocalKeySigner) -> None:
    async def all_at_once(log: LogWriterProcess) -> None:
        async def one(i: int) -> None:
            await log.submit(**request(i, time=None))

        await asyncio.gather(*(one(i) for i in range(200)))

    with open_process(tmp_path / "log", signer) as log:
        asyncio.run(all_at_once(log))
        assert log.size == 200
    kept = [decode_record(raw) for raw in tamper.raw_records(tmp_path / "log")]
    assert [r.seq for r in kept] == list(range(200))
    assert sorted(r.request_id for r in kept) == [f"req-{i:04d}" for i in range(200)]
    audit = verify_log(tmp_path / "log", signer.public_key, origin=ORIGIN)
    assert audit.ok and audit.signed == 200


class Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle this output")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"status": 1000}, "status 100-999"),
        ({"output": float("nan")}, "non-finite"),
        ({"model_digest": "not hex"}, "64 lowercase hex"),
        ({"output": Unpicklable()}, "cannot be sent to the writer process"),
        ({"surprise": 1}, "unexpected keyword argument 'surprise'"),
    ],
)
def test_a_value_no_record_holds_fails_only_its_own_request(
    tmp_path: Path, signer: LocalKeySigner, bad: dict[str, Any], message: str
) -> None:
    async def group(log: LogWriterProcess) -> list[BaseException | None]:
        calls = [request(0), request(1, **bad), request(2)]
        return list(await asyncio.gather(*(log.submit(**c) for c in calls), return_exceptions=True))

    with open_process(tmp_path / "log", signer) as log:
        first, refused, last = asyncio.run(group(log))
    assert first is None and last is None
    assert isinstance(refused, RecordError | UsageError) and message in str(refused)
    kept = [decode_record(raw) for raw in tamper.raw_records(tmp_path / "log")]
    assert [(r.seq, r.request_id) for r in kept] == [(0, "req-0000"), (1, "req-0002")]


def test_a_killed_writer_fails_every_request_until_reopened(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    directory = tmp_path / "log"
    log = open_process(directory, signer)
    log.append(**request(0))
    os.kill(log.pid, signal.SIGKILL)
    with pytest.raises(StoreError, match="the writer process"):
        log.append(**request(1))
    assert log.status()["unusable"] is not None
    with pytest.raises(StoreError, match="unusable"):
        log.append(**request(2))
    log.close()
    with open_process(directory, signer) as again:  # reopening audits and signs the tail
        again.append(**request(3))
    audit = verify_log(directory, signer.public_key, origin=ORIGIN)
    assert audit.ok and (audit.records, audit.signed) == (2, 2)


def test_a_killed_writer_fails_the_requests_an_event_loop_awaits(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    async def after_the_kill(log: LogWriterProcess) -> BaseException | None:
        await log.submit(**request(0, time=None))
        os.kill(log.pid, signal.SIGKILL)
        try:
            await asyncio.wait_for(log.submit(**request(1, time=None)), 30)
        except StoreError as exc:
            return exc
        return None

    log = open_process(tmp_path / "log", signer)
    try:
        error = asyncio.run(after_the_kill(log))
    finally:
        log.close()
    assert isinstance(error, StoreError) and "writer process" in error.message


SERVER_DIES = """
import os, sys
from pathlib import Path
from mlspec_attest.log.process import LogWriterProcess
from mlspec_attest.signing.keys import load_private_key
from tests.log.conftest import ORIGIN, request
log = LogWriterProcess.open(Path(sys.argv[1]), load_private_key(Path(sys.argv[2])),
                            origin=ORIGIN, checkpoint_interval_s=0)
for i in range(5):
    log.append(**request(i))
print(log.pid, flush=True)
os._exit(0)  # no close, no atexit: as a server killed at this point
"""


def test_when_the_server_dies_the_writer_signs_what_it_wrote(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    private, _ = write_key_pair(signer, tmp_path / "key")
    directory = tmp_path / "log"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", SERVER_DIES, str(directory), str(private)],
        capture_output=True, text=True, cwd=root, check=True, timeout=60,
    )  # fmt: skip
    writer = int(done.stdout.strip())
    deadline = time.monotonic() + 30
    while _alive(writer) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(writer)
    audit = verify_log(directory, signer.public_key, origin=ORIGIN)
    assert audit.ok and (audit.records, audit.signed) == (5, 5)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_open_errors_keep_their_class(tmp_path: Path, signer: LocalKeySigner) -> None:
    directory = tmp_path / "log"
    with open_process(directory, signer) as log:
        log.append(**request(0))
        with pytest.raises(StoreError, match="open for writing by another process"):
            open_process(directory, signer)
    with pytest.raises(BadInputError, match="was written for origin"):
        LogWriterProcess.open(directory, signer, origin="mlspec-attest/other/00")
    tamper.flip_byte(directory, 0, 40)  # a tampered log: refused as the writer refuses it
    with pytest.raises(MlspecError) as inline:
        InferenceLog.open(directory, signer, origin=ORIGIN)
    with pytest.raises(MlspecError) as process:
        open_process(directory, signer)
    assert type(process.value) is type(inline.value)
    assert (process.value.message, process.value.remedy) == (
        inline.value.message,
        inline.value.remedy,
    )


def test_only_a_local_key_crosses_to_the_writer(tmp_path: Path, signer: LocalKeySigner) -> None:
    class Remote:
        public_key = signer.public_key

        def sign(self, data: bytes) -> bytes:
            return signer.sign(data)

    with pytest.raises(UsageError, match="local key"):
        LogWriterProcess.open(tmp_path / "log", Remote(), origin=ORIGIN)  # type: ignore[arg-type]
    with open_process(tmp_path / "log", signer) as log:
        command = Path(f"/proc/{log.pid}/cmdline").read_bytes().split(b"\0")
    assert command[1:3] == [b"-m", b"mlspec_attest.log.process_main"] and command[3].isdigit()


def test_a_closed_writer_refuses_and_closes_once(tmp_path: Path, signer: LocalKeySigner) -> None:
    log = open_process(tmp_path / "log", signer)
    log.append(**request(0))
    log.close()
    log.close()
    with pytest.raises(StoreError, match="is closed"):
        log.append(**request(1))
    assert log.status()["closed"] is True
    assert verify_log(tmp_path / "log", signer.public_key, origin=ORIGIN).signed == 1


@pytest.mark.parametrize("kind", [LogWriterProcess, JournaledLog])
def test_a_process_forked_from_the_server_leaves_its_log_alone(
    tmp_path: Path, signer: LocalKeySigner, kind: type[LogWriterProcess]
) -> None:
    """A forked child that exits normally runs its atexit handlers: closing the copy of
    the log it inherited would tell the server's writer to finish and exit. It does not;
    an append there is refused; the server's log goes on."""
    log = kind.open(tmp_path / "log", signer, origin=ORIGIN)
    log.append(**request(0))
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            log.append(**request(1))
        except StoreError as exc:
            code = 0 if "forked" in exc.message else 2
        atexit._run_exitfuncs()  # what a normal exit runs; the log's close is not among them
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    for i in (1, 2):
        waiter = log.append(**request(i))
        assert waiter is None
    if isinstance(log, JournaledLog):
        log.sync()
    log.close()
    audit = verify_log(tmp_path / "log", signer.public_key, origin=ORIGIN)
    assert audit.ok and audit.records == 3
