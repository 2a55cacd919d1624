"""What a server hands the writer is checked before anything is written (no second pass
over the map the writer built itself)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlspec_attest.errors import BadInputError
from mlspec_attest.log.audit import verify_log
from mlspec_attest.log.files import RECORDS
from mlspec_attest.log.prepare import (
    ROW_KEYS,
    RecordMaker,
    RequestValues,
    encoded_fields,
    encoded_record,
    record_map,
)
from mlspec_attest.log.record import RecordError, decode_record
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.signing.keys import LocalKeySigner

from .conftest import ORIGIN, request
from .test_writer import open_log


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"status": True}, "must be integers"),
        ({"status": 200.0}, "must be integers"),
        ({"bytes_sent": -1}, "must be unsigned"),
        ({"latency_us": 2**63}, "must be unsigned"),
        ({"status": 1000}, "status 100-999"),
        ({"model_digest": "A" * 64}, "64 lowercase hex"),
        ({"vsa_digest": "sha256:" + "b" * 63}, "64 lowercase hex"),
        ({"request_id": ""}, "request_id is empty"),
    ],
)
def test_bad_request_values_write_nothing(
    tmp_path: Path, signer: LocalKeySigner, override: dict[str, Any], message: str
) -> None:
    with open_log(tmp_path / "log", signer) as log:
        with pytest.raises(BadInputError, match=message):
            log.append(**request(0, **override))
        assert log.size == 0 and (tmp_path / "log" / RECORDS).stat().st_size == 0


def test_what_the_writer_writes_decodes_strictly(tmp_path: Path, signer: LocalKeySigner) -> None:
    """The writer skips check_map on its own map: the strict decoder must still accept
    every record it writes, a prefixed digest and odd text included."""
    with open_log(tmp_path / "log", signer) as log:
        record = log.append(
            **request(0, vsa_digest="sha256:" + "c" * 64, user_agent='caf\udce9 "x"\n')
        )
    data = (tmp_path / "log" / RECORDS).read_bytes()
    assert decode_record(data) == record
    assert record.vsa_digest == "c" * 64


def _row(values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(values[key] for key in ROW_KEYS)


def test_the_row_hand_over_makes_the_same_fields_as_the_map() -> None:
    """The middleware hands a tuple (``fields_of_row``), tools a map (``fields``): the
    journal entry must not depend on which."""
    assert tuple(k for k in RequestValues.__annotations__ if k != "time") == ROW_KEYS
    maker = RecordMaker()
    extras: list[dict[str, Any]] = [
        {},
        {"user": "alice", "referer": "https://x.example/"},
        {"output": {"a": [1, 2.5]}},
    ]
    for i, extra in enumerate(extras):
        values = request(i, **extra)
        values.pop("time", None)
        now = 1_700_000_000_000_000_000 + i
        assert maker.fields_of_row(_row(values), now) == maker.fields(values, now)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"status": True}, "must be integers"),
        ({"bytes_sent": -1}, "must be unsigned"),
        ({"latency_us": 2**63}, "must be unsigned"),
        ({"status": 99}, "status 100-999"),
        ({"request_id": ""}, "request_id is empty"),
        ({"model_digest": "A" * 64}, "64 lowercase hex"),
    ],
)
def test_the_row_hand_over_refuses_what_the_map_refuses(
    override: dict[str, Any], message: str
) -> None:
    """Digests are checked once per pair of objects: a changed digest after good ones is
    checked again, not waved through."""
    maker = RecordMaker()
    good = request(0)
    good.pop("time", None)
    maker.fields_of_row(_row(good), None)  # remembers the good digests
    with pytest.raises(BadInputError, match=message):
        maker.fields_of_row(_row({**good, **override}), None)


_text = st.text(max_size=12)
_ascii = st.text(st.characters(max_codepoint=0x7F), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.floats(allow_nan=False)
    | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=8,
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    texts=st.lists(
        st.sampled_from(["-", "POST", "a b", 'x"y\\z', "\x00", ""]) | _ascii, min_size=7, max_size=7
    ),
    dirty=st.none() | st.tuples(st.integers(0, 8), _text),
    optional=st.lists(st.none() | _ascii, min_size=2, max_size=2),
    user=st.none() | _text,
    numbers=st.tuples(st.integers(100, 999), st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1)),
    output=_json,
    body=st.binary(max_size=16),
    log_inputs=st.booleans(),
    time=st.none() | st.integers(0, 2**62) | st.just("2026-01-02T03:04:05.000006Z"),
    seq=st.integers(0, 2**63 - 1),
)
def test_the_writer_process_encodes_fields_as_their_map_would(
    texts: list[str], dirty: tuple[int, str] | None, optional: list[str | None],
    user: str | None, numbers: tuple[int, int, int], output: Any, body: bytes,
    log_inputs: bool, time: int | str | None, seq: int,
) -> None:  # fmt: skip
    """``encoded_fields`` (no map: the writer process's way) writes byte for byte what
    ``encoded_record`` writes of the map, whatever the text (ASCII, or any text to clean
    in one field), the output, a raw input or none, and the record's time (given or the
    writer's)."""
    if dirty is not None:  # one field (of the seven texts, referer, user agent) any text
        where, text = dirty
        (texts if where < 7 else optional)[where % 7] = text
    request_id, client, method, path, protocol, model, version = texts
    maker = RecordMaker()
    maker.log_inputs = log_inputs
    status, sent, latency = numbers
    row = (request_id or "r", client, user, method, path, protocol, status, sent, *optional,
           model, version, "ab" * 32, "sha256:" + "cd" * 32, body, output, latency)  # fmt: skip
    try:
        fields = maker.fields_of_row(row, time)
    except BadInputError:
        return  # refused before the journal: nothing to encode
    prev, now = b"\x07" * 32, "2026-12-07T00:00:00.000000Z"
    try:
        expected = encoded_record(record_map(fields), seq, prev, now)
    except RecordError as exc:
        with pytest.raises(RecordError, match=re.escape(exc.message)):
            encoded_fields(fields, seq, prev, now)
        return
    assert encoded_fields(fields, seq, prev, now) == expected


def test_a_record_whose_line_would_exceed_the_line_bound_is_refused_both_ways(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    # a control character is 1 byte of the record's CBOR, 9 of its line (\x5cu0001)
    output = {"outputs": [{"name": "text", "data": ["\x01" * (8 * 1024 * 1024)]}]}
    with InferenceLog.open(tmp_path / "log", signer, origin=ORIGIN, checkpoint_interval_s=0) as log:
        with pytest.raises(RecordError, match=r"access\.log line"):
            log.append(**request(0, output=output))
        fields = log.fields(request(1, output=output), None)
        with pytest.raises(RecordError, match=r"access\.log line"):
            encoded_fields(fields, 0, b"\0" * 32, "2025-12-07T00:48:12.123456Z")
        log.append(**request(2))  # the log goes on whole
    audit = verify_log(tmp_path / "log", signer.public_key, origin=ORIGIN)
    assert (audit.ok, audit.records) == (True, 1)
