"""Hypothesis strategies shared by the property tests: JSON values, names, byte mutations."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from mlspec_attest.formats.stages import StageKind

MAX_SAFE_INTEGER = 2**53 - 1
HEX = "0123456789abcdef"

#: MLSPEC_PROPERTY_SCALE=20 multiplies every example budget (a long local run).
SCALE = max(1, int(os.environ.get("MLSPEC_PROPERTY_SCALE", "1")))


def budget(examples: int) -> Callable[[Any], Any]:
    """Hypothesis settings for one property: ``examples`` (times SCALE), no deadline."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ------------------------------------------------------------------ JSON values
#: Numbers every reader agrees on: I-JSON integers, and doubles below 2**53 in magnitude
#: (RFC 8785 writes larger integral doubles as plain digits; see the properties on them).
safe_floats = st.floats(
    min_value=-float(MAX_SAFE_INTEGER),
    max_value=float(MAX_SAFE_INTEGER),
    allow_nan=False,
    allow_infinity=False,
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | safe_floats
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=16,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=5)
finite_numbers = st.integers(-(10**9), 10**9) | st.floats(
    min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False
)


def hex_digest(size: int = 32) -> st.SearchStrategy[str]:
    return st.text(HEX, min_size=2 * size, max_size=2 * size)


# ------------------------------------------------------------------ names
stage_names = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,15}", fullmatch=True)
run_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}", fullmatch=True)
stage_kinds = st.sampled_from([k.value for k in StageKind])
_component = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\x00"),
    min_size=1,
    max_size=6,
).filter(lambda c: c not in (".", ".."))
#: Normalized relative artifact names: what check_relative_name accepts.
artifact_names = st.lists(_component, min_size=1, max_size=3).map("/".join)
#: Text YAML carries as is in a double-quoted scalar (YAML refuses raw control characters,
#: and JSON's surrogate-pair escapes are a known YAML disagreement: see test_properties_documents).
yaml_text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=8)
instants = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


# ------------------------------------------------------------------ mutations
TOKENS = (
    b'"',
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"-0",
    b"1e400",
    b"9007199254740993",
    b"1.5e308",
    b'"\\ud800"',
    b"\\u0000",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\n- ",
    b": &a [*a, *a]",
    b"!!binary ",
    b"0000-01-01T00:00:00Z",
)


@st.composite
def mutated(draw: st.DrawFn, originals: list[bytes]) -> bytes:
    """One of ``originals`` with a few byte-level edits (flips, insertions, cuts, tokens)."""
    data = bytearray(draw(st.sampled_from(originals)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "insert", "delete", "token")))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            data[min(pos, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        else:
            data[pos:pos] = draw(st.sampled_from(TOKENS))
    return bytes(data)


def _slots(doc: Any) -> list[tuple[Any, Any]]:
    """(container, key) of every value inside ``doc``."""
    out: list[tuple[Any, Any]] = []
    todo = [doc]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            out.extend((node, k) for k in node)
            todo.extend(node.values())
        elif isinstance(node, list):
            out.extend((node, i) for i in range(len(node)))
            todo.extend(node)
    return out


@st.composite
def mutated_doc(draw: st.DrawFn, original: Any) -> Any:
    """``original`` (a JSON document) with one to three values replaced, removed or added."""
    doc = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(doc)
        if not slots:
            return draw(json_values)
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(("replace", "delete", "add")))
        if action == "replace":
            container[key] = draw(json_values)
        elif action == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[draw(st.text(max_size=10))] = draw(json_values)
        else:
            container.insert(key, draw(json_values))
    return doc
