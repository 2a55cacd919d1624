"""A prediction's output as a record holds it: plain JSON types, checked.

The server hands the log whatever its model returned (numpy scalars already made Python
numbers by the loaders, tuples, subclasses of ``str`` or ``float``, dicts); a record
holds only what CBOR and the access log's JSON both hold the same way. This runs on the
request path for every inference, so the common output (a flat list of plain numbers)
is checked in a few C calls and everything else walked once.
"""

from __future__ import annotations

import math
from typing import Any, Final

from mlspec_attest.formats.limits import MAX_JSON_DEPTH
from mlspec_attest.log.record import INT_RANGE, RecordError, clean_text


def normalize_output(value: Any) -> Any:
    """``value`` as plain JSON types (tuples become lists, subclasses of int, float and
    str their base type, text valid Unicode), holding what
    :func:`~mlspec_attest.log.record.check_map` accepts as an output; RecordError for
    anything else. Recursion stops at MAX_JSON_DEPTH."""
    if type(value) is list and _plain_numbers(value):
        return value[:]
    return _plain(value, 1)


def _plain_numbers(values: list[Any]) -> bool:
    """Whether ``values`` are all floats, finite (their sum is finite only if each is:
    an infinity or NaN makes it one; an overflow only sends them the long way), or all
    ints within CBOR's range: most models' outputs, checked in a few C calls."""
    kinds = set(map(type, values))
    if kinds == _FLOAT:
        return math.isfinite(sum(values))
    return kinds == _INT and INT_RANGE[0] <= min(values) and max(values) <= INT_RANGE[1]


_FLOAT: Final = {float}
_INT: Final = {int}


def _plain(node: Any, depth: int) -> Any:
    kind = type(node)
    if kind is str:
        return node if node.isascii() else clean_text(node)
    if kind is float:
        if not math.isfinite(node):
            raise RecordError("output holds a non-finite number")
        return node
    if kind is int:
        if not INT_RANGE[0] <= node <= INT_RANGE[1]:
            raise RecordError("output holds an integer beyond 64 bits")
        return node
    if node is None or kind is bool:
        return node
    if kind is list or kind is tuple or kind is dict:
        if depth > MAX_JSON_DEPTH:
            raise RecordError(f"output nests deeper than {MAX_JSON_DEPTH}")
        if kind is dict:
            if any(type(k) is not str for k in node):
                return _plain(_subclass(node), depth)
            return {clean_text(k): _plain(v, depth + 1) for k, v in node.items()}
        return [_plain(child, depth + 1) for child in node]
    return _plain(_subclass(node), depth)


def _subclass(node: Any) -> Any:
    """A subclass of a JSON type as that type; RecordError for anything else."""
    bases: tuple[type[Any], ...] = (bool, int, float, str, list, tuple)
    for base in bases:
        if isinstance(node, base):
            return base(node)
    if isinstance(node, dict) and all(isinstance(k, str) for k in node):
        return {str(k): v for k, v in node.items()}
    raise RecordError(f"output holds a {type(node).__name__}, not a JSON value")


__all__ = ["normalize_output"]
