"""The audit names each kind of tampering (and a crash's traces) with seq and request id.

Every scenario is audited twice, by the fast pass with its exact fallback and by the
exact reading alone: both must give the same verdict and the same findings.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlspec_attest.log.audit import LogAudit, verify_log
from mlspec_attest.log.files import LATEST, RECORDS, numbered
from mlspec_attest.log.findings import Kind
from mlspec_attest.log.ncsa import line_of_map
from mlspec_attest.log.note import note_key, sign_note
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key
from tests.log import tamper
from tests.log.conftest import ORIGIN, WriteLog

N = 20  # requests; checkpoints every 5: sizes 0, 5, 10, 15, 20


def audit(directory: Path, signer: LocalKeySigner, **options: Any) -> LogAudit:
    fast = verify_log(directory, signer.public_key, **options)
    exact = verify_log(directory, signer.public_key, exact=True, **options)
    assert _summary(fast) == _summary(exact)
    assert exact.mode == "exact"
    return fast


def _summary(a: LogAudit) -> tuple[Any, ...]:
    return (
        a.result,
        a.records,
        a.signed,
        [(f.kind, f.seq, f.request_id, f.last_seq) for f in a.findings],
    )


def found(a: LogAudit) -> list[tuple[str, int | None, str | None]]:
    return [(f.kind.value, f.seq, f.request_id) for f in a.findings]


@pytest.fixture
def log(tmp_path: Path, write_log: WriteLog) -> Path:
    directory = tmp_path / "log"
    write_log(directory, N, checkpoint_every=5)
    return directory


def test_a_clean_log_verifies_fast(log: Path, signer: LocalKeySigner) -> None:
    a = audit(log, signer)
    assert (a.result, a.records, a.signed, a.findings, a.mode) == ("ok", N, N, (), "fast")
    assert a.origin == ORIGIN and a.key_name == ORIGIN
    assert [c.checkpoint.size for c in a.checkpoints if c.checkpoint] == [0, 5, 10, 15, 20, 20]
    doc = a.to_json()
    assert doc["result"] == "ok" and doc["records"] == N and doc["findings"] == []


def test_edit_one_byte_of_a_record(log: Path, signer: LocalKeySigner) -> None:
    tamper.replace_in_record(log, 7, b"python-httpx", b"pythoN-httpx")
    a = audit(log, signer)
    assert a.result == "tampered"
    assert found(a) == [("edited", 7, "req-0007")]
    assert "line_digest" in a.findings[0].message and a.findings[0].remedy


def test_edit_a_byte_that_breaks_the_encoding(log: Path, signer: LocalKeySigner) -> None:
    tamper.flip_byte(log, 7, 0)  # the map header
    a = audit(log, signer)
    assert found(a) == [("edited", 7, "req-0007")]
    assert "not a CBOR record" in a.findings[0].message or "not a CBOR map" in a.findings[0].message


def test_edit_the_prev_field(log: Path, signer: LocalKeySigner) -> None:
    raw = tamper.raw_records(log)[7]
    tamper.flip_byte(log, 7, len(raw) - 80, 0x01)  # inside pv (the last 101..69 bytes)
    a = audit(log, signer)
    assert found(a) == [("edited", 7, "req-0007")]
    assert "prev field" in a.findings[0].message


def test_edit_the_last_record_consistently_is_caught_by_the_checkpoint(
    log: Path, signer: LocalKeySigner
) -> None:
    records = tamper.raw_records(log)
    m = cbor2.loads(records[-1])
    m["o"] = {"outputs": [{"name": "predict", "data": [2, 0.99]}]}
    line = line_of_map(m).encode()
    m["nl"] = hashlib.sha256(line).digest()
    records[-1] = cbor2.dumps(m, canonical=True)
    tamper.write_records(log, records)
    tamper.write_lines(log, [*tamper.lines(log)[:-1], line])
    a = audit(log, signer)
    assert found(a) == [("edited", 19, "req-0019")]
    assert "checkpoint 20" in a.findings[0].message


def test_delete_a_record(log: Path, signer: LocalKeySigner) -> None:
    records = tamper.raw_records(log)
    tamper.write_records(log, records[:7] + records[8:])
    a = audit(log, signer)
    assert a.result == "tampered"
    assert found(a) == [("deleted", 7, "req-0007")]
    assert a.findings[0].last_seq == 7


def test_delete_a_record_and_its_line(log: Path, signer: LocalKeySigner) -> None:
    records, lines = tamper.raw_records(log), tamper.lines(log)
    tamper.write_records(log, records[:7] + records[9:])
    tamper.write_lines(log, lines[:7] + lines[9:])
    a = audit(log, signer)
    assert found(a) == [("deleted", 7, None)]
    assert a.findings[0].last_seq == 8


def test_insert_a_copied_record(log: Path, signer: LocalKeySigner) -> None:
    records = tamper.raw_records(log)
    tamper.write_records(log, [*records[:11], records[3], *records[11:]])
    a = audit(log, signer)
    assert found(a) == [("inserted", 3, "req-0003")]
    assert "position 11" in a.findings[0].message


def test_swap_two_records(log: Path, signer: LocalKeySigner) -> None:
    records = tamper.raw_records(log)
    records[5], records[6] = records[6], records[5]
    tamper.write_records(log, records)
    a = audit(log, signer)
    assert [f.kind for f in a.findings] == [Kind.REORDERED]
    assert (a.findings[0].seq, a.findings[0].request_id) in {(5, "req-0005"), (6, "req-0006")}


def test_truncate_signed_records(log: Path, signer: LocalKeySigner) -> None:
    records = tamper.raw_records(log)
    tamper.write_records(log, records[:17])
    a = audit(log, signer)
    assert found(a) == [("truncated-signed", 17, "req-0017")]
    assert a.findings[0].last_seq == 19


def test_truncate_signed_records_and_lines(log: Path, signer: LocalKeySigner) -> None:
    records, lines = tamper.raw_records(log), tamper.lines(log)
    tamper.write_records(log, records[:12], tail=records[12][:40])
    tamper.write_lines(log, lines[:12])
    a = audit(log, signer)
    assert found(a) == [("truncated-signed", 12, None)]
    assert "partial record" in a.findings[0].message


def test_remove_everything_but_the_checkpoints(log: Path, signer: LocalKeySigner) -> None:
    (log / RECORDS).unlink()
    a = audit(log, signer)
    assert a.result == "tampered"
    assert found(a)[0][:2] == ("truncated-signed", 0)


def test_remove_every_checkpoint(log: Path, signer: LocalKeySigner) -> None:
    for path in (log / "checkpoints").iterdir():
        path.unlink()
    (log / LATEST).unlink()
    a = audit(log, signer, key_name=ORIGIN)
    assert a.result == "tampered"
    assert [f.kind for f in a.findings] == [Kind.UNSIGNED_TAIL, Kind.BAD_CHECKPOINT]
    assert "checkpoints were removed" in a.findings[1].message


def test_edit_an_access_log_line(log: Path, signer: LocalKeySigner) -> None:
    lines = tamper.lines(log)
    lines[4] = lines[4].replace(b'" 200 61 "', b'" 200 99 "')
    tamper.write_lines(log, lines)
    a = audit(log, signer)
    assert found(a) == [("access-log-mismatch", 4, "req-0004")]


def test_delete_and_swap_access_log_lines(log: Path, signer: LocalKeySigner) -> None:
    lines = tamper.lines(log)
    tamper.write_lines(log, lines[:4] + lines[5:])
    assert found(audit(log, signer)) == [("access-log-mismatch", 4, "req-0004")]
    lines[8], lines[9] = lines[9], lines[8]
    tamper.write_lines(log, lines)
    assert [f[0] for f in found(audit(log, signer))] == ["access-log-mismatch"]


def test_replace_a_checkpoint_signature(log: Path, signer: LocalKeySigner) -> None:
    path = numbered(log, 10)
    body = path.read_text().split("\n\n")[0] + "\n"
    forger = generate_key(KeyType.ED25519)
    path.write_text(sign_note(body, forger, ORIGIN))
    a = audit(log, signer)
    assert a.result == "tampered"
    assert [f.kind for f in a.findings] == [Kind.BAD_CHECKPOINT]
    assert "checkpoints/10.checkpoint" in a.findings[0].message
    assert "no signature by key" in a.findings[0].message


def test_flip_a_bit_of_a_checkpoint_signature(log: Path, signer: LocalKeySigner) -> None:
    path = log / LATEST
    text, line = path.read_text().split("\n\n")
    prefix, blob = line.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[20] ^= 0x40
    path.write_text(f"{text}\n\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n")
    a = audit(log, signer)
    assert [(f.kind, "does not verify" in f.message) for f in a.findings] == [
        (Kind.BAD_CHECKPOINT, True)
    ]


def test_a_checkpoint_for_a_larger_tree_than_the_name_says(
    log: Path, signer: LocalKeySigner
) -> None:
    numbered(log, 5).write_bytes(numbered(log, 10).read_bytes())
    a = audit(log, signer)
    assert [f.kind for f in a.findings] == [Kind.BAD_CHECKPOINT]
    assert "not 5" in a.findings[0].message


def test_wrong_key_and_wrong_origin(log: Path, signer: LocalKeySigner) -> None:
    other = generate_key(KeyType.ED25519)
    a = verify_log(log, other.public_key, key_name=ORIGIN)
    assert a.result == "tampered" and a.signed == 0
    assert {f.kind for f in a.findings} == {Kind.BAD_CHECKPOINT, Kind.UNSIGNED_TAIL}
    b = verify_log(log, signer.public_key, key_name=ORIGIN, origin="elsewhere.example/log")
    assert b.result == "tampered" and all(
        "not the log's origin" in f.message for f in b.findings if f.kind is Kind.BAD_CHECKPOINT
    )


def test_verifier_key_text_works_as_the_key(log: Path, signer: LocalKeySigner) -> None:
    key = note_key(signer.public_key, ORIGIN)
    assert verify_log(log, key).ok


def test_unsigned_tail_after_a_crash(
    tmp_path: Path, write_log: WriteLog, signer: LocalKeySigner
) -> None:
    directory = tmp_path / "log"
    write_log(directory, 12, checkpoint_every=5, close=False)
    a = audit(directory, signer)
    assert a.result == "ok" and a.signed == 10 and a.records == 12
    assert found(a) == [("unsigned-tail", 10, "req-0010")]
    assert a.findings[0].last_seq == 11 and a.warnings == a.findings


def test_torn_record_and_torn_line(
    tmp_path: Path, write_log: WriteLog, signer: LocalKeySigner
) -> None:
    directory = tmp_path / "log"
    write_log(directory, 12, checkpoint_every=5, close=False)
    records, lines = tamper.raw_records(directory), tamper.lines(directory)
    tamper.write_records(directory, records, tail=records[0][:100])
    a = audit(directory, signer)
    assert a.result == "ok"
    assert found(a) == [("unsigned-tail", 10, "req-0010"), ("torn-tail", 12, None)]
    tamper.write_records(directory, records)
    tamper.write_lines(directory, lines[:-1], tail=lines[-1][:50])
    b = audit(directory, signer)
    assert b.result == "ok"
    assert found(b) == [("unsigned-tail", 10, "req-0010"), ("torn-tail", 11, "req-0011")]
    assert "partial" in b.findings[1].message


def test_a_partial_last_line_must_begin_its_records_line(
    tmp_path: Path, write_log: WriteLog, signer: LocalKeySigner
) -> None:
    directory = tmp_path / "log"
    write_log(directory, 12, checkpoint_every=5, close=False)
    lines = tamper.lines(directory)
    tamper.write_lines(directory, lines[:-1], tail=lines[-1][:-1] + b"X")
    a = audit(directory, signer)
    assert a.result == "tampered"
    assert ("access-log-mismatch", 11, "req-0011") in found(a)


def test_a_torn_record_inside_the_signed_part_is_tampering(
    log: Path, signer: LocalKeySigner
) -> None:
    records = tamper.raw_records(log)
    tamper.write_records(log, records[:-1], tail=records[-1][:-3])
    a = audit(log, signer)
    assert found(a) == [("truncated-signed", 19, "req-0019")]


def test_unreadable(tmp_path: Path, log: Path, signer: LocalKeySigner) -> None:
    assert verify_log(tmp_path / "missing", signer.public_key).result == "unreadable"
    (tmp_path / "file").write_text("x")
    assert "not a directory" in (verify_log(tmp_path / "file", signer.public_key).problem or "")
    (log / RECORDS).unlink()
    os.symlink("/dev/zero", log / RECORDS)
    a = verify_log(log, signer.public_key)
    assert a.result == "unreadable" and "not a regular file" in (a.problem or "")


@pytest.fixture(scope="module")
def pristine(
    tmp_path_factory: pytest.TempPathFactory, signer: LocalKeySigner
) -> tuple[Path, bytes]:
    from mlspec_attest.log.writer import InferenceLog
    from tests.log.conftest import request

    directory = tmp_path_factory.mktemp("pristine") / "log"
    with InferenceLog.open(
        directory, signer, origin=ORIGIN, checkpoint_every=4, checkpoint_interval_s=0
    ) as w:
        for i in range(9):
            w.append(**request(i))
    return directory, (directory / RECORDS).read_bytes()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_byte_edit_is_never_ok(
    data: st.DataObject, pristine: tuple[Path, bytes], signer: LocalKeySigner
) -> None:
    directory, original = pristine
    raw = bytearray(original)
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    try:
        (directory / RECORDS).write_bytes(bytes(raw))
        a = verify_log(directory, signer.public_key)
        assert a.result == "tampered", (i, found(a))
        b = verify_log(directory, signer.public_key, exact=True)
        assert _summary(a) == _summary(b)
    finally:
        (directory / RECORDS).write_bytes(original)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_access_log_edit_is_never_ok(
    data: st.DataObject, pristine: tuple[Path, bytes], signer: LocalKeySigner
) -> None:
    directory, _ = pristine
    path = directory / "access.log"
    original = path.read_bytes()
    raw = bytearray(original)
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    try:
        path.write_bytes(bytes(raw))
        a = verify_log(directory, signer.public_key)
        assert a.result == "tampered", (i, found(a))
        assert _summary(a) == _summary(verify_log(directory, signer.public_key, exact=True))
    finally:
        path.write_bytes(original)
