"""``mlspec-rows/v2`` a whole column at a time: the canonical pairs of an Arrow array.

The reference is :mod:`mlspec_attest.formats.rowform`, one value at a time in
Python. This module computes the same bytes with pyarrow.compute over a column:
for each cell the RFC 8785 text of its ``[name, value]`` pair, or null when the
value is null (so the row, the pairs joined in name order, leaves it out).

It handles the common cases: text (CSV cells, Parquet and JSON strings), integers,
doubles, booleans and nulls. Every cell it cannot prove gives the reference's
bytes is computed by the reference instead (:func:`encode_column` names them):

* text holding a code point this Python's Unicode does not assign (Arrow's NFC
  may know a newer Unicode; for assigned characters NFC is stable across versions);
* numbers that are not finite as a double, whole numbers from 2**53 up (exact
  integers are spelled as strings), and fractions of 1e10 or more (Arrow writes
  ``1.5e+10`` where RFC 8785 writes ``15000000000.5``);
* every value of another type: decimals, dates, times, bytes, lists, structs, ...

A cell the reference refuses raises :class:`Decline`: the caller reads that part
of the file again with the reference engine, which raises the error it always did.
pyarrow is imported through :func:`mlspec_attest.errors.require` on first use.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from mlspec_attest.errors import BackendError, BadInputError
from mlspec_attest.formats.rowarrow_cells import (
    Column,
    Decline,
    arrow,
    double_tokens,
    join,
    pair_prefix,
    patch,
    reference_pairs,
    reference_token,
)
from mlspec_attest.formats.rowarrow_text import WHITESPACE, text_column
from mlspec_attest.formats.rowform import normalize_value


def available() -> bool:
    """pyarrow imports and gives the reference's bytes on the canaries (:func:`self_check`,
    once per process; whether pyarrow imports is asked each time)."""
    try:
        arrow()
    except BackendError:
        return False
    return self_check()


def encode_column(name: str, raw: Any, *, exact: bool = True) -> Column:
    """The canonical pairs of one column named ``name`` (canonical) holding ``raw``.

    ``exact=False``: doubles in ``raw`` were parsed from JSON text the reference
    keeps (``1e400``, ``NaN``, ``12345678901234567890123``): every double the
    vectorized spelling does not cover declines instead of going to the reference.
    """
    pa, pc = arrow()
    kind = raw.type
    if pa.types.is_dictionary(kind):
        inner = encode_column(name, raw.dictionary, exact=exact)
        ambiguous = inner.ambiguous
        if ambiguous is not None:
            ambiguous = pc.fill_null(pc.take(ambiguous, raw.indices), False)
        return Column(pc.take(inner.pairs, raw.indices), raw, ambiguous)
    prefix = pair_prefix(name)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return text_column(prefix, raw.cast(pa.string()))
    if pa.types.is_integer(kind):
        return Column(_integer_pairs(prefix, raw), raw)
    if pa.types.is_float32(kind) or pa.types.is_float64(kind):
        return _float_column(prefix, raw, exact)
    if pa.types.is_boolean(kind):
        tokens = pc.if_else(raw, pa.scalar("true"), pa.scalar("false"))
        return Column(join(prefix, tokens, "]"), raw)
    if pa.types.is_null(kind):
        return Column(pa.nulls(len(raw), pa.string()), raw)
    return _fallback_column(name, raw)


def _fallback_column(name: str, raw: Any) -> Column:
    """Every cell through the reference (types the vectorized path does not cover)."""
    pa, _ = arrow()
    pairs = reference_pairs(pair_prefix(name), raw.to_pylist())
    return Column(pairs, raw, pa.array([True] * len(raw), pa.bool_()))


def _integer_pairs(prefix: str, raw: Any) -> Any:
    """Integers below 2**53 in magnitude as numbers, larger ones as strings of digits."""
    pa, pc = arrow()
    digits = raw.cast(pa.string())
    wide = raw if pa.types.is_uint64(raw.type) else raw.cast(pa.int64())
    large = pc.greater_equal(wide, pa.scalar(2**53, wide.type))
    if not pa.types.is_unsigned_integer(raw.type):
        large = pc.or_(large, pc.less_equal(wide, pa.scalar(-(2**53), wide.type)))
    large = pc.fill_null(large, False)
    if pc.any(large).as_py():
        quoted = join(pa.scalar('"'), digits, pa.scalar('"'))
        digits = pc.if_else(large, quoted, digits)
    return join(pa.scalar(prefix), digits, pa.scalar("]"))


def _float_column(prefix: str, raw: Any, exact: bool) -> Column:
    """Parquet/JSON doubles: NaN is null, infinities the text ``inf``/``-inf``."""
    pa, pc = arrow()
    doubles = raw.cast(pa.float64())
    tokens, reference, whole = double_tokens(doubles)
    if not exact:
        if pc.any(reference).as_py():
            raise Decline("a JSON number the reference spells from its text")
        pairs = join(pa.scalar(prefix), tokens, pa.scalar("]"))
        # 7.0 is the integer 7 to the reference, 7.0000000000000001 the double 7.0.
        return Column(pairs, raw, whole, exact=False)
    nan = pc.fill_null(pc.is_nan(doubles), False)
    if pc.any(nan).as_py():
        reference = pc.and_(reference, pc.invert(nan))
    inf = pc.fill_null(pc.is_inf(doubles), False)
    if pc.any(inf).as_py():
        signed = pc.if_else(pc.greater(doubles, 0.0), pa.scalar('"inf"'), pa.scalar('"-inf"'))
        tokens = pc.if_else(inf, signed, tokens)
        reference = pc.and_(reference, pc.invert(inf))
    pairs = patch(prefix, join(pa.scalar(prefix), tokens, pa.scalar("]")), raw, reference)
    return Column(pairs, raw, reference)


def python_values(column: Column, rows: Any) -> list[Any]:
    """The reference's normalized values of ``rows`` (indices) of a column."""
    _, pc = arrow()
    if not column.exact:
        raise Decline("the values were not read as the reference reads them")
    out: list[Any] = []
    for value in pc.take(column.raw, rows).to_pylist():
        try:
            out.append(normalize_value(value))
        except BadInputError as exc:
            raise Decline(exc.message) from exc
    return out


# --- rows ------------------------------------------------------------------------
def join_rows(pairs: list[Any], rows: int) -> list[bytes]:
    """The RFC 8785 bytes of each row: its non-null pairs (in the order given) joined."""
    pa, pc = arrow()
    if not pairs:
        return [b"[]"] * rows
    # Nulls replaced by nothing, not skipped: pyarrow's "skip" drops rows whose
    # every input is null (pyarrow 26) instead of joining them to "".
    joined = pc.binary_join_element_wise(
        pa.scalar("["), *pairs, pa.scalar("]"), "", null_handling="replace", null_replacement=""
    )
    joined = pc.replace_substring(joined, "[,", "[", max_replacements=1)  # the first comma
    values: list[bytes] = joined.cast(pa.binary()).to_pylist()
    return values


# --- the canaries ----------------------------------------------------------------
_CANARY_TEXT: Final = [
    *(" 007 ", "+7", "-0", "7.0", "7e0", "0.7E1", ".1", "1.", "1e-7", "1.5E-7", "0.000001"),
    *("123.456", "9999999999.5", "1e21", "4503599627370495.5", "-0.0", "1e-400", "5e-324"),
    *("\u00a0x\u3000", "a\r\nb", "Jose\u0301", "a\u200bb", "\ufeffx", 'q"\\\x01\x1f', "\t"),
]
_CANARY_DOUBLES: Final = [
    *(0.1, 1 / 3, -2.5e-7, 1e-6, 123456789.125, 9999999999.75, 1e21, 5e-324, 1.5, -0.0, 1e300),
]


@functools.cache
def self_check() -> bool:
    """Whether this pyarrow spells the canaries exactly as the reference does."""
    pa, _ = arrow()
    checks: list[tuple[list[Any], Any]] = [
        (_CANARY_TEXT, pa.array(_CANARY_TEXT, pa.string())),
        (_CANARY_DOUBLES, pa.array(_CANARY_DOUBLES, pa.float64())),
    ]
    for values, array in checks:
        try:
            got = encode_column("c", array).pairs.to_pylist()
        except (Decline, pa.ArrowException):
            return False
        expected = [None if (t := reference_token(v)) is None else f',["c",{t}]' for v in values]
        if got != expected:
            return False
    return True


__all__ = [
    "WHITESPACE",
    "Column",
    "Decline",
    "arrow",
    "available",
    "encode_column",
    "join_rows",
    "python_values",
    "self_check",
]
