"""The auditor's readers against an attacker who controls every file of the log directory.

A FIFO, a directory or ``/dev/zero`` in place of a log file is unreadable input (exit 3),
never a hang or an internal error; junk in ``records.cbor`` costs decoding work and
memory in proportion to its size: a run of junk is one bad stretch, and resyncing after
it does not re-read the rest of the file for every candidate. Work is counted (bytes the
CBOR decoders read, items yielded), never timed.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlspec_attest.errors import BadInputError
from mlspec_attest.log.audit import verify_log
from mlspec_attest.log.exact import scan_exact
from mlspec_attest.log.files import ACCESS_LOG, RECORDS
from mlspec_attest.log.proof import consistency_proof, inclusion_proof
from mlspec_attest.log.record import VSA_MARK
from mlspec_attest.log.scan import MIN_RECORD_BYTES, RecordScanner
from mlspec_attest.signing.keys import LocalKeySigner
from tests.cli.conftest import Cli
from tests.log import tamper
from tests.log.conftest import WriteLog

N = 6  # records; checkpoints every 2
ENDLESS = b"\x5a\x00\xff\xff\xff"  # a byte string of 16 MiB that the file never completes
#: Junk whose every resync candidate (after a ``vd`` marker and 64 bytes) starts an item
#: that reads to the end of what was read: the reviewer's byte string, a map whose first
#: key is that byte string, and a small map followed by an item that fails after 64 KiB.
UNITS = {
    "bytes": VSA_MARK + b"a" * 64 + ENDLESS,
    "map": VSA_MARK + b"a" * 64 + b"\xb6" + ENDLESS,
    "map-then-64KiB": VSA_MARK
    + b"\xff" * 64
    + b"\xa1\x61x\x78\xc8"
    + b"a" * 200
    + b"\xb6\x5a"
    + (280 * 234 + 10).to_bytes(4, "big"),
}


@pytest.fixture
def log(tmp_path: Path, write_log: WriteLog) -> Path:
    directory = tmp_path / "log"
    write_log(directory, N, checkpoint_every=2)
    return directory


class _Counted:
    """A stream that counts the bytes a decoder reads from it."""

    def __init__(self, stream: io.BytesIO, counter: list[int]) -> None:
        self._stream, self._counter = stream, counter

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._counter[0] += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``[n]``: the bytes every cbor2 decoder made from now on has read."""
    counter = [0]
    real = cbor2.CBORDecoder

    def counting(stream: io.BytesIO, *args: Any, **options: Any) -> cbor2.CBORDecoder:
        return real(cast(IO[bytes], _Counted(stream, counter)), *args, **options)

    monkeypatch.setattr(cbor2, "CBORDecoder", counting)
    return counter


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process: a read that blocks fails the test, not the suite."""
    argv = [sys.executable, "-m", "mlspec_attest", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("name", [RECORDS, ACCESS_LOG])
def test_a_fifo_as_a_log_file_is_unreadable_not_a_hang(
    log: Path, key_files: tuple[Path, Path], name: str
) -> None:
    (log / name).unlink()
    os.mkfifo(log / name)
    key = key_files[1]
    runs = [
        ("log", "verify", log, "--key", key),
        ("log", "trace", "req-0003", "--log", log, "--key", key),
    ]
    if name == RECORDS:
        runs += [
            ("log", "prove", "req-0003", "--log", log, "--key", key),
            ("log", "prove", "--log", log, "--consistency", "2", "0", "--key", key),
        ]
    for args in runs:
        result = _cli(*args)
        assert result.returncode == 3, (args, result.stdout, result.stderr)
        assert "not a regular file" in result.stdout + result.stderr
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def _replace(path: Path, kind: str) -> None:
    path.unlink()
    if kind == "directory":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")


@pytest.mark.parametrize("kind", ["directory", "devzero"])
def test_prove_of_records_that_are_no_regular_file_is_bad_input(
    cli: Cli, log: Path, key_files: tuple[Path, Path], signer: LocalKeySigner, kind: str
) -> None:
    _replace(log / RECORDS, kind)
    with pytest.raises(BadInputError, match=r"records\.cbor"):
        inclusion_proof(log, "req-0003", public_key=signer.public_key)
    with pytest.raises(BadInputError, match=r"records\.cbor"):
        consistency_proof(log, 2, public_key=signer.public_key)
    key = key_files[1]
    for args in (
        ("log", "prove", "req-0003", "--log", log, "--key", key),
        ("log", "prove", "--log", log, "--consistency", "2", "0", "--key", key),
        ("log", "trace", "req-0003", "--log", log, "--key", key),
    ):
        result = cli(*args)
        assert (result.code, result.clean) == (3, True), (args, result.out, result.err)
        assert "internal error" not in result.err


def _items(path: Path) -> Iterator[tuple[int, int, str | None, str | None]]:
    """(offset, size, request id, problem) of every item the scanner yields."""
    for item in RecordScanner(path):
        rid = item.value.get("r") if isinstance(item.value, dict) else None
        yield item.offset, len(item.raw), rid, item.problem


def test_resync_after_junk_finds_the_next_record_without_rereading(
    log: Path, decoded: list[int]
) -> None:
    records = tamper.raw_records(log)
    junk = b"\xff" + UNITS["bytes"] * (512 * 1024 // len(UNITS["bytes"])) + VSA_MARK + b"a" * 64
    tamper.write_records(log, [*records[:3], junk, *records[3:]])
    size = (log / RECORDS).stat().st_size
    items = list(_items(log / RECORDS))
    # the same records as ever: three, the junk as one bad stretch, the other three
    assert [rid for _, _, rid, _ in items] == [f"req-{i:04d}" for i in range(3)] + [None] + [
        f"req-{i:04d}" for i in range(3, N)
    ]
    assert items[3][:2] == (sum(map(len, records[:3])), len(junk)) and items[3][3]
    assert decoded[0] <= 4 * size + 64 * 1024  # the old resync read ~2 GB here


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_resync_work_is_proportional_to_the_junk(
    log: Path, signer: LocalKeySigner, decoded: list[int], unit: str
) -> None:
    junk = b"\xff" + UNITS[unit] * (768 * 1024 // len(UNITS[unit]))
    with (log / RECORDS).open("ab") as handle:
        handle.write(junk)
    size = (log / RECORDS).stat().st_size
    scanner = RecordScanner(log / RECORDS)
    count = sum(1 for _ in scanner)
    assert decoded[0] <= 20 * size + 2 * 1024 * 1024  # the old resync read gigabytes
    assert count <= N + 2 * size // MIN_RECORD_BYTES + 2
    assert verify_log(log, signer.public_key, exact=True).result == "tampered"


@pytest.mark.parametrize(
    "junk", [b"\xa0" * 65536, (VSA_MARK + b"a" * 64 + b"\xa0") * 1024], ids=["a0", "marked-a0"]
)
def test_a_run_of_tiny_maps_is_one_bad_stretch(
    log: Path, signer: LocalKeySigner, junk: bytes
) -> None:
    with (log / RECORDS).open("ab") as handle:
        handle.write(junk)
    scan = scan_exact(log, set())
    assert len(scan.entries) == N + 1  # was one entry (and finding) per empty map
    bad = scan.entries[-1]
    assert bad.problem is not None and "not a CBOR record" in bad.problem
    a = verify_log(log, signer.public_key)
    assert a.result == "tampered" and len(a.findings) <= 3


PIECES = st.sampled_from(
    [
        b"\xa0",
        b"\xb6",
        b"\xff",
        b"\x00",
        ENDLESS,
        VSA_MARK + b"a" * 64,
        b"\xa1\x61x\x78\xc8" + b"a" * 200,
        b"\x5a\x00\x00\x01\x00",
    ]
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pieces=st.lists(PIECES, min_size=1, max_size=400), at=st.integers(0, N))
def test_junk_anywhere_is_never_ok_and_bounded(
    tmp_path_factory: pytest.TempPathFactory,
    write_log: WriteLog,
    signer: LocalKeySigner,
    pieces: list[bytes],
    at: int,
) -> None:
    directory = tmp_path_factory.mktemp("junk") / "log"
    write_log(directory, N, checkpoint_every=2)
    records = tamper.raw_records(directory)
    junk = b"".join(pieces)
    tamper.write_records(directory, [*records[:at], junk, *records[at:]])
    size = (directory / RECORDS).stat().st_size
    items = list(_items(directory / RECORDS))
    assert len(items) <= 2 * size // MIN_RECORD_BYTES + 3
    # an item is a map the size of a record at least, or a stretch that cannot be one
    assert all(problem is not None or n >= MIN_RECORD_BYTES for _, n, _, problem in items)
    a = verify_log(directory, signer.public_key)
    if a.ok:  # only a partial record after the last one is a crash's trace
        assert at == N and a.state is not None and a.state.torn == len(junk)
    else:
        assert a.result == "tampered"
