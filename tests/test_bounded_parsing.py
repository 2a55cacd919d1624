"""Bounded, strict parsing of untrusted input (issue 10): each rule with its exact message.

The CLI-level corpus is ``tests/cli/test_malformed_corpus.py``; here every rule
of :mod:`mlspec_attest.formats.jsonio`, :mod:`mlspec_attest.formats.yamlio`,
:mod:`mlspec_attest.formats.rfc3339` and the policy expiry check is pinned at unit
level, with property tests that nothing but the documented error escapes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlspec_attest.errors import KeyLoadError, MalformedDocumentError, PolicyError
from mlspec_attest.formats import dsse, limits
from mlspec_attest.formats.dsse import Envelope
from mlspec_attest.formats.jsonio import canonical, load_file, loads_strict, nests_deeper_than
from mlspec_attest.formats.limits import (
    MAX_JSON_DEPTH,
    MAX_SAFE_INTEGER,
    MAX_YAML_DEPTH,
    format_size,
    read_limited,
)
from mlspec_attest.formats.rfc3339 import format_rfc3339, parse_rfc3339
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.formats.yamlio import YamlError, decode_yaml, load_yaml
from mlspec_attest.policy.load import lint_policy_text, load_policy_yaml
from mlspec_attest.policy.problems import expiry_problems

from .support import PROJECT_ROOT, KeyPair, Pipeline

BOM = b"\xef\xbb\xbf"
RANGE = "outside the interoperable range ±(2^53−1) (I-JSON, RFC 7493); write it as a string"


def refusal(data: bytes | str, **options: bool) -> str:
    with pytest.raises(MalformedDocumentError) as info:
        loads_strict(data, what="doc", **options)  # type: ignore[arg-type]
    return info.value.message


# ------------------------------------------------------------------ JSON: text
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            BOM + b"{}",
            "doc: not valid JSON: starts with a UTF-8 byte order mark (BOM); remove it (RFC 8259 §8.1)",
        ),
        (
            "\ufeff{}",
            "doc: not valid JSON: starts with a UTF-8 byte order mark (BOM); remove it (RFC 8259 §8.1)",
        ),
        (
            "{}".encode("utf-16"),
            "doc: not valid JSON: starts with a UTF-16 byte order mark; JSON must be UTF-8 without one",
        ),
        (
            "{}".encode("utf-32"),
            "doc: not valid JSON: starts with a UTF-32 byte order mark; JSON must be UTF-8 without one",
        ),
        (b'{"a": "caf\xe9"}', "doc: not valid JSON: not UTF-8 text (byte 0xe9 at offset 10)"),
        (b'"\xed\xa0\x80"', "doc: not valid JSON: not UTF-8 text (byte 0xed at offset 1)"),
        (
            '"\ud800"',  # a str already holding a lone surrogate
            "doc: not valid JSON: text holds an unpaired surrogate",
        ),
        (
            b'{"a": "\\ud800"}',
            "doc: not valid JSON: a string holds an unpaired UTF-16 surrogate escape "
            "(I-JSON, RFC 7493 §2.1)",
        ),
    ],
)
def test_text_must_be_utf8_without_bom(data: bytes | str, message: str) -> None:
    assert refusal(data) == message


def test_valid_text_still_reads() -> None:
    assert loads_strict(b'{"a": "\\ud83d\\ude00", "b": "\\\\ud800"}') == {
        "a": "\U0001f600",
        "b": "\\ud800",  # an escaped backslash, then plain text: no surrogate
    }
    assert loads_strict('"é"') == "é"


# ------------------------------------------------------------------ JSON: numbers
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"m": 1e400}', "doc: number 1e400 is out of range (it overflows to infinity)"),
        ('{"m": -1e400}', "doc: number -1e400 is out of range (it overflows to infinity)"),
        ("[NaN]", "doc: not valid JSON (non-standard JSON constant NaN)"),
        ("[-Infinity]", "doc: not valid JSON (non-standard JSON constant -Infinity)"),
        (f"[{2**53}]", f"doc: integer {2**53} is {RANGE}"),
        (f"[{-(2**53)}]", f"doc: integer {-(2**53)} is {RANGE}"),
        ("[" + "9" * 5000 + "]", f"doc: integer 99999999999999999999… is {RANGE}"),
    ],
)
def test_numbers_must_be_finite_and_in_range(text: str, message: str) -> None:
    assert refusal(text) == message


def test_numbers_at_the_edges_read() -> None:
    edge = [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0]
    assert loads_strict(json.dumps(edge)) == edge
    assert loads_strict("[1e-400, 1.7976931348623157e308, -0.0]") == [
        0.0,
        1.7976931348623157e308,
        -0.0,
    ]


def test_wide_integers_only_when_asked() -> None:
    assert loads_strict(f"[{2**64}]", safe_integers=False) == [2**64]
    assert "Exceeds the limit" in refusal("[" + "9" * 5000 + "]", safe_integers=False)


UNWRITABLE = (
    "cannot be written back as canonical JSON (RFC 8785 writes doubles from 2^53 up to 1e21 "
    "as integers beyond ±(2^53−1)); write it as a string or in larger units"
)


@pytest.mark.parametrize(
    "literal",
    ["1.2e17", "-1.2e17", "9007199254740992.0", "1e17", "9.99999999999999e20", "123456789e12"],
)
def test_doubles_the_canonical_writer_refuses_are_refused_when_read(literal: str) -> None:
    """The reader takes exactly what canonical() writes back: a double of magnitude 2^53 up
    to 1e21 would be re-emitted as a huge integer, so canonical() refuses it, and a reader
    that took it would fail later (hashing, comparing two copies) without naming the file."""
    assert refusal(f'{{"m": {literal}}}') == f"doc: number {literal} {UNWRITABLE}"
    value = float(literal)
    with pytest.raises(MalformedDocumentError):
        canonical({"m": value})
    assert loads_strict(f"[{literal}]", safe_integers=False) == [value]  # never re-emitted


@pytest.mark.parametrize("literal", ["9007199254740991.0", "1e21", "-1e21", "1.5e300", "0.5"])
def test_doubles_at_the_edges_of_the_writer_read_and_write_back(literal: str) -> None:
    [value] = loads_strict(f"[{literal}]")
    assert value == float(literal)
    assert loads_strict(canonical([value])) == [value]


# ------------------------------------------------------------------ JSON: depth
def test_depth_limit_is_exact() -> None:
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads_strict(at_limit) is not None
    over = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    assert refusal(over) == "doc: nested deeper than 64 levels of arrays and objects"
    objects = '{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1)
    assert refusal(objects) == "doc: nested deeper than 64 levels of arrays and objects"


def test_depth_is_checked_before_parsing() -> None:
    # 10^6 levels would overflow any recursive parser; the pre-scan refuses it unbuilt
    assert refusal(b"[" * 10**6) == "doc: nested deeper than 64 levels of arrays and objects"
    assert refusal(b'{"a":' * 10**6) == "doc: nested deeper than 64 levels of arrays and objects"


def test_brackets_inside_strings_do_not_count() -> None:
    inside = json.dumps(["[" * 1000 + '\\"' + "{" * 1000])
    assert loads_strict(inside) == ["[" * 1000 + '\\"' + "{" * 1000]
    assert not nests_deeper_than(inside.encode(), MAX_JSON_DEPTH)
    # an unterminated string neither hides brackets nor costs quadratic time
    assert nests_deeper_than(b"[" * 65 + b'"\\"' * 100_000, MAX_JSON_DEPTH)


def test_canonical_refuses_what_reading_would_refuse() -> None:
    deep: list[object] = []
    for _ in range(MAX_JSON_DEPTH):
        deep = [deep]
    with pytest.raises(MalformedDocumentError) as info:
        canonical(deep)
    assert info.value.message == (
        "value: nested deeper than 64 levels of arrays and objects; readers would refuse it"
    )
    assert loads_strict(canonical(deep[0])) == deep[0]


def test_canonical_refuses_doubles_it_would_write_as_huge_integers() -> None:
    # RFC 8785 writes a double below 1e21 in plain digits: from 2^53 up that is an
    # integer literal beyond the range loads_strict reads, so it is refused at writing
    for value in (float(2**53), 1.1111111111110111e17, -1e20):
        with pytest.raises(MalformedDocumentError) as info:
            canonical({"m": value})
        assert info.value.message == (
            f"value: number {value!r} would be written as an integer beyond ±(2^53−1) "
            "(RFC 8785 writes doubles below 1e21 in plain digits), which readers refuse; "
            "record it as a string or in larger units"
        )
    for value in (float(2**53 - 1), 1e21, -1e300, 0.1):
        assert loads_strict(canonical([value])) == [value]


# ------------------------------------------------------------------ JSON: size, files
def test_size_limits(tmp_path: Path) -> None:
    assert refusal('"0123456789"', max_bytes=5) == (  # type: ignore[arg-type]
        "doc: larger than 5 bytes, the limit for a JSON document"
    )
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(limits.MAX_JSON_BYTES + 1)  # sparse: refused by its size, unread
    with pytest.raises(MalformedDocumentError) as info:
        load_file(big, what="big.json", kind="a test document")
    assert info.value.message == "big.json: larger than 64 MiB, the limit for a test document"


def test_read_limited_does_not_trust_the_file_size() -> None:
    # /dev/zero says it is empty and never ends
    with pytest.raises(KeyLoadError) as info:
        read_limited(Path("/dev/zero"), 1000, what="zero", kind="a key", error=KeyLoadError)
    assert info.value.message == "zero: larger than 1000 bytes, the limit for a key"


def test_read_limited_errors(tmp_path: Path) -> None:
    def message(path: Path) -> str:
        with pytest.raises(MalformedDocumentError) as info:
            read_limited(path, 10, what="x", kind="k")
        return info.value.message

    assert message(tmp_path / "missing") == "x: file not found"
    assert message(tmp_path) == "x: cannot read (is a directory, expected a file)"
    (tmp_path / "ok").write_bytes(b"0123456789")
    assert read_limited(tmp_path / "ok", 10, what="x", kind="k") == b"0123456789"
    os.mkfifo(tmp_path / "fifo")  # nobody writes to it: reads as empty instead of hanging
    assert read_limited(tmp_path / "fifo", 10, what="x", kind="k") == b""


def test_docs_list_every_limit() -> None:
    table = (PROJECT_ROOT / "docs" / "formats.md").read_text("utf-8")
    documented = dict(re.findall(r"^\| `(MAX_\w+)` \| ([^|]+?) \|", table, re.MULTILINE))
    constants = {name: getattr(limits, name) for name in dir(limits) if name.startswith("MAX_")}
    assert set(documented) == set(constants)
    for name, value in constants.items():
        shown = {MAX_SAFE_INTEGER: "2^53−1"}.get(value, format_size(value))
        if name.endswith(("_DEPTH", "_SIGNATURES")):
            shown = str(value)
        if name.endswith("_SHARDS"):  # a count, shown as a power of two and in digits
            shown = f"2^{value.bit_length() - 1} ({value:,})"
        assert documented[name] == shown, name


def test_format_size() -> None:
    assert [format_size(n) for n in (10, 1024, 64 << 20, 1 << 30, 1025)] == [
        "10 bytes",
        "1 KiB",
        "64 MiB",
        "1 GiB",
        "1025 bytes",
    ]


# ------------------------------------------------------------------ JSON: properties
JSON_TOKENS = st.sampled_from(
    [
        *("[", "]", "{", "}", '"', "\\", ":", ",", " ", "1e400", "-", "0", ".5", "e9", "NaN"),
        *("true", "9007199254740993", "\\ud800", "\\udc00", "\ufeff", '"a"', "null", "\x00"),
        "é",
    ]
)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedDocumentError):
        loads_strict(data)


@settings(max_examples=300)
@given(st.text(max_size=200) | st.lists(JSON_TOKENS, max_size=60).map("".join))
def test_any_text_parses_or_raises_malformed(text: str) -> None:
    for data in (text, text.encode("utf-8", "surrogatepass")):
        try:
            value = loads_strict(data)
        except MalformedDocumentError:
            continue
        canonical(value)  # whatever reads also writes: no number or string escapes the rules


# ------------------------------------------------------------------ YAML
def yaml_refusal(text: str) -> str:
    with pytest.raises(YamlError) as info:
        load_yaml(text, what="p.yaml", max_bytes=1 << 20)
    return info.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a: &x [1]\nb: *x\n",
            "p.yaml: not valid YAML: line 1: YAML anchors and aliases (&name, *name, <<: *name) "
            "are not allowed; write the value out in full",
        ),
        (
            "a: {b: 1}\nc:\n  <<: *a\n",
            "p.yaml: not valid YAML: line 3: YAML anchors and aliases (&name, *name, <<: *name) "
            "are not allowed; write the value out in full",
        ),
        (
            "a: !!python/object/apply:os.system [ls]\n",
            "p.yaml: not valid YAML: line 1: explicit YAML tag "
            "'tag:yaml.org,2002:python/object/apply:os.system' is not allowed; "
            "quote the value to make it a string",
        ),
        (
            "a: !!str 1\n",
            "p.yaml: not valid YAML: line 1: explicit YAML tag 'tag:yaml.org,2002:str' is not "
            "allowed; quote the value to make it a string",
        ),
        ("a:\n  b: .nan\n", "p.yaml: not valid YAML: line 2: nan is not a finite number"),
        ("a: [1, 1e400]\n", "p.yaml: not valid YAML: line 1: inf is not a finite number"),
        (
            f"a: {2**64}\n",
            f"p.yaml: not valid YAML: line 1: integer {2**64} is outside the interoperable "
            "range ±(2^53−1); quote it to make it a string",
        ),
        (
            "a: 0x" + "f" * 100 + "\n",
            "p.yaml: not valid YAML: line 1: integer with 400 bits is outside the interoperable "
            "range ±(2^53−1); quote it to make it a string",
        ),
        ("a: 2024-02-30\n", "p.yaml: not valid YAML: day is out of range for month"),
        ("a: 1\n---\nb: 2\n", "p.yaml: not valid YAML: line 2: but found another document"),
        (
            "a: [1\n",  # on the line of the '[' left open, not the line where the parser noticed
            "p.yaml: not valid YAML: line 1: the '[' list opened on this line is not closed "
            "(line 2: expected ',' or ']', but got '<stream end>')",
        ),
        (
            "a: \x00\n",
            "p.yaml: not valid YAML: unacceptable character #x0000: special characters are not "
            "allowed",
        ),
    ],
)
def test_yaml_refusals(text: str, message: str) -> None:
    assert yaml_refusal(text) == message


def test_yaml_joins_escaped_surrogate_pairs() -> None:
    # YAML's \\u is a 16-bit escape: json.dumps writes 😀 as a pair, which must read as 😀
    text = '{"a": "\\ud83d\\ude00", "\\ud83d\\ude01": ["\\ud83d\\ude02"]}'
    assert load_yaml(text, what="p.yaml", max_bytes=1000) == {"a": "😀", "😁": ["😂"]}
    assert yaml_refusal('a: "\\ud800"') == (
        "p.yaml: not valid YAML: line 1: a string holds an unpaired UTF-16 surrogate escape"
    )
    assert yaml_refusal('{"\\ud83d\\ude00": 1, "😀": 2}') == (
        "p.yaml: not valid YAML: line 1: duplicate key '😀'"
    )


def test_yaml_depth_limit_is_exact() -> None:
    at_limit = "a: " + "[" * (MAX_YAML_DEPTH - 1) + "]" * (MAX_YAML_DEPTH - 1)
    assert load_yaml(at_limit, what="p.yaml", max_bytes=1 << 20) is not None
    over = "a: " + "[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH
    assert yaml_refusal(over) == (
        "p.yaml: not valid YAML: line 1: nested deeper than 64 levels of mappings and sequences"
    )
    block = "".join("  " * i + "- \n" for i in range(1, 200))
    assert "nested deeper than 64" in yaml_refusal("a:\n" + block)
    assert "nested deeper than 64" in yaml_refusal("a: " + "[" * 10**5)


def test_billion_laughs_is_refused_at_the_first_anchor() -> None:
    lines = ['l0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    assert "line 1: YAML anchors and aliases" in yaml_refusal("\n".join(lines))


def test_yaml_size_and_encodings() -> None:
    with pytest.raises(YamlError) as info:
        load_yaml("a: 1234567890\n", what="p.yaml", max_bytes=5)
    assert info.value.message == "p.yaml: larger than 5 bytes"
    assert decode_yaml(BOM + b"a: 1\n", what="p.yaml") == "a: 1\n"  # YAML 1.2 allows a BOM
    assert load_yaml("\ufeffa: 1\n", what="p.yaml", max_bytes=100) == {"a": 1}
    for data, message in [
        ("a: 1".encode("utf-16"), "p.yaml: UTF-16 text (byte order mark); save the file as UTF-8"),
        ("a: 1".encode("utf-32"), "p.yaml: UTF-32 text (byte order mark); save the file as UTF-8"),
        (
            b"a: caf\xe9\n",
            "p.yaml: not UTF-8 text (byte 0xe9 at offset 6); is it a binary file?",
        ),
        (
            BOM + b"\x80",
            "p.yaml: not UTF-8 text (byte 0x80 at offset 3); is it a binary file?",
        ),
    ]:
        with pytest.raises(YamlError) as info:
            decode_yaml(data, what="p.yaml")
        assert info.value.message == message


@settings(max_examples=200)
@given(
    st.text(max_size=120)
    | st.lists(
        st.sampled_from(["a", ":", " ", "\n", "-", "[", "]", "{", "}", "&x", "*x", "!!", "'", '"']),
        max_size=40,
    ).map("".join)
)
def test_any_yaml_text_loads_or_raises_yaml_error(text: str) -> None:
    with contextlib.suppress(YamlError):
        load_yaml(text, what="p.yaml", max_bytes=1 << 20)


# ------------------------------------------------------------------ RFC 3339
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "9999-12-31T23:59:59-05:00",
            "'9999-12-31T23:59:59-05:00' is out of range (years 0001-9999 in UTC)",
        ),
        (
            "0001-01-01T00:00:00+01:00",
            "'0001-01-01T00:00:00+01:00' is out of range (years 0001-9999 in UTC)",
        ),
        (
            "2024-02-30T00:00:00Z",
            "'2024-02-30T00:00:00Z' is not a valid instant (day is out of range for month)",
        ),
        (
            "2030-01-01T00:00:00",
            "'2030-01-01T00:00:00' has no time zone (add Z or an offset such as +00:00)",
        ),
        (
            "2030-W01-1T00:00:00Z",
            "'2030-W01-1T00:00:00Z' is not an RFC 3339 date-time (YYYY-MM-DDThh:mm:ssZ or ±hh:mm)",
        ),
        (
            "20300101T000000Z",
            "'20300101T000000Z' is not an RFC 3339 date-time (YYYY-MM-DDThh:mm:ssZ or ±hh:mm)",
        ),
        (
            "2030-01-01T00:00:00+0000",
            "'2030-01-01T00:00:00+0000' is not an RFC 3339 date-time (YYYY-MM-DDThh:mm:ssZ or ±hh:mm)",
        ),
    ],
)
def test_rfc3339_refusals(value: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_rfc3339(value)
    assert str(info.value) == message


def test_rfc3339_accepts_its_own_forms() -> None:
    assert parse_rfc3339("9999-12-31T23:59:59Z") == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert parse_rfc3339("2030-01-01 02:00:00.123456789+02:00") == datetime(
        2030, 1, 1, 0, 0, 0, 123456, tzinfo=UTC
    )
    assert format_rfc3339(datetime(5, 1, 1, tzinfo=UTC)) == "0005-01-01T00:00:00Z"


# ------------------------------------------------------------------ expiry
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_expiry_problems() -> None:
    [expired] = expiry_problems(datetime(2001, 1, 1, tzinfo=UTC), NOW, 7)
    assert (expired.severity, expired.line, expired.path) == ("error", 7, "expires")
    assert expired.message == (
        "policy expired at 2001-01-01T00:00:00Z; verification will always deny it "
        "(set a later 'expires' and sign it again)"
    )
    [soon] = expiry_problems(NOW + timedelta(days=10, hours=1), NOW)
    assert soon.severity == "warning"
    assert soon.message == (
        "policy expires at 2026-01-11T01:00:00Z, in 10 day(s); renew it and sign it again "
        "before then"
    )
    assert expiry_problems(NOW + timedelta(days=30), NOW) == []
    # the widest gaps cannot overflow
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert expiry_problems(far, datetime(1, 1, 1, tzinfo=UTC)) == []
    assert expiry_problems(datetime(1, 1, 1, tzinfo=UTC), far)[0].severity == "error"


def test_lint_reports_an_out_of_range_expiry(pipeline: Pipeline) -> None:
    text = pipeline.policy_text(expires="2099-01-01T00:00:00Z").replace(
        '"2099-01-01T00:00:00Z"', "9999-12-31T23:59:59-05:00"
    )
    policy, problems = lint_policy_text(text, source="p.yaml", base_dir=pipeline.root, now=NOW)
    assert policy is None
    [problem] = problems
    assert problem.path == "expires"
    assert problem.message == "'9999-12-31T23:59:59-05:00' is out of range (years 0001-9999 in UTC)"


def test_an_expired_policy_still_loads(pipeline: Pipeline) -> None:
    # loading is no trust decision: verification denies it, `policy sign` refuses it
    pipeline.write_policy(expires="2001-01-01T00:00:00Z")
    assert load_policy_yaml(pipeline.policy_yaml).expires.year == 2001


def test_policy_files_are_read_boundedly(tmp_path: Path) -> None:
    big = tmp_path / "p.yaml"
    with big.open("wb") as handle:
        handle.truncate(limits.MAX_POLICY_BYTES + 1)
    with pytest.raises(PolicyError) as info:
        load_policy_yaml(big)
    assert info.value.message == f"{big}: larger than 1 MiB, the limit for a policy"
    big.write_bytes(bytes(range(256)))
    with pytest.raises(PolicyError) as info:
        load_policy_yaml(big)
    assert info.value.message == (
        f"{big}: not UTF-8 text (byte 0x80 at offset 128); is it a binary file?"
    )


def test_objectives_bytes_are_decoded_strictly() -> None:
    from mlspec_attest.policy.objectives import load_objectives_text

    with pytest.raises(YamlError) as info:
        load_objectives_text(b"kind: Objectives\n# caf\xe9\n", what="o.yaml")
    assert info.value.message == (
        "o.yaml: not UTF-8 text (byte 0xe9 at offset 22); is it a binary file?"
    )


# ------------------------------------------------------------------ signed content
def test_dsse_payload_and_signature_limits(
    monkeypatch: pytest.MonkeyPatch, keys: dict[str, KeyPair]
) -> None:
    envelope = Envelope.sign(b"0123456789", "t", [keys["owner"].signer]).to_json()
    monkeypatch.setattr(dsse, "MAX_DSSE_PAYLOAD_BYTES", 8)
    with pytest.raises(MalformedDocumentError) as info:
        Envelope.from_json(envelope, what="env")
    assert info.value.message == "env: payload: larger than 8 bytes once decoded"
    monkeypatch.setattr(dsse, "MAX_DSSE_PAYLOAD_BYTES", 10)
    assert Envelope.from_json(envelope).payload == b"0123456789"
    envelope["signatures"] = envelope["signatures"] * (limits.MAX_DSSE_SIGNATURES + 1)
    with pytest.raises(MalformedDocumentError) as info:
        Envelope.from_json(envelope, what="env")
    assert info.value.message == "env: 65 signatures, more than the 64 allowed"


def test_statement_payload_rules(pipeline: Pipeline) -> None:
    pipeline.sign("ingest")
    doc = json.loads(pipeline.bundle_path("ingest").read_bytes())
    payload = base64.b64decode(doc["dsseEnvelope"]["payload"])
    assert StageStatement.from_payload(payload).name == "ingest"
    for bad, message in [
        (BOM + payload, "starts with a UTF-8 byte order mark"),
        (payload.replace(b'"metrics":{}', b'"metrics":{"mae":1e400}'), "1e400 is out of range"),
        (payload.replace(b'"metrics":{}', b'"metrics":{"n":%d}' % 2**60), "±(2^53−1)"),
    ]:
        with pytest.raises(MalformedDocumentError) as info:
            StageStatement.from_payload(bad, what="ingest")
        assert message in info.value.message


@pytest.mark.parametrize("compressed", [False, True])
def test_a_data_line_longer_than_the_bound_is_refused_before_it_is_held(
    tmp_path: Path, compressed: bool
) -> None:
    # Python's csv takes a file a line at a time: a 2 GiB line without a newline (2 MB
    # gzipped) was held whole, 3 GB, and died with exit 70
    import gzip

    from mlspec_attest.errors import BadInputError
    from mlspec_attest.formats.cells import TabularReader

    line = b"a,b\n" + b"x" * (limits.MAX_DATA_LINE_CHARS + 10)
    path = tmp_path / ("long.csv.gz" if compressed else "long.csv")
    path.write_bytes(gzip.compress(line) if compressed else line)
    with (
        pytest.raises(BadInputError, match="a line longer than 16 MiB characters"),
        TabularReader(path) as reader,
    ):
        for _ in reader:
            pass
    fits = tmp_path / "fits.csv"
    fits.write_bytes(b"a,b\n" + b"1," + b"y" * 100_000 + b"\n")
    with TabularReader(fits) as reader:
        assert sum(1 for _ in reader) == 1
