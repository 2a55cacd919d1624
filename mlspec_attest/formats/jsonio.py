"""Strict, bounded JSON reading and canonical JSON writing.

Reading refuses everything two parsers could disagree about, or that could make
one parse unboundedly expensive (docs/formats.md, "Limits"):

* text that is not UTF-8, or starts with a byte order mark (RFC 8259 §8.1);
* duplicate keys, ``NaN``/``Infinity`` literals, numbers that overflow to
  infinity (``1e400``), integers beyond ±(2^53−1) (I-JSON, RFC 7493), doubles the
  canonical writer cannot write back (magnitude from 2^53 up to 1e21: ``1.2e17``),
  unpaired surrogate escapes (``"\\ud800"``);
* documents over their size limit or nested deeper than
  :data:`~mlspec_attest.formats.limits.MAX_JSON_DEPTH` (checked before parsing, so
  nothing deep is ever built).

Every refusal is a :class:`MalformedDocumentError` (exit 3). Writing uses
RFC 8785 (JSON Canonicalization Scheme) so that signed payloads and
content-addressed files are byte-stable, and refuses what reading would refuse.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from itertools import accumulate
from pathlib import Path
from typing import Any

import rfc8785

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats import limits


class _Refused(ValueError):
    """A hook's refusal; its message is reported as is, not as "not valid JSON"."""


#: Doubles of these magnitudes (from, below) RFC 8785 writes as integers beyond ±(2^53−1):
#: the canonical writer refuses them, so the strict reader does too.
_BIG_DOUBLES = (float(2**53), 1e21)


# ------------------------------------------------------------------ hooks
def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: an object, refusing a key given twice (tabular uses it too)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def no_constants(token: str) -> Any:
    """``parse_constant``: refuse ``NaN``, ``Infinity`` and ``-Infinity``."""
    raise ValueError(f"non-standard JSON constant {token}")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # only overflow gets here: the literals are refused above
        raise _Refused(f"number {_clip(text)} is out of range (it overflows to infinity)")
    return value


def _writable_float(text: str) -> float:
    """A double :func:`canonical` can write back (its rule is :func:`check_writable`).

    RFC 8785 writes a double from 2^53 up to 1e21 as plain integer digits
    (``1.2e17`` -> ``120000000000000000``), beyond the integers readers accept, so the
    writer refuses it; a reader that took it would hold a document it cannot
    canonicalize (hash, compare, re-sign), and fail later, naming no file.
    """
    value = _finite_float(text)
    if _BIG_DOUBLES[0] <= abs(value) < _BIG_DOUBLES[1]:
        raise _Refused(
            f"number {_clip(text)} cannot be written back as canonical JSON (RFC 8785 writes "
            "doubles from 2^53 up to 1e21 as integers beyond ±(2^53−1)); write it as a "
            "string or in larger units"
        )
    return value


def _safe_int(text: str) -> int:
    # Length first: 17 digits are out of range whatever they are, and converting
    # a long literal costs more than refusing it.
    if len(text.lstrip("-")) <= 16:
        value = int(text)
        if abs(value) <= limits.MAX_SAFE_INTEGER:
            return value
    raise _Refused(
        f"integer {_clip(text)} is outside the interoperable range ±(2^53−1) "
        "(I-JSON, RFC 7493); write it as a string"
    )


def _clip(text: str) -> str:
    return text if len(text) <= 24 else text[:20] + "…"


# ------------------------------------------------------------- pre-checks
_BOMS = (
    (codecs.BOM_UTF8, "UTF-8"),
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16: FF FE 00 00 starts with FF FE
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
# A string literal; the closing quote is optional so that an unterminated string
# is consumed once, to the end, instead of being retried at every later quote.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NON_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _bom_problem(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            if encoding == "UTF-8":
                return "starts with a UTF-8 byte order mark (BOM); remove it (RFC 8259 §8.1)"
            return f"starts with a {encoding} byte order mark; JSON must be UTF-8 without one"
    return None


def _decode(data: bytes, what: str) -> str:
    problem = _bom_problem(data)
    if problem:
        raise MalformedDocumentError(f"{what}: not valid JSON: {problem}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedDocumentError(
            f"{what}: not valid JSON: not UTF-8 text "
            f"(byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from exc


def nests_deeper_than(data: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays/objects deeper than ``limit`` (brackets in strings
    do not count). Runs at C speed: strings are cut out with one regex, then the
    running sum of +1/-1 per bracket is taken. Malformed text gets an answer too."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # the common case: too few brackets to nest that deep
    steps = _STRING.sub(b"", data).translate(_DEPTH_STEP, _NON_BRACKETS)
    return max(accumulate(memoryview(steps).cast("b")), default=0) > limit


def _check_depth(data: bytes, what: str) -> None:
    if nests_deeper_than(data, limits.MAX_JSON_DEPTH):
        raise MalformedDocumentError(
            f"{what}: nested deeper than {limits.MAX_JSON_DEPTH} levels of arrays and objects"
        )


def _check_surrogates(text: str, doc: Any, what: str) -> None:
    """Unpaired surrogate escapes (``"\\ud800"``) do not decode to Unicode text (I-JSON)."""
    if not _SURROGATE_ESCAPE.search(text):
        return  # the common case: no escape that could produce a surrogate
    try:
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedDocumentError(
            f"{what}: not valid JSON: a string holds an unpaired UTF-16 surrogate escape "
            "(I-JSON, RFC 7493 §2.1)"
        ) from exc


# ------------------------------------------------------------------ reading
def loads_strict(
    data: bytes | str,
    *,
    what: str = "document",
    max_bytes: int | None = None,
    safe_integers: bool = True,
) -> Any:
    """Parse JSON strictly and boundedly; raise :class:`MalformedDocumentError` naming ``what``.

    ``max_bytes`` defaults to :data:`~mlspec_attest.formats.limits.MAX_JSON_BYTES`.
    By default the reader takes exactly what :func:`canonical` can write back.
    ``safe_integers=False`` lifts the ±(2^53−1) bound on integers and on integral
    doubles (2^53 up to 1e21), for data that is never signed or re-emitted (dataset
    rows and request bodies may hold 64-bit ids); everything else stays strict.
    """
    limit = limits.MAX_JSON_BYTES if max_bytes is None else max_bytes
    if len(data) > limit:
        raise MalformedDocumentError(limits.too_large(what, limit, "a JSON document"))
    if isinstance(data, str):
        if data.startswith("\ufeff"):
            raise MalformedDocumentError(f"{what}: not valid JSON: {_bom_problem(codecs.BOM_UTF8)}")
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise MalformedDocumentError(
                f"{what}: not valid JSON: text holds an unpaired surrogate"
            ) from exc
        text = data
    else:
        raw, text = data, _decode(data, what)
    _check_depth(raw, what)
    return _parse(text, what, safe_integers)


def _parse(text: str, what: str, safe_integers: bool) -> Any:
    try:
        doc = json.loads(
            text,
            object_pairs_hook=no_duplicate_keys,
            parse_constant=no_constants,
            parse_float=_writable_float if safe_integers else _finite_float,
            parse_int=_safe_int if safe_integers else int,
        )
    except _Refused as exc:
        raise MalformedDocumentError(f"{what}: {exc}") from exc
    except ValueError as exc:
        raise MalformedDocumentError(f"{what}: not valid JSON ({exc})") from exc
    except RecursionError as exc:  # unreachable after the depth check; kept as a backstop
        raise MalformedDocumentError(f"{what}: nested too deeply") from exc
    _check_surrogates(text, doc, what)
    return doc


def load_file(
    path: Path,
    *,
    what: str | None = None,
    max_bytes: int | None = None,
    kind: str = "a JSON document",
) -> Any:
    """Read and strictly parse a JSON file of at most ``max_bytes`` (default
    :data:`~mlspec_attest.formats.limits.MAX_JSON_BYTES`); ``kind`` names that limit."""
    label = what or str(path)
    limit = limits.MAX_JSON_BYTES if max_bytes is None else max_bytes
    data = limits.read_limited(path, limit, what=label, kind=kind)
    return loads_strict(data, what=label, max_bytes=limit)


# ------------------------------------------------------------------ writing
def check_writable(obj: Any, *, what: str = "value") -> None:
    """Refuse a value :func:`loads_strict` could not read back once canonical (iteratively:
    the check itself cannot overflow the stack).

    That is nesting deeper than :data:`~mlspec_attest.formats.limits.MAX_JSON_DEPTH`, and a double
    of magnitude from 2^53 up to 1e21: RFC 8785 writes those as plain integer digits
    (``1.2e17`` -> ``120000000000000000``), beyond the integer range readers accept.
    """
    todo: list[tuple[Any, int]] = [(obj, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, float) and _BIG_DOUBLES[0] <= abs(node) < _BIG_DOUBLES[1]:
            raise MalformedDocumentError(
                f"{what}: number {node!r} would be written as an integer beyond ±(2^53−1) "
                "(RFC 8785 writes doubles below 1e21 in plain digits), which readers refuse; "
                "record it as a string or in larger units"
            )
        if isinstance(node, dict | list | tuple):
            if depth > limits.MAX_JSON_DEPTH:
                raise MalformedDocumentError(
                    f"{what}: nested deeper than {limits.MAX_JSON_DEPTH} levels of arrays "
                    "and objects; readers would refuse it"
                )
            children = node.values() if isinstance(node, dict) else node
            todo.extend((child, depth + 1) for child in children)


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical bytes of a JSON-compatible value that :func:`loads_strict` reads back."""
    check_writable(obj)
    try:
        return bytes(rfc8785.dumps(obj))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise MalformedDocumentError(f"value cannot be canonicalized as JSON: {exc}") from exc


def canonical_value(obj: Any) -> bytes:
    """RFC 8785 bytes of data that is hashed and never read back as JSON (dataset rows).

    Unlike :func:`canonical`, large doubles are fine here: a row value of 1.6e16 is
    data, and its canonical digits are only ever hashed. Callers bound the depth
    (a row is flat: name/value pairs).
    """
    try:
        return bytes(rfc8785.dumps(obj))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise MalformedDocumentError(f"value cannot be canonicalized as JSON: {exc}") from exc


def pretty(obj: Any) -> str:
    """Human-readable JSON (stable key order)."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False)
