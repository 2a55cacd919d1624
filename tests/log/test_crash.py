"""``kill -9`` of a real writer process: nothing acknowledged is lost, the audit calls the
traces a crash (not tampering), and reopening continues the log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from mlspec_attest.log.audit import verify_log
from mlspec_attest.log.findings import CRASH_KINDS
from mlspec_attest.log.record import decode_record
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.signing.keys import LocalKeySigner
from tests.log import tamper
from tests.log.conftest import ORIGIN, request

WRITER = r"""
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.signing.keys import load_private_key
from tests.log.conftest import ORIGIN, request

directory, start = Path(sys.argv[1]), int(sys.argv[2])
log = InferenceLog.open(directory, load_private_key(Path(sys.argv[4])), origin=ORIGIN,
                        checkpoint_every=37, checkpoint_interval_s=0)
i = start
while True:
    r = log.append(**request(i, time=None))
    print("ACK", r.seq, r.request_id, flush=True)
    i += 1
"""


def _run_and_kill(directory: Path, key: Path, start: int, acks: int) -> list[str]:
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), str(start), str(root), str(key)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    acked: list[str] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            acked.append(line.split()[2])
            if len(acked) >= acks:
                os.kill(child.pid, signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait(timeout=60)
        if child.stdout:
            child.stdout.close()
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL, child.returncode
    return acked


def test_kill_9_mid_stream_loses_nothing_acknowledged(
    tmp_path: Path, signer: LocalKeySigner, key_files: tuple[Path, Path]
) -> None:
    directory = tmp_path / "log"
    acked: list[str] = []
    for round_, start in enumerate((0, 10_000, 20_000)):
        acked += _run_and_kill(directory, key_files[0], start, 150 + 50 * round_)
        audit = verify_log(directory, signer.public_key)
        assert audit.result == "ok", [f.describe() for f in audit.findings]
        assert all(f.kind in CRASH_KINDS for f in audit.findings)
        ids = [decode_record(raw).request_id for raw in tamper.raw_records(directory)]
        assert set(acked) <= set(ids)  # every acknowledged request is in the log
        assert len(ids) == len(set(ids)) == audit.records
    with InferenceLog.open(directory, signer, origin=ORIGIN, checkpoint_interval_s=0) as log:
        n = log.size
        assert log.signed_size == n  # the unsigned tail was signed on reopening
        assert log.append(**request(99_999)).seq == n
    final = verify_log(directory, signer.public_key)
    assert (final.result, final.records, final.signed, final.findings) == ("ok", n + 1, n + 1, ())


def _die(log: InferenceLog) -> None:
    """The writer's process is killed: the kernel closes its files, nothing is signed."""
    log._stop.set()
    log._closed = True
    log._release()


def _commit_group_then_lose_its_lines(directory: Path, signer: LocalKeySigner, keep: int) -> int:
    """Sign 3 records, commit a group of 5, die, and cut access.log back to the group's
    start plus ``keep`` bytes: what a kill between (or during) the group's two writes leaves."""
    log = InferenceLog.open(directory, signer, origin=ORIGIN, checkpoint_interval_s=0)
    for i in range(3):
        log.append(**request(i))
    log.checkpoint()
    before = (directory / "access.log").stat().st_size
    log.commit([log.prepare(**request(i)) for i in range(3, 8)])
    _die(log)
    os.truncate(directory / "access.log", before + keep)
    return before


def test_a_group_whose_lines_a_kill_cut_off_is_a_crash_and_reopening_restores_them(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    for keep in (
        0,
        40,
        1417,
    ):  # no line, part of one, two lines (~480 bytes each) and part of a third
        directory = tmp_path / f"keep-{keep}"
        _commit_group_then_lose_its_lines(directory, signer, keep)
        audit = verify_log(directory, signer.public_key)
        assert audit.result == "ok", [f.describe() for f in audit.findings]
        assert {f.kind for f in audit.findings} <= set(CRASH_KINDS)
        torn = "a crash between writing records and their lines"
        assert any(torn in f.message for f in audit.findings)
        with InferenceLog.open(directory, signer, origin=ORIGIN, checkpoint_interval_s=0) as log:
            assert (log.size, log.signed_size) == (8, 8)
        final = verify_log(directory, signer.public_key)
        assert (final.result, final.records, final.signed, final.findings) == ("ok", 8, 8, ())
        lines = (directory / "access.log").read_text().splitlines()
        assert [line.rsplit('seq="', 1)[1] for line in lines] == [f'{i}"' for i in range(8)]


def test_missing_lines_before_a_present_one_or_of_signed_records_are_tampering(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    honest = tmp_path / "honest"
    _commit_group_then_lose_its_lines(honest, signer, 10_000)  # every line kept
    last_line = (honest / "access.log").read_bytes().splitlines(keepends=True)[-1]
    gap = tmp_path / "gap"
    _commit_group_then_lose_its_lines(gap, signer, 0)
    with (gap / "access.log").open("ab") as f:
        f.write(last_line)  # the last record's line, four missing before it: no crash does that
    assert verify_log(gap, signer.public_key).result == "tampered"
    signed = tmp_path / "signed"
    with InferenceLog.open(signed, signer, origin=ORIGIN, checkpoint_interval_s=0) as log:
        for i in range(6):
            log.append(**request(i))
    text = (signed / "access.log").read_bytes()
    (signed / "access.log").write_bytes(text.rstrip(b"\n").rsplit(b"\n", 2)[0] + b"\n")
    assert verify_log(signed, signer.public_key).result == "tampered"  # signed lines gone
