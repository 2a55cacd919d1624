"""NCSA lines: Combined Log Format parsers read them; client values cannot break them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlspec_attest.log.ncsa import (
    COMBINED,
    EXTENSION,
    EXTENSION_KEYS,
    clf_time,
    extension,
    line_of_map,
)
from mlspec_attest.log.record import clean_text
from tests.log.test_record import base_map

# The Combined Log Format regex as log tools (and the Apache docs) write it, independent
# of ours: host ident authuser [date] "request" status bytes "referer" "user-agent".
STANDARD = re.compile(
    r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"'
)


def _unescape(text: str) -> str:
    raw = re.sub(r"\\x([0-9A-F]{2})", lambda m: chr(int(m[1], 16)), text)
    return raw.encode("latin-1").decode("utf-8", "surrogatepass")


def test_example_line() -> None:
    line = line_of_map(base_map())
    assert line == (
        "10.0.0.7 - sha256:"
        + "ef" * 32
        + ' [07/Dec/2025:00:48:12 +0000] "POST /v2/models/iris/infer HTTP/1.1" '
        '200 57 "-" "curl/8.5" rid="req-7" model="iris" version="3" vsa="' + base_map()["vd"] + '" '
        'input="sha256:' + "01" * 32 + '" output="{\\x22outputs\\x22:[{\\x22data\\x22:[1,0.5],'
        '\\x22name\\x22:\\x22predict\\x22}]}" latency_us="812" seq="7"'
    )
    match = STANDARD.match(line)
    assert match is not None
    assert match.groups()[:9] == (
        "10.0.0.7", "-", "sha256:" + "ef" * 32, "07/Dec/2025:00:48:12 +0000",
        "POST /v2/models/iris/infer HTTP/1.1", "200", "57", "-", "curl/8.5",
    )  # fmt: skip
    keys = [m["key"] for m in EXTENSION.finditer(line[match.end() :])]
    assert keys == list(EXTENSION_KEYS)
    assert extension(line, "seq") == "7" and extension(line, "rid") == "req-7"


def test_clf_time() -> None:
    assert clf_time("2025-01-02T03:04:05.000006Z") == "02/Jan/2025:03:04:05 +0000"
    assert clf_time("0999-12-31T23:59:59.999999Z") == "31/Dec/0999:23:59:59 +0000"


ATTACKS = [
    'Mozilla"; rm -rf /',
    "evil\nline2 - - [01/Jan/2000:00:00:00 +0000]",
    "back\\slash\\x22",
    '" 200 0 "-" "forged',
    "tab\there\rcr",
    "unicode ✓ and \u2028 and \x7f",
    "",
]


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("a", "agent"),
        ("p", "path"),
        ("f", "referer"),
        ("r", None),
        ("c", "host"),
        ("u", "user"),
        ("m", "method"),
    ],
)
def test_client_values_cannot_break_the_line(attack: str, key: str, field: str | None) -> None:
    m = base_map(**{key: attack or ("x" if key == "r" else attack)})
    line = line_of_map(m)
    assert "\n" not in line and "\r" not in line
    assert line.isascii() and line.isprintable()
    match = COMBINED.fullmatch(line[: STANDARD.match(line).end()])  # type: ignore[union-attr]
    assert match is not None
    assert STANDARD.match(line) is not None
    rest = line[match.end() :]
    assert [e["key"] for e in EXTENSION.finditer(rest)] == list(EXTENSION_KEYS)
    assert "".join(e[0] for e in EXTENSION.finditer(rest)) == rest  # nothing else in it
    if field is not None and attack:
        assert _unescape(match[field]) == attack
    if key == "r" and attack:
        assert _unescape(extension(line, "rid") or "") == attack


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.text(), min_size=8, max_size=8),
    output=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(), c, max_size=3),
        max_leaves=8,
    ),
)
def test_any_values_give_one_parseable_line(values: list[str], output: Any) -> None:
    c, u, m_, p, h, a, f, r = (clean_text(v) for v in values)
    fields: dict[str, Any] = {
        "c": c,
        "u": u,
        "m": m_,
        "p": p,
        "h": h,
        "a": a,
        "f": f,
        "r": r or "x",
        "o": output,
    }
    line = line_of_map(base_map(**fields))
    assert line.isascii() and line.isprintable()
    match = COMBINED.match(line)
    assert match is not None
    rest = line[match.end() :]
    assert "".join(e[0] for e in EXTENSION.finditer(rest)) == rest
    for name, value in (("host", c), ("user", u), ("method", m_), ("path", p), ("protocol", h)):
        assert _unescape(match[name]) == (value or "-")
    assert _unescape(match["agent"]) == a and _unescape(match["referer"]) == f
