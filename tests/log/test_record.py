"""Records: the CBOR encoding round-trips, and decoding refuses anything else."""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlspec_attest.errors import BadInputError
from mlspec_attest.formats.limits import MAX_JSON_DEPTH, MAX_LOG_RECORD_BYTES
from mlspec_attest.log.canonical import MapEncoder
from mlspec_attest.log.ncsa import line_of_map
from mlspec_attest.log.output import _plain, normalize_output
from mlspec_attest.log.record import (
    FIELDS,
    KEYS,
    KEYS_WITH_INPUT,
    MAP_HEADS,
    TAIL_SIZE,
    InferenceRecord,
    RecordError,
    check_map,
    clean_text,
    decode_record,
    encode_map,
    format_time,
)
from tests.log.conftest import MODEL_DIGEST, T0, VSA_DIGEST


def base_map(**overrides: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "v": 1,
        "n": 7,
        "t": format_time(T0),
        "r": "req-7",
        "c": "10.0.0.7",
        "u": "sha256:" + "ef" * 32,
        "m": "POST",
        "p": "/v2/models/iris/infer",
        "h": "HTTP/1.1",
        "s": 200,
        "b": 57,
        "f": None,
        "a": "curl/8.5",
        "mn": "iris",
        "mv": "3",
        "md": MODEL_DIGEST,
        "vd": VSA_DIGEST,
        "id": "sha256:" + "01" * 32,
        "o": {"outputs": [{"data": [1, 0.5], "name": "predict"}]},
        "l": 812,
        "pv": bytes(32),
    }
    m.update(overrides)
    m = {k: v for k, v in m.items() if v is not ...}
    m["nl"] = hashlib.sha256(line_of_map(m).encode()).digest()
    return m


def test_round_trip_and_the_fixed_tail() -> None:
    data = encode_map(base_map())
    record = decode_record(data)
    assert record.seq == 7 and record.request_id == "req-7" and record.input is None
    assert record.prev == "0" * 64 and record.output == {
        "outputs": [{"data": [1, 0.5], "name": "predict"}]
    }
    assert record.to_cbor() == data
    assert data[:1] == MAP_HEADS[0]
    tail = data[-TAIL_SIZE:]
    assert tail.startswith(b"\x62nl\x58\x20") and tail[37:42] == b"\x62pv\x58\x20"
    assert tail[74:79] == b"\x62vd\x78\x40" and tail[79:].decode() == VSA_DIGEST
    with_input = encode_map(base_map(**{"in": b"\x00\x01 body"}))
    assert with_input[:1] == MAP_HEADS[1] and decode_record(with_input).input == b"\x00\x01 body"
    assert with_input[-TAIL_SIZE:][79:].decode() == VSA_DIGEST


def test_time_format() -> None:
    assert format_time(T0) == "2025-12-07T00:48:12.123456Z"
    assert format_time(T0.replace(microsecond=0)) == "2025-12-07T00:48:12.000000Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(T0.replace(tzinfo=None))


text = st.text(max_size=40)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    seq=st.integers(0, 2**63 - 1),
    strings=st.lists(text, min_size=9, max_size=9),
    status=st.integers(100, 999),
    output=json_values,
    body=st.none() | st.binary(max_size=64),
    referer=st.none() | text,
)
def test_any_record_round_trips(
    seq: int, strings: list[str], status: int, output: Any, body: bytes | None, referer: str | None
) -> None:
    c, u, m_, p, h, a, mn, mv, r = (clean_text(s) for s in strings)
    m = base_map(
        n=seq, c=c, u=u, m=m_, p=p, h=h, a=a, mn=mn, mv=mv, r=r or "x", s=status,
        f=None if referer is None else clean_text(referer), o=normalize_output(output),
        **({"in": body} if body is not None else {}),
    )  # fmt: skip
    data = encode_map(m)
    assert data == cbor2.dumps(m, canonical=True)  # the writer's encoder is cbor2's canonical
    record = decode_record(data)
    assert record.to_cbor() == data
    assert isinstance(record, InferenceRecord) and record.seq == seq and record.input == body
    assert record.line() == line_of_map(m)


def _refused(data: bytes, match: str) -> None:
    with pytest.raises(RecordError, match=match):
        decode_record(data)


def test_unknown_missing_and_mistyped_keys_are_refused() -> None:
    good = base_map()
    _refused(cbor2.dumps({**good, "zz": 1}, canonical=True), "unknown keys \\['zz'\\]")
    _refused(
        cbor2.dumps({k: v for k, v in good.items() if k != "r"}, canonical=True),
        "missing keys \\['r'\\]",
    )
    for key, bad in [("n", "7"), ("s", True), ("f", 1), ("pv", "00"), ("t", 1), ("b", 1.5)]:
        _refused(cbor2.dumps({**good, key: bad}, canonical=True), f"\\({key}\\) is a")
    _refused(cbor2.dumps({**good, "v": 2}, canonical=True), "version 2")
    _refused(cbor2.dumps([good], canonical=True), "not a CBOR map")


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("n", -1, "unsigned"),
        ("s", 99, "status 100-999"),
        ("s", 1000, "status 100-999"),
        ("t", "2025-12-07T00:48:12Z", "microseconds"),
        ("t", "2025-13-07T00:48:12.000000Z", "time"),
        ("md", "AB" * 32, "64 lowercase hex"),
        ("id", "01" * 32, "sha256:"),
        ("pv", bytes(31), "32 bytes"),
        ("r", "", "request_id is empty"),
        ("o", [math.inf], "non-finite"),
        ("o", {"a": math.nan}, "non-finite"),
    ],
)
def test_values_out_of_range_are_refused(key: str, value: Any, match: str) -> None:
    m = base_map()
    m[key] = value
    with pytest.raises(RecordError, match=match):
        check_map(m)
    _refused(cbor2.dumps(m, canonical=True), match)


def test_line_digest_must_match_the_line() -> None:
    m = base_map()
    m["nl"] = bytes(32)
    _refused(cbor2.dumps(m, canonical=True), "line_digest")


@pytest.mark.parametrize(
    ("desc", "data", "match"),
    [
        ("trailing", None, "bytes after the record"),
        ("tag", b"\xc1\x1a\x51\x4b\x67\xb0", "not a valid CBOR record"),
        ("duplicate", b"\xa2\x61v\x01\x61v\x01", "Duplicate"),
        ("indefinite", b"\xbf\x61v\x01\xff", "indefinite"),
        ("bad utf-8", b"\xa1\x61v\x62\xff\xfe", "not a valid CBOR record"),
        ("truncated", b"\xa2\x61v\x01", "not a valid CBOR record"),
        ("int key", b"\xa1\x01\x01", "not a valid CBOR record"),
        ("shared ref", b"\xd8\x1c\x81\xd8\x1d\x00", "not a valid CBOR record"),
        ("undefined", b"\xf7", "not a CBOR map"),
    ],
)
def test_malformed_cbor_is_refused(desc: str, data: bytes | None, match: str) -> None:
    if data is None:
        data = encode_map(base_map()) + b"\x00"
    _refused(data, match)


def test_non_canonical_encoding_is_refused() -> None:
    m = base_map()
    data = cbor2.dumps(dict(reversed(list(m.items()))))  # same map, keys out of order
    assert data != encode_map(m)
    _refused(data, "deterministic encoding")


def test_depth_and_size_bounds() -> None:
    deep: Any = 1
    for _ in range(MAX_JSON_DEPTH + 2):
        deep = [deep]
    m = base_map(o=[[1]])
    m["o"] = deep
    with pytest.raises(RecordError, match="nests deeper"):
        check_map(m)
    _refused(cbor2.dumps(m, canonical=True), "depth")
    _refused(b"\x00" * (MAX_LOG_RECORD_BYTES + 1), "larger than 16 MiB")
    with pytest.raises(RecordError, match="larger than 16 MiB"):
        encode_map(base_map(**{"in": bytes(MAX_LOG_RECORD_BYTES)}))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_record_error(data: bytes) -> None:
    with contextlib.suppress(RecordError):
        decode_record(data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_mutated_record_is_refused_or_still_a_valid_record(data: st.DataObject) -> None:
    raw = bytearray(encode_map(base_map()))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    try:
        record = decode_record(bytes(raw))
    except RecordError:
        return
    assert record.to_cbor() == bytes(raw)  # whatever decodes is exactly a record


def test_normalize_output() -> None:
    class F(float):
        pass

    assert normalize_output((1, F(0.5), {"k": (True, None)})) == [1, 0.5, {"k": [True, None]}]
    assert type(normalize_output(F(0.5))) is float
    with pytest.raises(RecordError, match="holds a bytes"):
        normalize_output({"a": b"x"})
    with pytest.raises(RecordError, match="holds a set"):
        normalize_output({1, 2})
    assert isinstance(RecordError("x"), BadInputError)


_EDGE_NUMBERS = st.sampled_from(
    [math.inf, -math.inf, math.nan, 1e308, -1e308, 2**64 - 1, 2**64, -(2**64), -(2**64) - 1]
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-(2**66), 2**66),
            st.booleans(),
            _EDGE_NUMBERS,
        ),
        max_size=6,
    )
)
def test_a_flat_list_of_numbers_is_normalized_as_any_output_is(values: list[Any]) -> None:
    """The short way for a list of plain floats or plain ints says yes or no exactly as
    the element-by-element way does (a sum that overflows only takes the long way)."""
    try:
        long_way: Any = _plain(values, 1)
    except RecordError as exc:
        with pytest.raises(RecordError, match=re.escape(str(exc))):
            normalize_output(values)
        return
    short_way = normalize_output(values)
    assert short_way == long_way and short_way is not values
    assert [type(v) for v in short_way] == [type(v) for v in values]


def test_clean_text_keeps_valid_text_and_escapes_lone_surrogates() -> None:
    assert clean_text("héllo") == "héllo"
    assert clean_text("a\udcffb") == "a\\xffb"  # the byte a surrogateescape decode kept
    assert clean_text("a\ud800b") == "a\\xed\\xa0\\x80b"  # any other lone surrogate
    assert clean_text(b"caf\xc3\xa9 \xff".decode("utf-8", "surrogateescape")) == "café \\xff"
    assert clean_text("plain") == "plain"


def test_fields_table_is_the_record_class() -> None:
    names = [name for key, (name, _) in FIELDS.items() if key != "v"]
    assert set(names) == set(InferenceRecord.__struct_fields__)


deep_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=2)
        | st.tuples(children)
        | st.dictionaries(st.text(max_size=3), children, max_size=2)
    ),
    max_leaves=80,
)


@settings(max_examples=300, deadline=None)
@given(value=deep_values, nesting=st.integers(0, MAX_JSON_DEPTH + 2))
def test_what_normalize_output_accepts_check_map_accepts(value: Any, nesting: int) -> None:
    for _ in range(nesting):
        value = [value]
    try:
        output = normalize_output(value)
    except RecordError:
        return
    m = base_map()
    m["o"] = output
    check_map(m)  # the writer skips this walk for a normalized output: it must agree
    assert decode_record(encode_map(base_map(o=output))).output == output


def test_the_record_encoder_is_cbor2s_canonical_encoder() -> None:
    """The records' key sets are laid out; maps of other key sets (a key missing, one
    added) take cbor2's canonical encoder."""
    canonical_cbor = MapEncoder((KEYS, KEYS_WITH_INPUT)).encode
    missing = base_map()
    del missing["a"]
    added = base_map(zz=[1.5, {"b": 1, "aa": 0.25}])
    for m in (missing, added, {"o": 1.0}, {}):
        assert canonical_cbor(m) == cbor2.dumps(m, canonical=True)
    shortest = base_map(o=[1.5, 100000.0, 1.1, {"bb": 0.5, "a": None}])
    assert canonical_cbor(shortest) == cbor2.dumps(shortest, canonical=True)
    assert canonical_cbor(shortest) != cbor2.dumps(shortest)  # floats shortest, keys sorted
    with_input = base_map(**{"in": b"\x00raw"})
    assert canonical_cbor(with_input) == cbor2.dumps(with_input, canonical=True)
    nested = base_map(o={"zz": [float("-0.0"), 2**64 - 1, {"b": "", "a": -(2**63)}]})
    assert canonical_cbor(nested) == cbor2.dumps(nested, canonical=True)
    small = MapEncoder((frozenset({"b", "aa", "c"}),)).encode  # a flat list under 24 items
    for value in ({"b": 1.5, "aa": None, "c": {"y": 1, "x": 2}}, {"b": "", "aa": [], "c": b"z"}):
        assert small(value) == cbor2.dumps(value, canonical=True)
    with pytest.raises(ValueError, match="cannot lay out"):
        MapEncoder((frozenset(f"k{i}" for i in range(24)),))  # a map head of two bytes
