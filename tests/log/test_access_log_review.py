"""A security review of ``log verify`` around ``access.log`` lines.

Client text that looks like an extension (``User-Agent: Mozilla seq=``), lines beyond
one per record, a last line without its newline, a signed record's line cut or deleted,
and an unsigned record that is not in the canonical encoding. Every log is written by
the real writer, then tampered as an attacker would (or left as a crash leaves it), and
audited by the fast pass and by the exact reading: both must give the same verdict and
the same findings (:func:`tests.log.test_audit.audit` asserts it).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import cbor2
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlspec_attest.cli.main import cli as cli_group
from mlspec_attest.errors import VerificationError
from mlspec_attest.formats.limits import MAX_ACCESS_LOG_LINE_BYTES, MiB
from mlspec_attest.log.audit import verify_log
from mlspec_attest.log.checkpoint import Checkpoint, sign_checkpoint
from mlspec_attest.log.files import ACCESS_LOG, LATEST, numbered
from mlspec_attest.log.merkle import CompactRange, leaf_hash
from mlspec_attest.log.ncsa import extension, line_of_map
from mlspec_attest.log.record import KEY_ORDER
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.signing.keys import LocalKeySigner
from tests.log import tamper
from tests.log.conftest import ORIGIN, WriteLog, request
from tests.log.test_audit import audit, found
from tests.log.test_record import base_map


def write(
    directory: Path, signer: LocalKeySigner, requests: list[dict[str, Any]], **kw: Any
) -> None:
    """The real writer, a checkpoint every ``every`` records; ``close=False`` leaves the
    log as a crash would (records after the last checkpoint unsigned)."""
    close, every = kw.pop("close", True), kw.pop("every", 5)
    log = InferenceLog.open(
        directory, signer, origin=ORIGIN, checkpoint_every=every, checkpoint_interval_s=0, **kw
    )
    for fields in requests:
        log.append(**fields)
    if close:
        log.close()
    else:
        log._release()


def reopen(directory: Path, signer: LocalKeySigner) -> None:
    """What a restarted server does: audit, repair a crash's traces, sign, close."""
    InferenceLog.open(directory, signer, origin=ORIGIN, checkpoint_interval_s=0).close()


def cli_verify(directory: Path, key: Path, *options: str) -> int:
    args = ["log", "verify", str(directory), "--key", str(key), *options]
    return CliRunner().invoke(cli_group, args, catch_exceptions=False).exit_code


# --------------------------------------------------------------- 1. client text as an extension
def test_client_text_cannot_pass_for_an_extension() -> None:
    hostile = {
        "a": "Mozilla seq=",  # the reviewer's: quotes are escaped, spaces and '=' are not
        "f": 'x seq="9" rid="evil"',
        "p": '/v2 seq="8"',
        "r": 'req seq="6" rid=',
    }
    line = line_of_map(base_map(**hostile))
    assert extension(line, "seq") == "7"
    assert extension(line, "rid") == "req seq=\\x226\\x22 rid="
    assert extension(line, "latency_us") == "812" and extension(line, "model") == "iris"
    # a line that does not end with the extensions in their order names nothing
    assert extension('x "y" seq="3"', "seq") is None
    assert extension(line + " ", "seq") is None
    assert extension(line.replace(' model="iris"', ""), "seq") is None


def test_an_honest_user_agent_naming_seq_verifies_and_reopens(
    tmp_path: Path, signer: LocalKeySigner, key_files: tuple[Path, Path]
) -> None:
    directory = tmp_path / "log"
    requests = [request(i) for i in range(12)]
    requests[3] = request(3, user_agent="Mozilla seq=")  # signed (read exactly by --exact)
    requests[10] = request(10, user_agent="Mozilla seq=")  # the unsigned tail: always exact
    write(directory, signer, requests, close=False)
    a = audit(directory, signer)
    assert (a.result, found(a)) == ("ok", [("unsigned-tail", 10, "req-0010")])
    assert cli_verify(directory, key_files[1]) == 0
    assert cli_verify(directory, key_files[1], "--exact") == 0
    reopen(directory, signer)  # one request must not stop the server from restarting
    b = audit(directory, signer)
    assert (b.result, b.records, b.signed, b.findings) == ("ok", 12, 12, ())


_FRAGMENTS = [' seq="1"', " seq=", ' rid="x"', " rid=", '"', "\\", "=", " ", "-", "seq", "\n", "é"]
_HOSTILE = st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=4), max_size=6).map("".join)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(agent=_HOSTILE, referer=_HOSTILE, path=_HOSTILE, rid=_HOSTILE, user=_HOSTILE)
@example(agent="Mozilla seq=", referer=' seq="1"', path=" rid=", rid='" seq="0"', user="seq=")
@example(agent=" rid=", referer="curl seq=", path='"', rid="\\", user=' seq="2"')
def test_hostile_client_text_never_fails_an_honest_log(
    signer: LocalKeySigner, agent: str, referer: str, path: str, rid: str, user: str
) -> None:
    hostile = {
        "user_agent": agent,
        "referer": referer,
        "path": path,
        "request_id": "r" + rid,
        "user": user,
    }
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "log"
        requests = [request(0), request(1, **hostile), request(2, **hostile)]
        write(directory, signer, requests, close=False, every=2, log_user_ids=True)
        a = audit(directory, signer)  # record 1 signed, record 2 the unsigned tail
        assert (a.result, [f.kind.value for f in a.findings]) == ("ok", ["unsigned-tail"])
        reopen(directory, signer)
        b = audit(directory, signer)
        assert (b.result, b.records, b.findings) == ("ok", 3, ())


# --------------------------------------------------------------- 2. lines beyond one per record
def _forged(line: bytes) -> bytes:
    forged = line.replace(b'" 200 ', b'" 500 ').replace(b"10.0.0.7", b"6.6.6.6")
    return re.sub(rb'rid="[^"]*"', b'rid="req-evil"', forged)


@pytest.mark.parametrize("tail", [0, 2])
def test_a_forged_line_repeating_a_signed_seq_is_found_by_both_modes(
    tmp_path: Path, signer: LocalKeySigner, key_files: tuple[Path, Path], tail: int
) -> None:
    directory = tmp_path / "log"
    write(directory, signer, [request(i) for i in range(20 + tail)], close=False)
    with (directory / ACCESS_LOG).open("ab") as handle:
        handle.write(_forged(tamper.lines(directory)[4]) + b"\n")
    a = audit(directory, signer)
    assert a.result == "tampered"
    assert ("access-log-mismatch", 4, "req-evil") in found(a)
    assert "repeats seq 4" in a.findings[-1].message
    assert cli_verify(directory, key_files[1]) == 1


# --------------------------------------------------------------- 3. a last line without newline
@pytest.mark.parametrize(
    "forged",
    [
        b'10.6.6.6 - - [07/Dec/2025:00:49:00 +0000] "POST / HTTP/1.1" 200 9 "-" "evil" seq="20"',
        b'10.6.6.6 - - [07/Dec/2025:00:49:00 +0000] "POST / HTTP/1.1" 200 9 "-" "evil" seq="3"',
        b"a line that names nothing",
        b"copy of line 3",  # replaced below by a forged copy of a signed record's line
    ],
)
@pytest.mark.parametrize("tail", [0, 2])
def test_a_forged_last_line_without_its_newline_is_found(
    tmp_path: Path, signer: LocalKeySigner, forged: bytes, tail: int
) -> None:
    directory = tmp_path / "log"
    write(directory, signer, [request(i) for i in range(20 + tail)], close=False)
    if forged.startswith(b"copy"):
        forged = _forged(tamper.lines(directory)[3])
    with (directory / ACCESS_LOG).open("ab") as handle:
        handle.write(forged)  # every record has its line: this one is no crash's
    a = audit(directory, signer)
    assert a.result == "tampered"
    assert [f for f in found(a) if f[0] == "access-log-mismatch"]
    assert "without its newline" in a.problems[0].message
    with pytest.raises(VerificationError):
        reopen(directory, signer)


def test_a_line_over_the_limit_hides_no_line_after_it(
    tmp_path: Path, signer: LocalKeySigner, write_log: WriteLog
) -> None:
    directory = tmp_path / "log"
    write_log(directory, 5, checkpoint_every=5)
    forged = _forged(tamper.lines(directory)[2])
    with (directory / ACCESS_LOG).open("ab") as handle:
        # longer than the limit by more than the 8 MiB a read takes: cut at the limit
        handle.write(b"x" * (MAX_ACCESS_LOG_LINE_BYTES + 9 * MiB) + b"\n" + forged + b"\n")
    a = audit(directory, signer)
    assert a.result == "tampered"
    assert found(a) == [("access-log-mismatch", None, None), ("access-log-mismatch", 2, "req-evil")]
    assert "longer than the line limit" in a.findings[0].message


# --------------------------------------------------------------- 4. a signed record's line
def _cut_last_line(directory: Path, cut: int | None) -> None:
    lines = tamper.lines(directory)
    tamper.write_lines(directory, lines[:-1], tail=b"" if cut is None else lines[-1][:cut])


@pytest.mark.parametrize("cut", [None, 100, 9])
def test_a_signed_records_line_cut_or_deleted_is_tampering(
    tmp_path: Path, signer: LocalKeySigner, write_log: WriteLog, cut: int | None
) -> None:
    directory = tmp_path / "log"
    write_log(directory, 20, checkpoint_every=5)  # closed: every record signed
    _cut_last_line(directory, cut)
    a = audit(directory, signer)
    assert (a.result, found(a)) == ("tampered", [("access-log-mismatch", 19, "req-0019")])
    assert "signed" in a.findings[0].message
    before = (directory / ACCESS_LOG).read_bytes()
    with pytest.raises(VerificationError, match="access-log-mismatch seq 19"):
        reopen(directory, signer)  # not "repaired" by rendering the line again
    assert (directory / ACCESS_LOG).read_bytes() == before
    # the same traces where the last record is unsigned are a crash's, and repaired
    crashed = tmp_path / "crashed"
    write_log(crashed, 22, checkpoint_every=5, close=False)  # 20 and 21 unsigned
    whole = tamper.lines(crashed)
    _cut_last_line(crashed, cut)
    b = audit(crashed, signer)
    assert (b.result, found(b)) == (
        "ok",
        [("unsigned-tail", 20, "req-0020"), ("torn-tail", 21, "req-0021")],
    )
    reopen(crashed, signer)
    assert tamper.lines(crashed) == whole


# --------------------------------------------------------------- 5. the tail's encoding
def _reversed_keys(raw: bytes) -> bytes:
    m = cbor2.loads(raw)
    assert list(m) == list(KEY_ORDER)
    out = bytes([0xA0 | len(m)]) + b"".join(
        cbor2.dumps(k) + cbor2.dumps(m[k], canonical=True) for k in reversed(KEY_ORDER)
    )
    assert cbor2.loads(out) == m and out != raw
    return out


@pytest.mark.parametrize("how", ["reversed keys", "long seq"])
def test_a_tail_record_not_in_the_canonical_encoding_is_edited(
    tmp_path: Path, signer: LocalKeySigner, key_files: tuple[Path, Path], how: str
) -> None:
    directory = tmp_path / "log"
    write(directory, signer, [request(i) for i in range(8)], close=False)  # 5..7 unsigned
    if how == "long seq":
        tamper.replace_in_record(directory, 7, b"\x61n\x07", b"\x61n\x18\x07")
    else:
        records = tamper.raw_records(directory)
        tamper.write_records(directory, [*records[:7], _reversed_keys(records[7])])
    a = audit(directory, signer)
    assert a.result == "tampered"
    assert found(a) == [("edited", 7, "req-0007"), ("unsigned-tail", 5, "req-0005")]
    assert "deterministic encoding" in a.findings[0].message
    assert cli_verify(directory, key_files[1]) == 1
    with pytest.raises(VerificationError, match="edited seq 7"):
        reopen(directory, signer)  # never signed
    assert verify_log(directory, signer.public_key).signed == 5
    # What the writer did before the tail was checked: it signed the record as it was.
    # The key then vouches for those bytes, and both modes agree (as the fast pass, which
    # decodes nothing, must).
    tree = CompactRange()
    for raw in tamper.raw_records(directory):
        tree.append(leaf_hash(raw))
    note = sign_checkpoint(Checkpoint(ORIGIN, 8, tree.root()), signer, ORIGIN)
    numbered(directory, 8).write_text(note)
    (directory / LATEST).write_text(note)
    b = audit(directory, signer)
    assert (b.result, b.signed, b.findings) == ("ok", 8, ())


def test_a_flood_of_extra_lines_keeps_fifty_and_counts_the_rest(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    from mlspec_attest.log.exact import MAX_EXTRA_LINES, Start, scan_exact

    directory = tmp_path / "log"
    with InferenceLog.open(directory, signer, origin=ORIGIN, checkpoint_interval_s=0) as log:
        for i in range(3):
            log.append(**request(i))
    with (directory / ACCESS_LOG).open("ab") as f:
        f.write(b"\n" * 10_000)  # each an extra line naming no seq
    scan = scan_exact(directory, set(), Start())
    assert (len(scan.lines.extra), scan.lines.extra_more) == (
        MAX_EXTRA_LINES,
        10_000 - MAX_EXTRA_LINES,
    )
    audit = verify_log(directory, signer.public_key, origin=ORIGIN)
    assert not audit.ok
    more = [f.message for f in audit.problems if f.message.startswith("and ")]
    assert more == ["and 9950 more findings of this kind"]  # 50 listed, every other counted
