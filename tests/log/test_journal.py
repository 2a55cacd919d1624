"""Journal mode: the server writes each request's checked values to a write-ahead journal
and answers; a writer process makes and signs the records. The same bytes as the
in-process writer; nothing answered is lost when either process dies; a journal edited,
forged or cut short is found; what no record can hold is refused before anything is
written."""

from __future__ import annotations

import asyncio
import atexit
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.errors import StoreError, UsageError
from mlspec_attest.log import journal
from mlspec_attest.log.audit import verify_log
from mlspec_attest.log.files import ACCESS_LOG, LATEST, RECORDS
from mlspec_attest.log.journal import JOURNAL, JournalWriter, journal_key, segments
from mlspec_attest.log.journal_child import UNLOGGED_KEY
from mlspec_attest.log.journaled import JournaledLog
from mlspec_attest.log.prepare import RecordMaker
from mlspec_attest.log.record import RecordError, decode_record
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.signing.keys import (
    KeyType,
    LocalKeySigner,
    generate_key,
    private_key_der,
    write_key_pair,
)
from tests.log import tamper
from tests.log.conftest import ORIGIN, request


def open_journaled(directory: Path, signer: LocalKeySigner, **options: Any) -> JournaledLog:
    options.setdefault("checkpoint_interval_s", 0)
    return JournaledLog.open(directory, signer, origin=ORIGIN, **options)


def audit_of(directory: Path, signer: LocalKeySigner) -> tuple[bool, int, int]:
    audit = verify_log(directory, signer.public_key, origin=ORIGIN)
    return audit.ok, audit.records, audit.signed


def ids(directory: Path) -> list[str]:
    return [decode_record(raw).request_id for raw in tamper.raw_records(directory)]


def stopped_writer(log: JournaledLog) -> None:
    """Freeze the writer: what is journaled from now on stays in the journal only."""
    os.kill(log.pid, signal.SIGSTOP)


def kill_both(log: JournaledLog) -> None:
    """The writer and the server die: the writer killed, the server never closes."""
    os.kill(log.pid, signal.SIGKILL)
    log._child.wait()
    log._child_gone = log._closed = True  # as if this process were gone too
    atexit.unregister(log.close)
    log._journal.close()
    log._conn.close()


def test_the_files_are_byte_identical_to_the_in_process_writers(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    with InferenceLog.open(tmp_path / "inline", signer, origin=ORIGIN, checkpoint_every=4) as log:
        for i in range(10):
            log.append(**request(i))
    with open_journaled(tmp_path / "journal", signer, checkpoint_every=4) as writer:
        for i in range(10):
            assert writer.append(**request(i)) is None
        writer.sync()
        assert (writer.size, writer.journaled) == (10, 10)
    for name in (RECORDS, ACCESS_LOG, LATEST):
        assert (tmp_path / "journal" / name).read_bytes() == (
            tmp_path / "inline" / name
        ).read_bytes()
    assert audit_of(tmp_path / "journal", signer) == (True, 10, 10)
    assert segments(tmp_path / "journal") == []  # all in the log, signed: journal removed


def test_appends_from_an_event_loop_never_wait_for_the_writer(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    async def serve(log: JournaledLog) -> None:
        for i in range(300):
            assert log.append(**request(i, time=None)) is None
        await asyncio.sleep(0)  # the loop's turn ends: the writer is told once

    with open_journaled(tmp_path / "log", signer) as log:
        stopped_writer(log)  # a writer that does nothing cannot hold a request up
        asyncio.run(serve(log))
        assert log.journaled == 300 and log.size == 0
        os.kill(log.pid, signal.SIGCONT)
        log.sync()
        assert log.size == 300
    assert audit_of(tmp_path / "log", signer) == (True, 300, 300)
    assert ids(tmp_path / "log") == [f"req-{i:04d}" for i in range(300)]


def test_when_both_processes_die_reopening_commits_what_was_journaled(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    directory = tmp_path / "log"
    log = open_journaled(directory, signer)
    log.append(**request(0))
    log.sync()
    stopped_writer(log)
    for i in range(1, 6):
        log.append(**request(i))  # answered: in the journal, not yet in the log
    kill_both(log)
    assert audit_of(directory, signer)[1] == 1
    with open_journaled(directory, signer) as again:
        assert again.size == 6  # committed and signed before the server hears "ready"
        again.append(**request(6))
    assert audit_of(directory, signer) == (True, 7, 7)
    assert ids(directory) == [f"req-{i:04d}" for i in range(7)]


SERVER_DIES = """
import os, sys
from pathlib import Path
from mlspec_attest.log.journaled import JournaledLog
from mlspec_attest.log.prepare import RecordMaker
from mlspec_attest.signing.keys import load_private_key
from tests.log.conftest import ORIGIN, request
log = JournaledLog.open(Path(sys.argv[1]), load_private_key(Path(sys.argv[2])),
                        origin=ORIGIN, checkpoint_interval_s=0)
for i in range(5):
    log.append(**request(i))
print(log.pid, flush=True)
os._exit(0)  # no close, no atexit: as a server killed at this point
"""


def test_when_the_server_dies_the_writer_commits_and_signs_the_journal(
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
    while Path(f"/proc/{writer}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert audit_of(directory, signer) == (True, 5, 5)
    assert segments(directory) == []


def test_a_killed_writer_refuses_later_requests_and_loses_none_it_answered(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    directory = tmp_path / "log"
    log = open_journaled(directory, signer)
    stopped_writer(log)
    log.append(**request(0))
    os.kill(log.pid, signal.SIGKILL)
    log._child.wait()
    with pytest.raises(StoreError, match="writer process"):
        log.sync()
    with pytest.raises(StoreError, match="unusable"):
        log.append(**request(1))
    log.close()
    with open_journaled(directory, signer) as again:
        assert again.size == 1
    assert ids(directory) == ["req-0000"]


def _journal_file(directory: Path) -> Path:
    (only,) = segments(directory)
    return only[1]


@pytest.mark.parametrize(
    ("edit", "found"),
    [
        (lambda data: data[:30] + bytes([data[30] ^ 1]) + data[31:], "authentication"),
        (lambda data: data[:4] + b"\x00" * 16 + data[20:], "authentication"),
        (lambda data: b"\xff\xff\xff\x7f" + data[4:], "longer than any record"),
    ],
    ids=["payload-edited", "mac-zeroed", "length-forged"],
)
def test_an_edited_journal_is_refused_and_the_log_stays_as_it_was(
    tmp_path: Path, signer: LocalKeySigner, edit: Any, found: str
) -> None:
    directory = tmp_path / "log"
    log = open_journaled(directory, signer)
    stopped_writer(log)
    log.append(**request(0))
    kill_both(log)
    path = _journal_file(directory)
    path.write_bytes(edit(path.read_bytes()))
    with pytest.raises(StoreError, match=found) as refused:
        open_journaled(directory, signer)
    assert str(path) in refused.value.message
    assert audit_of(directory, signer) == (True, 0, 0)
    assert path.exists()  # kept for whoever investigates


def test_an_entry_written_with_another_key_fails_its_authentication(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    directory = tmp_path / "log"
    open_journaled(directory, signer).close()
    other = journal_key(private_key_der(generate_key(KeyType.ED25519)))
    forged = JournalWriter(directory, other, 0)
    forged.append(_fields(request(0)))
    forged.close()
    with pytest.raises(StoreError, match="authentication"):
        open_journaled(directory, signer)


def _fields(values: dict[str, Any]) -> tuple[Any, ...]:
    return RecordMaker().fields(values)  # type: ignore[arg-type]


def test_an_entry_out_of_place_is_refused(tmp_path: Path, signer: LocalKeySigner) -> None:
    directory = tmp_path / "log"
    open_journaled(directory, signer).close()
    key = journal_key(private_key_der(signer))
    ahead = JournalWriter(directory, key, 3)  # index 3 where 0 is due: a gap
    ahead.append(_fields(request(0)))
    ahead.close()
    with pytest.raises(StoreError, match="entry 3 where 0 was due"):
        open_journaled(directory, signer)


def test_a_last_entry_cut_short_by_a_crash_was_never_answered(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    directory = tmp_path / "log"
    log = open_journaled(directory, signer)
    stopped_writer(log)
    for i in range(3):
        log.append(**request(i))
    kill_both(log)
    path = _journal_file(directory)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 7])  # the third write, torn
    with open_journaled(directory, signer) as again:
        assert again.size == 2
        again.append(**request(9))  # a new segment: nothing follows the torn entry
    assert ids(directory) == ["req-0000", "req-0001", "req-0009"]
    assert audit_of(directory, signer) == (True, 3, 3)


def test_a_value_no_record_holds_is_refused_before_anything_is_written(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    with open_journaled(tmp_path / "log", signer) as log:
        with pytest.raises(RecordError, match="non-finite"):
            log.append(**request(0, output=[float("nan")]))
        with pytest.raises(RecordError, match="integers"):
            log.append(**request(0, status="200"))
        assert log.journaled == 0
        log.append(**request(1))  # the log goes on
        log.sync()
    assert ids(tmp_path / "log") == ["req-0001"]


def test_a_record_over_the_bound_keeps_its_place_without_its_values(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    # fits the journal (MessagePack is leaner than the record's CBOR), not a record
    huge = "x" * (journal.MAX_ENTRY_BYTES - 450)  # journaled in ~415 bytes more, a record ~520
    with open_journaled(tmp_path / "log", signer) as log:
        log.append(**request(0, output=huge))
        log.append(**request(1))
        log.sync()
    kept = [decode_record(raw) for raw in tamper.raw_records(tmp_path / "log")]
    assert [r.request_id for r in kept] == ["req-0000", "req-0001"]
    assert set(kept[0].output) == {UNLOGGED_KEY}
    assert "inference record" in kept[0].output[UNLOGGED_KEY]
    assert audit_of(tmp_path / "log", signer) == (True, 2, 2)


@pytest.fixture
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "SEGMENT_BYTES", 4096)


@pytest.mark.usefixtures("small_segments")
def test_segments_roll_over_and_covered_ones_are_removed(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    directory = tmp_path / "log"
    with open_journaled(directory, signer, checkpoint_every=50) as log:
        for i in range(400):
            log.append(**request(i))
        log.sync()
        log.append(**request(400))
        log.sync()  # the writer removes covered segments before it reads on
        firsts = [first for first, _ in segments(directory)]
        assert len(firsts) >= 1 and firsts[0] >= 300, firsts
    assert ids(directory) == [f"req-{i:04d}" for i in range(401)]
    assert audit_of(directory, signer) == (True, 401, 401)
    assert segments(directory) == []


@pytest.fixture
def file_size_limit() -> Iterator[None]:
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)


KEY = b"k" * 32  # a journal key for tests that drive JournalWriter and JournalReader directly
NOW = 1_700_000_000_000_000_000


def _journaled(directory: Path, count: int) -> JournalWriter:
    """A journal writer (open) that has journaled requests 0 .. count-1."""
    writer = JournalWriter(directory, KEY, 0)
    maker = RecordMaker()
    for i in range(count):
        writer.append(maker.fields(request(i), NOW))
    return writer


def _entry_offset(data: bytes, index: int) -> int:
    """Where entry ``index`` (from 0) starts in a segment's bytes."""
    at = 0
    for _ in range(index):
        at += 20 + int.from_bytes(data[at : at + 4], "little")
    return at


@pytest.mark.usefixtures("file_size_limit", "small_segments")
def test_a_segment_the_disk_refuses_fails_its_request_and_later_ones(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    """Space is reserved a segment at a time: a full disk refuses the request that needed
    a new segment, before any of it is written, and every later one; the log keeps every
    request answered before."""
    directory = tmp_path / "log"
    log = open_journaled(directory, signer)
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, hard))  # no room for a new 4 KiB segment
    answered = 0
    try:
        with pytest.raises(StoreError, match="cannot reserve"):
            for i in range(100):
                log.append(**request(i))
                answered += 1
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    assert 0 < answered < 100
    with pytest.raises(StoreError, match="unusable"):
        log.append(**request(100))
    log.close()
    with open_journaled(directory, signer):
        pass
    assert ids(directory) == [f"req-{i:04d}" for i in range(answered)]
    assert audit_of(directory, signer) == (True, answered, answered)


def _crashed_segment(directory: Path, signer: LocalKeySigner, count: int) -> Path:
    """A journal as a server's crash leaves it: ``count`` whole entries, then the zeros of
    the segment's reserved space (read while the server still has it mapped), and no
    writer to have committed any."""
    log = open_journaled(directory, signer)
    stopped_writer(log)
    for i in range(count):
        log.append(**request(i))
    path = _journal_file(directory)
    left = path.read_bytes()
    kill_both(log)  # closes the mapping, which cuts the segment back: put back the crash's
    path.write_bytes(left)
    assert len(left) == journal.SEGMENT_BYTES
    return path


def test_a_crash_leaves_whole_entries_then_zeros_and_reopening_commits_them(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    directory = tmp_path / "log"
    _crashed_segment(directory, signer, 3)
    with open_journaled(directory, signer) as again:
        assert again.size == 3
    assert ids(directory) == ["req-0000", "req-0001", "req-0002"]
    assert audit_of(directory, signer) == (True, 3, 3)


def test_an_entry_whose_length_was_not_copied_yet_was_never_answered(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    """The length is copied last: a crash before it leaves the entry's bytes behind a zero
    length, which ends the segment's entries (that request was not answered)."""
    directory = tmp_path / "log"
    path = _crashed_segment(directory, signer, 3)
    data = bytearray(path.read_bytes())
    at = _entry_offset(data, 2)  # the third entry
    data[at : at + 4] = bytes(4)
    path.write_bytes(bytes(data))
    with open_journaled(directory, signer) as again:
        assert again.size == 2
    assert ids(directory) == ["req-0000", "req-0001"]


def test_a_live_reader_waits_for_entries_it_was_not_told_are_whole(tmp_path: Path) -> None:
    """Beyond the index the server announced, an entry that does not read back whole may
    still be being copied (another CPU can see the copy in any order): not tampering, read
    again later. Below it, the same bytes are tampering."""
    key = KEY
    writer = _journaled(tmp_path, 2)
    ((_, path),) = segments(tmp_path)
    with open(path, "r+b") as handle:  # the second entry's payload, half copied
        first = int.from_bytes(handle.read(4), "little")
        handle.seek(20 + first + 20 + 5)
        handle.write(b"\0" * 8)
    reader = journal.JournalReader(tmp_path, key, 0)
    reader.complete_below = 1
    assert [fields[1] for fields in reader.read(10)] == ["req-0000"]
    assert reader.read(10) == []  # still waiting, nothing raised
    reader.complete_below = 2
    with pytest.raises(StoreError, match="authentication"):
        reader.read(10)
    reader.close()
    writer.close()


def test_the_journal_is_private_to_the_server(tmp_path: Path, signer: LocalKeySigner) -> None:
    with open_journaled(tmp_path / "log", signer) as log:
        log.append(**request(0))
        assert (tmp_path / "log" / JOURNAL).stat().st_mode & 0o777 == 0o700
        assert _journal_file(tmp_path / "log").stat().st_mode & 0o777 == 0o600


def test_a_misspelt_or_missing_value_is_named_and_nothing_is_written(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    missing = request(0)
    del missing["user"]
    with open_journaled(tmp_path / "log", signer) as log:
        with pytest.raises(UsageError, match="unexpected keyword argument 'user_id'"):
            log.append(**request(0, user_id="alice"))
        with pytest.raises(UsageError, match="missing keyword argument 'user'"):
            log.append(**missing)
        assert log.journaled == 0


def test_a_rewound_read_across_segments_reads_the_same_entries_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the writer reads and then could not commit is read again from the mark, even
    after the read moved on to a later segment (and closed the earlier one)."""
    monkeypatch.setattr(journal, "SEGMENT_BYTES", 600)  # a few entries per segment
    key = KEY
    _journaled(tmp_path, 9).close()
    assert len(segments(tmp_path)) > 2
    reader = journal.JournalReader(tmp_path, key, 0)
    head = reader.read(2)  # the first segment is open now
    mark = reader.mark()
    rest = reader.read(100)
    reader.rewind(mark)
    assert reader.read(100) == rest
    assert [fields[1] for fields in head + rest] == [f"req-{i:04d}" for i in range(9)]
    reader.close()


def test_a_segment_is_reserved_without_posix_fallocate_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the system has no posix_fallocate (macOS), the space is reserved by writing
    zeros: the segment reads back the same."""
    monkeypatch.delattr(os, "posix_fallocate")
    monkeypatch.setattr(journal, "SEGMENT_BYTES", 3 * 1024 * 1024 + 5)
    key = KEY
    writer = JournalWriter(tmp_path, key, 0)
    ((_, path),) = segments(tmp_path)
    assert path.stat().st_size == journal.SEGMENT_BYTES
    writer.append(RecordMaker().fields(request(0), NOW))
    reader = journal.JournalReader(tmp_path, key, 0)
    assert [fields[1] for fields in reader.read(10)] == ["req-0000"]
    reader.close()
    writer.close()
    assert 0 < path.stat().st_size < 1024  # cut back to its one entry


def test_a_live_reader_moves_to_a_later_segment_only_once_told_the_entries_are_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server starts a segment before it copies the entry that needs it, and another CPU
    may see that file before the last copy into the segment before it. The reader does not
    take the end of entries there for the server having moved on until the server said the
    entry due is whole; once said, a missing entry is tampering."""
    monkeypatch.setattr(journal, "SEGMENT_BYTES", 1000)  # two entries per segment
    key = KEY
    _journaled(tmp_path, 6).close()
    (first, path), (second, _) = segments(tmp_path)[:2]
    assert first == 0 and second > 1
    data = path.read_bytes()
    at = _entry_offset(data, second - 1)  # the last entry of the first segment
    path.write_bytes(data[:at] + bytes(4) + data[at + 4 :])  # its copy not seen yet
    reader = journal.JournalReader(tmp_path, key, 0)
    reader.complete_below = second - 1
    assert len(reader.read(100)) == second - 1
    assert reader.read(100) == []  # waits here: no "entry where ... was due"
    path.write_bytes(data)  # the copy is seen now
    reader.complete_below = 6
    assert [f[1] for f in reader.read(100)] == [f"req-{i:04d}" for i in range(second - 1, 6)]
    reader.close()
    path.write_bytes(data[:at] + bytes(4) + data[at + 4 :])  # told whole, yet missing
    again = journal.JournalReader(tmp_path, key, 0)
    again.complete_below = 6
    with pytest.raises(StoreError, match=r"entry \d+ where \d+ was due"):
        again.read(100)
    again.close()


def test_a_process_forked_from_the_server_cannot_write_to_its_journal(tmp_path: Path) -> None:
    """A forked child holds a copy of the mapping: copying its entries there would put two
    entries of the same index in one place. It is refused (and closing it there leaves the
    parent's segment as it is); the parent goes on."""
    key, maker = KEY, RecordMaker()
    writer = _journaled(tmp_path, 1)
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if the append is refused and close is harmless
        code = 1
        try:
            writer.append(maker.fields(request(1), NOW))
        except StoreError as exc:
            code = 0 if "forked" in exc.message else 2
        writer.close()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    writer.append(maker.fields(request(1), NOW))
    reader = journal.JournalReader(tmp_path, key, 0)
    assert [fields[1] for fields in reader.read(10)] == ["req-0000", "req-0001"]
    reader.close()
    writer.close()


def payload_heads(path: Path) -> list[int]:
    """The first byte of each entry's payload in a segment, in order."""
    data, heads, at = path.read_bytes(), [], 0
    while at + 20 <= len(data) and (length := int.from_bytes(data[at : at + 4], "little")):
        heads.append(data[at + 20])
        at += 20 + length
    return heads


def test_values_messagepack_cannot_hold_are_journaled_with_marshal_and_read_back(
    tmp_path: Path,
) -> None:
    """An entry is MessagePack unless a value is beyond it: an integer below -2**63 (a
    record's CBOR holds down to -2**64) or text that is not valid Unicode. Such an entry
    is written with marshal (as older versions wrote every entry) and reads back the same."""
    maker = RecordMaker()
    entries = [
        maker.fields(request(0), NOW),
        maker.fields(request(1, output=[-(2**64), 2**64 - 1]), NOW),
        maker.fields(request(2, user_agent="agent \udcff"), NOW),
        maker.fields(request(3), NOW),
    ]
    writer = JournalWriter(tmp_path, KEY, 0)
    for fields in entries:
        writer.append(fields)
    ((_, path),) = segments(tmp_path)
    heads = payload_heads(path)
    assert heads[0] == heads[3] == 0xDC  # a MessagePack array of 20
    assert {heads[1], heads[2]} <= set(b"()\xa8\xa9")  # a marshal tuple
    reader = journal.JournalReader(tmp_path, KEY, 0)
    assert reader.read(10) == entries
    reader.close()
    writer.close()


def test_a_wide_integer_in_an_output_reaches_its_signed_record(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    with open_journaled(tmp_path / "log", signer) as log:
        log.append(**request(0, output=[-(2**64), 2**64 - 1]))
        log.sync()
    (record,) = [decode_record(raw) for raw in tamper.raw_records(tmp_path / "log")]
    assert record.output == [-(2**64), 2**64 - 1]
    assert audit_of(tmp_path / "log", signer) == (True, 1, 1)


def test_a_kernel_that_cannot_fill_pages_ahead_costs_faults_not_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``MADV_POPULATE_WRITE`` is Linux 5.14 and later; where madvise refuses it, pages
    fault in as they are written and every entry is journaled the same."""
    monkeypatch.setattr(journal, "_POPULATE_WRITE", 0x7FFF)  # an advice no kernel knows
    monkeypatch.setattr(journal, "POPULATE_BYTES", 4096)
    writer = JournalWriter(tmp_path, KEY, 0)
    entries = [RecordMaker().fields(request(i), NOW) for i in range(40)]  # several pages
    for fields in entries:
        writer.append(fields)
    reader = journal.JournalReader(tmp_path, KEY, 0)
    assert reader.read(100) == entries
    reader.close()
    writer.close()


def test_entries_across_many_filled_ahead_stretches_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel fills one page ahead at a time here (the smallest stretch), and a
    segment ends in the middle of one: every entry reads back, in order."""
    monkeypatch.setattr(journal, "POPULATE_BYTES", 4096)
    monkeypatch.setattr(journal, "SEGMENT_BYTES", 3 * 4096 + 100)
    writer = JournalWriter(tmp_path, KEY, 0)
    entries = [RecordMaker().fields(request(i), NOW) for i in range(100)]
    for fields in entries:
        writer.append(fields)
    assert len(segments(tmp_path)) > 2
    reader = journal.JournalReader(tmp_path, KEY, 0)
    reader.complete_below = None  # the writer is done: every entry is whole
    assert reader.read(1000) == entries
    reader.close()
    writer.close()
