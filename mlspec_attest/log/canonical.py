"""Deterministic CBOR of maps whose keys are known, faster than cbor2's canonical mode.

cbor2's ``canonical=True`` sorts every map's keys by their encoding and writes each float
in its shortest exact form: about 9 µs for an inference record, most of it the sort. A
record's keys are one of two fixed sets and every value but one (the output) is text, an
integer, bytes or null, which encode the same in either mode. :class:`MapEncoder` writes
such a map as cbor2 would: the keys in the deterministic order (RFC 8949 §4.2.3's
length-first order, which cbor2 uses), the values before and after the free-form one as
arrays whose heads are dropped, that one value through cbor2's canonical encoder, and a
map's head in front. A map of any other key set goes to cbor2's canonical encoder whole.

The log's audit re-encodes every record with cbor2's canonical encoder and compares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any, NamedTuple

import cbor2

_MAX_KEYS = 23  # a map head of one byte


class _Layout(NamedTuple):
    """How one key set is written: the map's head, then the keys before the free value,
    that value's key, and the keys after it, each as a list with the keys at even places
    and room for each value after its key, with a getter of those values in order."""

    head: bytes
    before: list[object]
    before_values: Callable[[dict[str, Any]], tuple[Any, ...]]
    free_key: bytes
    after: list[object]
    after_values: Callable[[dict[str, Any]], tuple[Any, ...]]


def _layout(keys: frozenset[str], free: str) -> _Layout:
    order = sorted(keys, key=lambda k: (len(k.encode()), k.encode()))
    at = order.index(free)
    before, after = order[:at], order[at + 1 :]
    if not (len(before) > 1 and len(after) > 1 and len(order) <= _MAX_KEYS):
        raise ValueError(f"MapEncoder cannot lay out the keys {order}")
    return _Layout(
        bytes((0xA0 | len(order),)),
        [x for key in before for x in (key, None)],
        itemgetter(*before),
        cbor2.dumps(free),
        [x for key in after for x in (key, None)],
        itemgetter(*after),
    )


def _array_body(items: list[object]) -> bytes:
    """The CBOR of ``items`` without the array's head (one byte below 24 items, else two)."""
    data = cbor2.dumps(items)
    return data[1:] if len(items) < 24 else data[2:]


class MapEncoder:
    """``cbor2.dumps(m, canonical=True)`` for maps with one of ``key_sets`` as keys, where
    every value but ``free``'s is text, an integer, bytes, a boolean or null (see the
    module docstring); the caller vouches for the values."""

    def __init__(self, key_sets: Iterable[frozenset[str]], free: str) -> None:
        self._layouts = [(keys, _layout(keys, free)) for keys in key_sets]
        self._free = free

    def encode(self, m: dict[str, Any]) -> bytes:
        keys = m.keys()
        layout = next((lay for known, lay in self._layouts if keys == known), None)
        if layout is None:
            return cbor2.dumps(m, canonical=True)
        before, after = layout.before.copy(), layout.after.copy()
        before[1::2], after[1::2] = layout.before_values(m), layout.after_values(m)
        free = cbor2.dumps(m[self._free], canonical=True)
        return b"".join(
            (layout.head, _array_body(before), layout.free_key, free, _array_body(after))
        )
