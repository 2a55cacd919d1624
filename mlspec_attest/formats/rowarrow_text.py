"""The Arrow path of ``mlspec-rows/v2`` for a column of text (CSV cells, JSON and Parquet strings).

Reference steps (:mod:`mlspec_attest.formats.rowform`), a column at a time:
invisible format characters removed and NFC (non-ASCII cells only), CR LF and
CR made LF, Python's ``str.strip()`` whitespace trimmed, empty text null,
numeric text a number (:data:`NUMBER`), the rest an RFC 8785 string.

Cells holding a code point this Python's Unicode does not assign are computed by
the reference: Arrow's NFC (utf8proc) may know a newer Unicode, and NFC is only
stable across versions for assigned characters. Numbers follow
:func:`~mlspec_attest.formats.rowarrow_cells.double_tokens`.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Any, Final

from mlspec_attest.formats.rowarrow_cells import (
    Column,
    Decline,
    arrow,
    double_tokens,
    join,
    patch,
)
from mlspec_attest.formats.rowform import INVISIBLE_RANGES

#: What Python's ``str.strip()`` removes (``str.isspace``; none is above U+3000).
WHITESPACE: Final = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
NUMBER: Final = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_CONTROL_OR_ESCAPED: Final = r'[\x00-\x1f"\\]'
_ESCAPES: Final = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _re2_class(ranges: list[tuple[int, int]]) -> str:
    return "[" + "".join(f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in ranges) + "]"


@functools.cache
def _invisible_class() -> str:
    return _re2_class(list(INVISIBLE_RANGES))


@functools.cache
def _unassigned_class() -> str:
    """Code points this Python's Unicode leaves unassigned (planes 0-3 and 14 checked
    one by one; the others hold no assigned character in any version Python knows)."""
    ranges: list[tuple[int, int]] = []
    start: int | None = None
    for plane in (0, 1, 2, 3, 14):
        for cp in range(plane << 16, (plane + 1) << 16):
            if unicodedata.category(chr(cp)) == "Cn":
                start = cp if start is None else start
                continue
            if start is not None:
                ranges.append((start, cp - 1))
                start = None
        if start is not None:
            ranges.append((start, ((plane + 1) << 16) - 1))
            start = None
    ranges += [(0x40000, 0xDFFFF)]
    return _re2_class(ranges)


def prepare_text(text: Any) -> tuple[Any, Any | None, bool]:
    """Reference step 1 and the strip: (prepared text, cells left to the reference or
    None, whether the text may hold characters RFC 8785 escapes).

    Invisible format characters removed and NFC (non-ASCII cells), CR LF and CR
    made LF, Python's ``str.strip()`` whitespace trimmed.
    """
    _, pc = arrow()
    reference = None
    if pc.all(pc.string_is_ascii(text)).as_py():
        if pc.all(pc.ascii_is_printable(text)).as_py():  # no CR, no control character
            return pc.ascii_trim(text, characters=" "), None, False
    else:
        reference = pc.fill_null(pc.match_substring_regex(text, _unassigned_class()), False)
        text = pc.replace_substring_regex(text, _invisible_class(), "")
        text = pc.utf8_normalize(text, form="NFC")
    if pc.any(pc.match_substring(text, "\r")).as_py():
        text = pc.replace_substring(pc.replace_substring(text, "\r\n", "\n"), "\r", "\n")
    return pc.utf8_trim(text, characters=WHITESPACE), reference, True


def json_string_body(text: Any, controls: bool = True) -> Any:
    """RFC 8785 escaping of strings (without the surrounding quotes); ``controls=False``
    when the text holds no control character."""
    _, pc = arrow()
    if controls and not pc.any(pc.match_substring_regex(text, _CONTROL_OR_ESCAPED)).as_py():
        return text
    if pc.any(pc.match_substring(text, "\\")).as_py():
        text = pc.replace_substring(text, "\\", "\\\\")
    if pc.any(pc.match_substring(text, '"')).as_py():
        text = pc.replace_substring(text, '"', '\\"')
    for code in range(0x20 if controls else 0):
        char = chr(code)
        if pc.any(pc.match_substring(text, char)).as_py():
            text = pc.replace_substring(text, char, _ESCAPES.get(char, f"\\u{code:04x}"))
    return text


def text_column(prefix: str, raw: Any) -> Column:
    pa, pc = arrow()
    text, reference, controls = prepare_text(raw)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    numeric, small = _numeric(text)
    count = pc.sum(numeric).as_py() or 0
    values = len(text) - text.null_count
    pairs = pa.nulls(len(text), pa.string())
    if count < values:
        body = json_string_body(text, controls)
        pairs = join(pa.scalar(prefix + '"'), body, pa.scalar('"]'))
    ambiguous = None
    if count:
        tokens, number_reference, ambiguous = _number_tokens(text, numeric, small)
        numbers = join(pa.scalar(prefix), tokens, pa.scalar("]"))
        pairs = numbers if count == values else pc.if_else(numeric, numbers, pairs)
        reference = number_reference if reference is None else pc.or_(reference, number_reference)
    if reference is not None:
        pairs = patch(prefix, pairs, raw, reference)
        ambiguous = reference if ambiguous is None else pc.or_(ambiguous, reference)
    return Column(pairs, raw, ambiguous)


def _numeric(text: Any) -> tuple[Any, Any]:
    """(numeric cells, small integer cells) of prepared text: :data:`NUMBER` and
    :data:`SMALL_INT`, tested the cheap way first (digits, one point) and by the
    regular expression only for cells with an exponent."""
    _, pc = arrow()
    unsigned = pc.utf8_ltrim(text, characters="+-")
    one_sign = pc.less_equal(pc.subtract(pc.binary_length(text), pc.binary_length(unsigned)), 1)
    digits = pc.and_(pc.ascii_is_decimal(unsigned), one_sign)
    small = pc.fill_null(pc.and_(digits, pc.less_equal(pc.binary_length(unsigned), 15)), False)
    numeric = small
    if not pc.all(pc.or_(small, pc.is_null(text))).as_py():
        point = pc.replace_substring(unsigned, ".", "", max_replacements=1)
        plain = pc.fill_null(pc.and_(pc.ascii_is_decimal(point), one_sign), False)
        numeric = pc.or_(small, plain)
        rest = pc.and_(pc.invert(numeric), pc.is_valid(text))
        if pc.any(rest).as_py():  # only these may be numbers with an exponent
            matched = pc.match_substring_regex(pc.filter(text, rest), NUMBER)
            numeric = pc.replace_with_mask(numeric, rest, matched)
    return numeric, small


def _number_tokens(text: Any, numeric: Any, small: Any) -> tuple[Any, Any, Any]:
    """(tokens, reference cells, ambiguous cells) of the numeric cells of prepared text."""
    pa, pc = arrow()
    null_text = pa.scalar(None, pa.string())
    tokens = pc.if_else(small, text, null_text)
    # Integers are already canonical unless they have a plus sign, a leading zero, or are -0.
    unsigned = pc.utf8_ltrim(tokens, characters="+-")
    respell = pc.or_(
        pc.starts_with(tokens, "+"),
        pc.and_(pc.starts_with(unsigned, "0"), pc.greater(pc.binary_length(unsigned), 1)),
    )
    respell = pc.fill_null(pc.or_(respell, pc.equal(tokens, "-0")), False)
    if pc.any(respell).as_py():
        source = pc.utf8_ltrim(pc.if_else(respell, tokens, null_text), characters="+")
        tokens = pc.if_else(respell, source.cast(pa.int64()).cast(pa.string()), tokens)
    other = pc.and_(numeric, pc.invert(small))
    if not pc.any(other).as_py():
        return tokens, pa.array([False] * len(text), pa.bool_()), other
    try:
        doubles = pc.if_else(other, text, null_text).cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise Decline(str(exc)) from exc
    spelled, reference, whole = double_tokens(doubles)
    if pc.any(small).as_py():
        spelled = pc.coalesce(tokens, spelled)
    return spelled, reference, pc.and_(other, whole)


__all__ = ["NUMBER", "WHITESPACE", "json_string_body", "prepare_text", "text_column"]
