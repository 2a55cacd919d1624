"""The writer: what a record holds, checkpoints, concurrency, reopening, refusals."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlspec_attest.errors import BadInputError, KeyLoadError, StoreError, VerificationError
from mlspec_attest.log.audit import verify_log
from mlspec_attest.log.checkpoint import verify_checkpoint
from mlspec_attest.log.files import LATEST, PUBLIC_KEY, RECORDS, VKEY, numbered
from mlspec_attest.log.merkle import MerkleTree, leaf_hash
from mlspec_attest.log.note import note_key, parse_vkey
from mlspec_attest.log.record import decode_record
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key
from tests.log import tamper
from tests.log.conftest import MODEL_DIGEST, ORIGIN, VSA_DIGEST, WriteLog, request


def open_log(directory: Path, signer: LocalKeySigner, **options: object) -> InferenceLog:
    options.setdefault("checkpoint_interval_s", 0)
    return InferenceLog.open(directory, signer, origin=ORIGIN, **options)  # type: ignore[arg-type]


def test_record_fields(tmp_path: Path, signer: LocalKeySigner) -> None:
    with open_log(tmp_path / "log", signer) as log:
        r0 = log.append(**request(0))
        r1 = log.append(**request(1, user=None, referer="https://example.com/"))
        r2 = log.append(**request(2, user="", model_digest="sha256:" + MODEL_DIGEST))
    assert (r0.seq, r1.seq, r2.seq) == (0, 1, 2)
    assert r0.user == "sha256:" + hashlib.sha256(b"user-0").hexdigest()
    assert r1.user == "-" and r2.user == "-" and r1.referer == "https://example.com/"
    assert r0.input is None
    assert r0.input_digest == "sha256:" + hashlib.sha256(request(0)["body"]).hexdigest()
    assert r0.time == "2025-12-07T00:48:12.123456Z" and r1.time == "2025-12-07T00:48:12.124456Z"
    assert r0.model_digest == r2.model_digest == MODEL_DIGEST and r0.vsa_digest == VSA_DIGEST
    assert r0.prev == "0" * 64
    assert r1.prev == leaf_hash(r0.to_cbor()).hex() and r2.prev == leaf_hash(r1.to_cbor()).hex()
    records = tamper.raw_records(tmp_path / "log")
    assert [decode_record(raw) for raw in records] == [r0, r1, r2]
    lines = tamper.lines(tmp_path / "log")
    assert [line.decode() for line in lines] == [r.line() for r in (r0, r1, r2)]
    assert r0.line_digest == hashlib.sha256(lines[0]).hexdigest()


def test_raw_user_ids_and_inputs_when_configured(tmp_path: Path, signer: LocalKeySigner) -> None:
    with open_log(tmp_path / "log", signer, log_user_ids=True, log_inputs=True) as log:
        r = log.append(**request(0, user="alice@example.com", body=b"\x00raw body"))
    assert r.user == "alice@example.com" and r.input == b"\x00raw body"
    assert decode_record(tamper.raw_records(tmp_path / "log")[0]).input == b"\x00raw body"


def test_time_defaults_to_now(tmp_path: Path, signer: LocalKeySigner) -> None:
    moment = datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    with open_log(tmp_path / "log", signer, now=lambda: moment) as log:
        r = log.append(**request(0, time=None))
    assert r.time == "2030-01-02T03:04:05.000006Z"


def test_published_keys_and_checkpoints(tmp_path: Path, signer: LocalKeySigner) -> None:
    directory = tmp_path / "log"
    with open_log(directory, signer, checkpoint_every=3) as log:
        records = [log.append(**request(i)) for i in range(7)]
        assert log.signed_size == 6 and log.size == 7
    assert (directory / PUBLIC_KEY).read_text() == signer.public_key.pem()
    vkey = parse_vkey((directory / VKEY).read_text())
    assert vkey == note_key(signer.public_key, ORIGIN)
    names = sorted(p.name for p in (directory / "checkpoints").iterdir())
    assert names == ["0.checkpoint", "3.checkpoint", "6.checkpoint", "7.checkpoint"]
    tree = MerkleTree(leaf_hash(r.to_cbor()) for r in records)
    for size in (0, 3, 6, 7):
        c = verify_checkpoint(numbered(directory, size).read_text(), vkey, ORIGIN, ORIGIN)
        assert (c.size, c.root) == (size, tree.root(size))
    assert (directory / LATEST).read_bytes() == numbered(directory, 7).read_bytes()


def test_time_based_checkpoints_with_a_fake_clock(tmp_path: Path, signer: LocalKeySigner) -> None:
    now = [1000.0]
    log = open_log(
        tmp_path / "log",
        signer,
        checkpoint_every=1000,
        checkpoint_interval_s=3600,
        clock=lambda: now[0],
    )
    try:
        log.append(**request(0))
        assert log.signed_size == 0
        now[0] += 3599
        log.append(**request(1))
        assert log.signed_size == 0
        now[0] += 2
        log.append(**request(2))
        assert log.signed_size == 3
        assert log.status()["signedSize"] == 3 and log.status()["checkpointFailure"] is None
        assert log.checkpoint().startswith(f"{ORIGIN}\n3\n")
    finally:
        log.close()


def test_64_threads_lose_nothing_and_keep_seq_order(tmp_path: Path, signer: LocalKeySigner) -> None:
    directory = tmp_path / "log"
    log = open_log(directory, signer, checkpoint_every=100)
    per_thread, threads = 40, 64
    barrier = threading.Barrier(threads)
    results: list[list[int]] = [[] for _ in range(threads)]

    def work(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            r = log.append(**request(t * 1000 + i, time=None))
            results[t].append(r.seq)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    log.close()
    total = threads * per_thread
    assert sorted(s for seqs in results for s in seqs) == list(range(total))
    assert all(seqs == sorted(seqs) for seqs in results)
    records = [decode_record(raw) for raw in tamper.raw_records(directory)]
    assert [r.seq for r in records] == list(range(total))
    assert len({r.request_id for r in records}) == total
    assert len(tamper.lines(directory)) == total
    a = verify_log(directory, signer.public_key)
    assert (a.result, a.records, a.signed, a.findings) == ("ok", total, total, ())


def test_reopening_continues_the_log(
    tmp_path: Path, signer: LocalKeySigner, write_log: WriteLog
) -> None:
    directory = tmp_path / "log"
    first = write_log(directory, 5, checkpoint_every=2)
    with open_log(directory, signer) as log:
        assert log.size == 5 and log.signed_size == 5
        more = [log.append(**request(i)) for i in range(5, 8)]
    assert [r.seq for r in more] == [5, 6, 7]
    assert more[0].prev == leaf_hash(first[-1].to_cbor()).hex()
    a = verify_log(directory, signer.public_key)
    assert (a.result, a.records, a.signed, a.findings) == ("ok", 8, 8, ())


def test_reopening_repairs_a_crash(
    tmp_path: Path, signer: LocalKeySigner, write_log: WriteLog
) -> None:
    directory = tmp_path / "log"
    write_log(directory, 7, checkpoint_every=5, close=False)
    records, lines = tamper.raw_records(directory), tamper.lines(directory)
    tamper.write_records(directory, records, tail=records[3][:200])  # a torn record
    tamper.write_lines(directory, lines[:-1])  # the last line never written
    before = verify_log(directory, signer.public_key)
    assert before.result == "ok" and {f.kind.value for f in before.findings} == {
        "unsigned-tail",
        "torn-tail",
    }
    with open_log(directory, signer) as log:
        assert log.size == 7 and log.signed_size == 7  # the unsigned tail is signed on opening
        log.append(**request(7))
    assert tamper.raw_records(directory)[:7] == records
    assert tamper.lines(directory)[:7] == lines
    after = verify_log(directory, signer.public_key)
    assert (after.result, after.records, after.findings) == ("ok", 8, ())


def test_reopening_cuts_a_partial_line(
    tmp_path: Path, signer: LocalKeySigner, write_log: WriteLog
) -> None:
    directory = tmp_path / "log"
    write_log(directory, 3, close=False)
    lines = tamper.lines(directory)
    tamper.write_lines(directory, lines[:-1], tail=lines[-1][:30])
    with open_log(directory, signer):
        pass
    assert tamper.lines(directory) == lines
    assert verify_log(directory, signer.public_key).findings == ()


def test_a_tampered_log_is_refused(
    tmp_path: Path, signer: LocalKeySigner, write_log: WriteLog
) -> None:
    directory = tmp_path / "log"
    write_log(directory, 6, checkpoint_every=2)
    tamper.replace_in_record(directory, 2, b"python-httpx", b"Python-httpx")
    size = (directory / RECORDS).stat().st_size
    with pytest.raises(VerificationError, match="tampered with, refusing to append") as info:
        open_log(directory, signer)
    assert "edited seq 2 (request req-0002)" in info.value.message
    assert (directory / RECORDS).stat().st_size == size
    with pytest.raises(VerificationError, match="bad-checkpoint"):
        open_log(directory, generate_key(KeyType.ED25519))
    with pytest.raises(BadInputError, match="was written for origin"):
        InferenceLog.open(directory, signer, origin="other.example/log", checkpoint_interval_s=0)


def test_one_writer_per_directory(tmp_path: Path, signer: LocalKeySigner) -> None:
    with (
        open_log(tmp_path / "log", signer),
        pytest.raises(StoreError, match="open for writing by another process"),
    ):
        open_log(tmp_path / "log", signer)
    with open_log(tmp_path / "log", signer):  # released on close
        pass


def test_start_up_errors_name_the_directory(tmp_path: Path, signer: LocalKeySigner) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInputError, match=f"{tmp_path / 'file'}: not a directory"):
        open_log(tmp_path / "file", signer)
    with pytest.raises(StoreError, match="cannot create the directory"):
        open_log(tmp_path / "file" / "log", signer)
    with pytest.raises(StoreError, match=f"inference log {tmp_path / 'log'}: only .* free") as info:
        open_log(tmp_path / "log", signer, min_free_bytes=2**62)
    assert info.value.remedy and "free space" in info.value.remedy
    with pytest.raises(KeyLoadError, match="cannot sign C2SP signed notes"):
        open_log(tmp_path / "rsa", generate_key(KeyType.RSA_3072))
    assert not (tmp_path / "rsa").exists()


def test_an_unwritable_directory(tmp_path: Path, signer: LocalKeySigner) -> None:
    if os.geteuid() == 0:  # root writes through permission bits: use a directory nobody may write
        target = Path("/sys/kernel")
        if not target.is_dir():
            pytest.skip("no /sys/kernel")
    else:
        target = tmp_path / "ro"
        target.mkdir()
        target.chmod(0o500)
    with pytest.raises(StoreError, match=f"inference log {target}: cannot write there"):
        open_log(target, signer)


def test_invalid_values_write_nothing(tmp_path: Path, signer: LocalKeySigner) -> None:
    with open_log(tmp_path / "log", signer) as log:
        with pytest.raises(BadInputError, match="status 100-999"):
            log.append(**request(0, status=42))
        with pytest.raises(BadInputError, match="not a JSON value"):
            log.append(**request(0, output={"x": b"bytes"}))
        with pytest.raises(BadInputError, match="non-finite"):
            log.append(**request(0, output=[float("nan")]))
        with pytest.raises(BadInputError, match="timezone-aware"):
            log.append(**request(0, time=datetime(2025, 1, 1)))
        assert log.size == 0 and (tmp_path / "log" / RECORDS).stat().st_size == 0
        assert log.append(**request(0)).seq == 0


def test_closed_log_refuses_appends(tmp_path: Path, signer: LocalKeySigner) -> None:
    log = open_log(tmp_path / "log", signer)
    log.close()
    log.close()  # idempotent
    with pytest.raises(StoreError, match="is closed"):
        log.append(**request(0))
    with pytest.raises(StoreError, match="is closed"):
        log.checkpoint()


DISK_FULL_CHILD = r"""
import resource, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from mlspec_attest.errors import StoreError
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.signing.keys import load_private_key
from tests.log.conftest import ORIGIN, request

directory = Path(sys.argv[1])
log = InferenceLog.open(directory, load_private_key(directory.parent / "logkey.key"), origin=ORIGIN,
                        checkpoint_interval_s=0)
for i in range(3):
    log.append(**request(i))
size = (directory / "records.cbor").stat().st_size
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, size + 100))
try:
    log.append(**request(3))
except StoreError as exc:
    print("REFUSED", exc.message, "|", exc.remedy)
print("SIZE", (directory / "records.cbor").stat().st_size == size, log.size)
log.close()
"""


def test_a_full_disk_raises_and_leaves_no_partial_record(
    tmp_path: Path, signer: LocalKeySigner, key_files: tuple[Path, Path]
) -> None:
    directory = tmp_path / "log"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", DISK_FULL_CHILD, str(directory), str(root)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "REFUSED cannot write" in done.stdout and "free space" in done.stdout
    assert "SIZE True 3" in done.stdout
    a = verify_log(directory, signer.public_key)
    assert (a.result, a.records, a.findings) == ("ok", 3, ())
