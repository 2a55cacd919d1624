"""The pieces of the Arrow path of ``mlspec-rows/v2`` shared by every column type.

:mod:`mlspec_attest.formats.rowarrow` encodes a column, :mod:`.rowarrow_text` a
column of text; both build on these: the lazily imported pyarrow, the
:class:`Decline` that hands data back to the reference
(:mod:`mlspec_attest.formats.rowform`), a column's canonical pairs
(:class:`Column`), cells computed by the reference (:func:`patch`) and the
spelling of doubles (:func:`double_tokens`).
"""

from __future__ import annotations

import sys
from typing import Any, Final

from msgspec import Struct

from mlspec_attest.errors import BadInputError, require
from mlspec_attest.formats.jsonio import canonical_value
from mlspec_attest.formats.rowform import normalize_value

_SAFE_INTEGER: Final = float(2**53)
# Below this, Arrow's shortest spelling of a fraction is RFC 8785's (measured: from
# 1e10 Arrow switches to exponent form; below 1e-6 both use it, alike).
_PLAIN_FRACTION_LIMIT: Final = 1e10


class Decline(Exception):
    """The vectorized path cannot vouch for this part of the data: use the reference."""


_MODULES: list[Any] = []


def arrow() -> tuple[Any, Any]:
    """(pyarrow, pyarrow.compute); a missing pyarrow is the usual :class:`BackendError`."""
    if _MODULES and sys.modules.get("pyarrow.compute") is _MODULES[1]:
        return _MODULES[0], _MODULES[1]
    pa = require("pyarrow", "reading data files through Arrow")
    pc = require("pyarrow.compute", "reading data files through Arrow")
    _MODULES[:] = [pa, pc]
    return pa, pc


class Column(Struct, frozen=True):
    """One column's canonical pairs (string array, null for null values), each
    ``,["name",value]`` (see :func:`pair_prefix`).

    ``ambiguous`` marks cells whose pair is an integer the reference may hold as a
    double (``7.0000000000000001`` is the double 7.0 and reads ``7``, like the
    integer 7); only the constant-column check needs to tell them apart, through
    :func:`python_values` of ``raw``. ``exact`` is False when ``raw`` is not what the
    reference reads (JSON numbers parsed to doubles), so it cannot tell.
    """

    pairs: Any
    raw: Any
    ambiguous: Any | None = None
    exact: bool = True


def pair_prefix(name: str) -> str:
    """``,["name",`` in RFC 8785: a pair starts with the comma that separates it
    from the one before (:func:`join_rows` drops the first)."""
    return ",[" + canonical_value(name).decode("utf-8") + ","


def join(*parts: Any) -> Any:
    """Element-wise concatenation of arrays and scalars (null in, null out)."""
    _, pc = arrow()
    return pc.binary_join_element_wise(*parts, "")


def reference_token(value: Any) -> str | None:
    """The reference's RFC 8785 text of one value; None when it is null."""
    try:
        normalized = normalize_value(value)
        if normalized is None:
            return None
        return canonical_value(normalized).decode("utf-8")
    except BadInputError as exc:
        raise Decline(exc.message) from exc


def reference_pairs(prefix: str, values: list[Any]) -> Any:
    """The pairs of ``values`` computed by the reference, one by one."""
    pa, _ = arrow()
    tokens = [reference_token(v) for v in values]
    return pa.array([None if t is None else prefix + t + "]" for t in tokens], pa.string())


def patch(prefix: str, pairs: Any, raw: Any, mask: Any) -> Any:
    """``pairs`` with the cells of ``mask`` computed by the reference from ``raw``."""
    _, pc = arrow()
    if not pc.any(mask).as_py():
        return pairs
    cells = pc.take(raw, pc.indices_nonzero(mask)).to_pylist()
    return pc.replace_with_mask(pairs, mask, reference_pairs(prefix, cells))


def double_tokens(doubles: Any) -> tuple[Any, Any, Any]:
    """(tokens, reference cells, whole-number cells) of finite doubles.

    Whole numbers below 2**53 are spelled as integers (``-0.0`` is ``0``), fractions
    below 1e10 as Arrow spells them (RFC 8785's spelling there); the rest, and
    every non-finite value, is left to the reference (null token, flagged).
    """
    pa, pc = arrow()
    finite = pc.fill_null(pc.is_finite(doubles), False)
    magnitude = pc.abs(doubles)
    whole = pc.and_(finite, pc.equal(doubles, pc.floor(doubles)))
    small_whole = pc.and_(whole, pc.less(magnitude, _SAFE_INTEGER))
    fraction = pc.and_(pc.and_(finite, pc.invert(whole)), pc.less(magnitude, _PLAIN_FRACTION_LIMIT))
    no_double = pa.scalar(None, pa.float64())
    tokens = pc.if_else(fraction, doubles, no_double).cast(pa.string())
    if pc.any(small_whole).as_py():
        int_tokens = pc.if_else(small_whole, doubles, no_double).cast(pa.int64()).cast(pa.string())
        tokens = pc.coalesce(int_tokens, tokens)
    handled = pc.fill_null(pc.or_(small_whole, fraction), False)
    reference = pc.and_(pc.is_valid(doubles), pc.invert(handled))
    return tokens, reference, pc.fill_null(small_whole, False)


__all__ = [
    "Column",
    "Decline",
    "arrow",
    "double_tokens",
    "join",
    "pair_prefix",
    "patch",
    "reference_pairs",
    "reference_token",
]
