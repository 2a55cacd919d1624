"""Deterministic CBOR of maps whose keys are known, faster than cbor2's canonical mode.

cbor2's ``canonical=True`` sorts every map's keys by their encoding, which is most of
what it costs to encode an inference record (about 9 µs). A record's keys are one of two
fixed sets, so their deterministic order (RFC 8949 §4.2.3's length-first order, which
cbor2 uses) is known in advance. :class:`MapEncoder` lays a map out as one flat list,
each key followed by its value, in that order, and encodes the list with cbor2's
canonical encoder: a map's body *is* its keys and values in turn, so the list's encoding
with the map's head in place of the array's is byte for byte what cbor2 writes for the
map (the values, floats and nested maps included, are encoded canonically by cbor2
itself). One call into cbor2 instead of a sort. A map of any other key set goes to
cbor2's canonical encoder whole.

The log's audit re-encodes every record with cbor2's canonical encoder and compares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

import cbor2

_MAX_KEYS = 23  # a map head of one byte


class _Layout(NamedTuple):
    """How one key set is written: the map's head, the flat list with the keys at even
    places and room for each value after its key, and a getter of the values in order."""

    head: bytes
    flat: list[object]
    values: Callable[[dict[str, Any]], tuple[Any, ...]]


def _layout(keys: frozenset[str]) -> _Layout:
    order = sorted(keys, key=lambda k: (len(k.encode()), k.encode()))
    if not 1 < len(order) <= _MAX_KEYS:
        raise ValueError(f"MapEncoder cannot lay out the keys {order}")
    return _Layout(
        bytes((0xA0 | len(order),)), [x for key in order for x in (key, None)], itemgetter(*order)
    )


class MapEncoder:
    """``cbor2.dumps(m, canonical=True)`` for maps with one of ``key_sets`` as keys (see the
    module docstring); any other map is handed to cbor2 as it is."""

    def __init__(self, key_sets: Iterable[frozenset[str]]) -> None:
        self._layouts = [(keys, _layout(keys)) for keys in key_sets]

    def encode(self, m: dict[str, Any]) -> bytes:
        keys = m.keys()
        layout = next((lay for known, lay in self._layouts if keys == known), None)
        if layout is None:
            return cbor2.dumps(m, canonical=True)
        return _encode_flat(layout, layout.values(m))

    def values_encoder(
        self, keys: frozenset[str]
    ) -> tuple[tuple[str, ...], Callable[[Sequence[Any]], bytes]]:
        """For maps of exactly ``keys`` (one of the key sets): their keys in encoding
        order, and a function giving :meth:`encode` of such a map from its values in that
        order, so that a caller that has the values need not build the map."""
        layout = next(lay for known, lay in self._layouts if known == keys)
        return tuple(str(key) for key in layout.flat[::2]), lambda v: _encode_flat(layout, v)


def _encode_flat(layout: _Layout, values: Sequence[Any]) -> bytes:
    flat = layout.flat.copy()
    flat[1::2] = values
    data = cbor2.dumps(flat, canonical=True)
    # The array's head: one byte below 24 items, two up to 255 (2 x 23 = 46 at most).
    return layout.head + (data[1:] if len(flat) < 24 else data[2:])
