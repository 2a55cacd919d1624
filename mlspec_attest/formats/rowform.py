"""The row canonical form ``mlspec-rows/v2``: when two rows are "the same row".

Two rows that hold the same values must hash the same, whatever file format,
compression, line endings, column order, padding, number spelling, Unicode
normalization or invisible formatting characters they were written with.
docs/leakage.md is the normative description (with the list of what is and is
not "the same row"); in short:

1. **Names** (column names, nested object keys): invisible format characters
   removed (:data:`INVISIBLE`), NFC, surrounding whitespace stripped, then
   case-folded (``Age``, ``AGE ``, ``a\\u200bge`` are one column). Two columns
   with the same canonical name make the file bad input.
2. **Text values** (every CSV cell; JSON, Parquet strings): invisible format
   characters removed, NFC, CR LF and CR inside the text become LF, surrounding
   whitespace stripped. Case and inner whitespace are kept (values are data).
   Empty text is null. Text matching ``[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?``
   (ASCII digits) is a number; nothing else is converted.
3. **Numbers** are exact decimals: an integer below 2**53 in magnitude is a JSON
   integer (``007``, ``7.0``, ``7e0`` -> ``7``); an integer from 2**53 up to
   10**64 is a string of its digits; anything else finite is the nearest double
   (RFC 8785 spelling); beyond the double range a string in scientific form.
4. **Other values**: booleans kept; float NaN is null, +-inf the text
   ``inf``/``-inf``; dates and times their ISO 8601 text; bytes
   ``base64:<standard base64>``; lists and objects keep their structure.
5. **The row** is the list of ``[name, value]`` pairs in code point order of the
   names, nulls left out, serialized as RFC 8785 canonical JSON and hashed with
   SHA-256.

The files are read by :mod:`mlspec_attest.formats.tabular` (JSON numbers kept as
:class:`JsonNumber` text, so they normalize exactly like numeric text); the engine
that hashes whole datasets is :mod:`mlspec_attest.digest.rows`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from mlspec_attest.errors import BadInputError, MalformedDocumentError
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.jsonio import canonical_value
from mlspec_attest.formats.limits import MAX_JSON_DEPTH

CANONICALIZATION = "mlspec-rows/v2"
RETIRED_CANONICALIZATIONS = ("mlspec-rows/v1",)


#: Invisible format characters removed from names and text: the general category
#: Cf characters that are also Default_Ignorable_Code_Point, pinned as of Unicode
#: 14.0 so every Python computes the same rows. Soft hyphen, zero-width space,
#: (non-)joiners, LRM/RLM, bidi embeddings and isolates, word joiner, invisible
#: operators, the BOM/ZWNBSP, shorthand and musical format controls, tag characters.
#: Kept: the visible Cf characters (Arabic number signs and other prepended
#: concatenation marks, interlinear annotation and Egyptian hieroglyph controls).
INVISIBLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x061C, 0x061C),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)
INVISIBLE: dict[int, None] = {
    cp: None for low, high in INVISIBLE_RANGES for cp in range(low, high + 1)
}

_SAFE_INTEGER = 2**53
_EXACT_INTEGER_DIGITS = 64
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_SMALL_INT_RE = re.compile(r"[+-]?\d{1,15}", re.ASCII)
_PLAIN_FRACTION_RE = re.compile(r"[+-]?\d*\.\d*[1-9]\d*", re.ASCII)
_NUMBER_START = frozenset("+-.0123456789")
# A row is [[name, value], ...]: two levels above the value itself.
_MAX_CELL_DEPTH = MAX_JSON_DEPTH - 2


class JsonNumber:
    """A JSON number token kept as text, so it is normalized exactly like numeric text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


# --- text and names ----------------------------------------------------------
def canonical_text(text: str) -> str:
    """Invisible format characters removed, NFC, CR LF / CR -> LF (not stripped)."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text.translate(INVISIBLE))
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def canonical_name(name: str) -> str:
    """A column name or object key: :func:`canonical_text`, stripped, case-folded."""
    text = canonical_text(name).strip()
    if text.isascii():
        return text.lower()
    # Canonical caseless matching (Unicode D145), recomposed: NFC(casefold(NFD(x))).
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


# --- values ------------------------------------------------------------------
def _number_value(text: str) -> int | float | str:
    """The normalized value of a number given as text matching ``_NUMBER_RE``."""
    if _SMALL_INT_RE.fullmatch(text):
        return int(text)
    if _PLAIN_FRACTION_RE.fullmatch(text):
        # Fast path, same result as below: no exponent and a nonzero digit after
        # the point, so the value is not an integer and only its double remains.
        double = float(text)
        if math.isfinite(double):
            return double
    return _general_number_value(text)


def _general_number_value(text: str) -> int | float | str:
    try:
        value = Decimal(text)
    except InvalidOperation:  # an exponent beyond what Decimal holds (~10**18)
        return _extreme_number_value(text)
    if value.is_zero():
        return 0
    adjusted = value.adjusted()
    if 0 <= adjusted < _EXACT_INTEGER_DIGITS:
        _, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)  # finite by the regex
        if exponent >= 0 or not any(digits[exponent:]):
            integer = int(value)
            if -_SAFE_INTEGER < integer < _SAFE_INTEGER:
                return integer
            return str(integer)
    double = float(text)
    if math.isfinite(double):
        return double
    sign, digits, _ = value.as_tuple()
    mantissa = "".join(map(str, digits)).rstrip("0")
    scientific = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
    return f"{'-' if sign else ''}{scientific}e{adjusted:+d}"


def _extreme_number_value(text: str) -> int | float | str:
    """What :func:`_general_number_value` gives a number whose exponent Decimal cannot
    hold: 0 when every digit is 0, the double it rounds to (a signed zero) when it is
    tiny, else the scientific text of a number too large for a double."""
    mantissa, _, exponent = text.lower().partition("e")
    sign = "-" if mantissa.startswith("-") else ""
    whole, _, fraction = mantissa.lstrip("+-").partition(".")
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return 0
    # the power of ten of the first significant digit
    adjusted = len(digits) - 1 + int(exponent) - len(fraction)
    if adjusted < 0:
        return float(f"{sign}0.0")
    significant = digits.rstrip("0")
    scientific = significant[0] + ("." + significant[1:] if len(significant) > 1 else "")
    return f"{sign}{scientific}e{adjusted:+d}"


def text_value(text: str) -> int | float | str | None:
    """The normalized value of text: None when empty, a number when numeric."""
    stripped = canonical_text(text).strip()
    if not stripped:
        return None
    if stripped[0] in _NUMBER_START:
        if _SMALL_INT_RE.fullmatch(stripped):
            return int(stripped)
        if _NUMBER_RE.fullmatch(stripped):
            return _number_value(stripped)
    return stripped


def _float_value(value: float) -> int | float | str | None:
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if not value.is_integer():
        return float(value)  # its shortest decimal is not an integer either
    if -_SAFE_INTEGER < value < _SAFE_INTEGER:
        return int(value)
    return _number_value(repr(float(value)))


def _decimal_value(value: Decimal) -> int | float | str | None:
    if value.is_nan():
        return None
    if value.is_infinite():
        return "-inf" if value < 0 else "inf"
    return _number_value(str(value))


def _object_value(value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, member in value.items():
        if not isinstance(key, str):
            raise BadInputError("object keys must be strings")
        name = canonical_name(key)
        if name in out:
            raise BadInputError(f"object key {name!r} appears twice (after canonicalization)")
        out[name] = normalize_value(member, _depth=depth)
    return out


def normalize_value(value: Any, *, _depth: int = 0) -> Any:
    """The normalized plain-JSON value of one input value; None when it is null.

    The result is None, a bool, an int of magnitude below 2**53, a finite float,
    a str, or a list or dict of such values, ready for RFC 8785. Lists and
    objects nested deeper than the JSON limit are bad input.
    """
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        return text_value(value)
    if isinstance(value, JsonNumber):
        return _number_value(value.text)
    if isinstance(value, int):
        if -_SAFE_INTEGER < value < _SAFE_INTEGER:
            return int(value)
        return _number_value(str(value))
    if isinstance(value, float):
        return _float_value(value)
    if isinstance(value, Decimal):
        return _decimal_value(value)
    if isinstance(value, list | tuple | dict):
        if _depth >= _MAX_CELL_DEPTH:
            raise BadInputError(f"a value nested deeper than {_MAX_CELL_DEPTH} levels")
        if isinstance(value, dict):
            return _object_value(value, _depth + 1)
        return [normalize_value(v, _depth=_depth + 1) for v in value]
    if isinstance(value, dt.date | dt.time):
        return text_value(value.isoformat())
    if isinstance(value, bytes | bytearray | memoryview):
        return "base64:" + base64.b64encode(bytes(value)).decode("ascii")
    raise BadInputError(
        f"cannot canonicalize a value of type {type(value).__name__}",
        remedy=f"leave the column out with {named('exclude_column_one')}",
    )


def _canonical(obj: Any, where: object) -> bytes:
    """RFC 8785 bytes of normalized values; unserializable text is bad input."""
    try:
        return canonical_value(obj)
    except MalformedDocumentError as exc:  # in practice: an unpaired surrogate
        raise BadInputError(f"{where}: {exc.message}") from exc


def value_token(value: Any) -> str | None:
    """Canonical JSON text of one normalized value; None when the value is null."""
    normalized = normalize_value(value)
    if normalized is None:
        return None
    return _canonical(normalized, "value").decode("utf-8")


def column_names(names: Sequence[str], *, what: str) -> list[str]:
    """Canonical names of a header; two equal canonical names are bad input."""
    out = [canonical_name(n) for n in names]
    seen: set[str] = set()
    for original, name in zip(names, out, strict=True):
        if name in seen:
            raise BadInputError(
                f"{what}: column {name!r} appears twice (as {original!r} too, "
                "after removing case, padding and invisible characters)"
            )
        seen.add(name)
    return out


def normalized_row(columns: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """``{name: value}`` of (canonical name, raw value), nulls left out, names ascending."""
    items = sorted(columns, key=lambda item: item[0])
    return ordered_row([n for n, _ in items], range(len(items)), [v for _, v in items])


# RFC 8785 serializes an array as "[" + its members' serializations joined by "," + "]"
# (no whitespace), so a row is the join of its [name, value] pairs, each serialized by
# rfc8785 once per row whatever the number of projections. Names and scalar values
# repeat (categories, flags, small integers): their bytes are cached, boundedly.
_CACHE_LIMIT = 1 << 16
_NAME_BYTES: dict[str, bytes] = {}
_VALUE_BYTES: dict[tuple[type, Any], bytes] = {}

Encoded = list[tuple[str, bytes]]


def _cached(cache: dict[Any, bytes], key: Any, value: Any, where: object) -> bytes:
    found = cache.get(key)
    if found is None:
        found = _canonical(value, where)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = found
    return found


def encode_row(row: Mapping[str, Any], where: object) -> Encoded:
    """Each ``[name, value]`` pair of a normalized row as RFC 8785 bytes, in row order."""
    out: Encoded = []
    for name, value in row.items():
        name_bytes = _cached(_NAME_BYTES, name, name, where)
        if isinstance(value, list | dict):
            value_bytes = _canonical(value, where)
        else:
            value_bytes = _cached(_VALUE_BYTES, (type(value), value), value, where)
        out.append((name, b"[" + name_bytes + b"," + value_bytes + b"]"))
    return out


def project(encoded: Encoded, drop: frozenset[str]) -> bytes:
    """The RFC 8785 bytes of the row without the ``drop`` columns."""
    if not drop:
        return b"[" + b",".join(pair for _, pair in encoded) + b"]"
    return b"[" + b",".join(pair for name, pair in encoded if name not in drop) + b"]"


def row_bytes(row: Mapping[str, Any], drop: frozenset[str], where: object) -> bytes:
    return project(encode_row(row, where), drop)


def canonical_row(row: Mapping[str, Any], exclude: Iterable[str] = ()) -> bytes:
    """The ``mlspec-rows/v2`` bytes of one row given as column -> value."""
    names = column_names(list(row), what="row")
    normalized = normalized_row(zip(names, row.values(), strict=True))
    return row_bytes(normalized, frozenset(canonical_name(e) for e in exclude), "row")


def row_digest(row: Mapping[str, Any], exclude: Iterable[str] = ()) -> bytes:
    """SHA-256 (32 raw bytes) of :func:`canonical_row`."""
    return hashlib.sha256(canonical_row(row, exclude)).digest()


def ordered_row(names: Sequence[str], order: Sequence[int], cells: Sequence[Any]) -> dict[str, Any]:
    """The normalized row of cells whose names, taken in ``order``, ascend."""
    row: dict[str, Any] = {}
    for i in order:
        try:
            value = normalize_value(cells[i])
        except BadInputError as exc:
            raise BadInputError(f"column {names[i]!r}: {exc.message}", remedy=exc.remedy) from exc
        if value is not None:
            row[names[i]] = value
    return row
