"""Values from ML code as plain JSON: numpy and pandas scalars and arrays, converted on the way in.

The Python API (``mlspec_attest.api``) passes every value it records through here at the
call that received it, so a value the statement cannot hold is refused there, naming the
parameter (``param 'learning_rate': ...``), instead of failing at signing with a message
that names nothing. The rules (docs/api.md, "Values from numpy and pandas"):

* numpy ``bool_``, integer and floating scalars become ``bool``, ``int`` and ``float``;
  a 0-d array becomes its scalar. ``float16``/``float32`` become the shortest decimal
  that reads back as the same value (``np.float32(0.9)`` -> ``0.9``, as numpy prints it,
  not ``0.8999999761581421``), so a threshold of 0.9 means what the caller sees;
* a numpy array becomes a list where a list is meant (``detail``, ``infra``, ``search``),
  bounded in items by the statement's size and in nesting by the JSON depth limit
  (``formats.limits``); so does a pandas ``Series``, ``Index`` or ``Categorical``, through
  ``to_numpy()``, its Python-object values (strings, categories, aware times) converted
  one by one;
* a time-zone-aware ``datetime`` (a pandas ``Timestamp`` is one) becomes an RFC 3339
  string in UTC, to the nanosecond it holds, where a string is acceptable;
* refused, as :class:`MalformedDocumentError` (bad input, exit 3): NaN and infinities,
  integers beyond ±(2^53−1), numpy arrays of Python objects (``dtype=object``: ragged or
  mixed rows), complex numbers, bytes, numpy ``datetime64``/``timedelta64`` and naive
  datetimes (no time zone), ``pandas.NA``, ``pandas.NaT`` and a ``Series`` with missing
  values, a ``DataFrame``, mappings with keys that are not strings, and anything else
  that is not JSON. A signed statement could not hold any of them: canonical JSON
  (``jsonio.canonical``) or the stage schema would refuse them at signing, far from the
  call that recorded them.

numpy and pandas are never imported: their values are recognised by the module of their
type and read through the numpy protocol (``dtype``, ``ndim``, ``item()``, ``tolist()``),
so ``import mlspec_attest`` stays light and neither is a dependency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.jsonio import check_writable
from mlspec_attest.formats.limits import (
    MAX_DSSE_PAYLOAD_BYTES,
    MAX_JSON_DEPTH,
    MAX_SAFE_INTEGER,
    format_size,
)
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.formats.statement import JSONScalar, check_finite_metrics

#: Most items of one array: every JSON item costs at least two bytes (a digit and a
#: comma), so a larger array could never fit in a signed statement.
MAX_ARRAY_ITEMS = MAX_DSSE_PAYLOAD_BYTES // 2

#: Arrays and objects above a value of the stage metadata in the statement: the
#: Statement, ``predicate``, ``byproducts``, ``mlspec`` and the section
#: (``parameters``, ``infrastructure``, ``details``) that holds the value.
_LEVELS_ABOVE_A_VALUE = 5
_MAX_VALUE_DEPTH = MAX_JSON_DEPTH - _LEVELS_ABOVE_A_VALUE

_NUMPY_KINDS_REFUSED = {
    "c": "a complex number has no JSON form; record its real and imaginary parts",
    "S": "bytes are not JSON text; decode them to str",
    "V": "a structured (void) value is not JSON; record its fields one by one",
    "M": (
        "a numpy datetime64 has no time zone; pass a time-zone-aware datetime or an RFC 3339 string"
    ),
    "m": "a numpy timedelta64 is not JSON; record it as a number in named units",
    "O": (
        "an array of Python objects (dtype object) is not converted; pass a list, "
        "or an array of a numeric, boolean or string dtype"
    ),
}


class _Refused(Exception):
    """A conversion problem; the caller adds where the value was."""


def json_value(value: object, *, what: str) -> Any:
    """``value`` as plain JSON (dict, list, str, int, float, bool, None), converted by the
    rules above; ``what`` names it in a refusal (``detail 'weights'``)."""
    try:
        out = _convert(value, 1)
    except _Refused as exc:
        raise MalformedDocumentError(f"{what}{exc.args[0]}") from None
    check_writable(out, what=what)
    return out


def json_scalar(value: object, *, what: str) -> JSONScalar:
    """A parameter value: a JSON scalar (str, int, float, bool or None) after conversion."""
    out = json_value(value, what=what)
    if isinstance(out, list | dict):
        kind = "a list or array" if isinstance(out, list) else "a mapping"
        raise MalformedDocumentError(
            f"{what}: {kind} is not a parameter value (str, int, float, bool or None); "
            f"record it with {named('detail_any')}"
        )
    scalar: JSONScalar = out
    return scalar


def metric_values(metrics: Mapping[str, object], *, what: str) -> dict[str, float]:
    """Metrics as finite numbers, converted first and then held to
    :func:`~mlspec_attest.formats.statement.check_finite_metrics` (``what`` names the
    stage or slice)."""
    converted = {
        name: json_value(value, what=f"{what}: metric {name!r}") for name, value in metrics.items()
    }
    return check_finite_metrics(converted, what=what)


def count_value(value: object, *, what: str) -> int:
    """A count of rows: a whole number, at least 0 (``3.0`` is 3; ``3.5`` is refused)."""
    out = json_value(value, what=what)
    if isinstance(out, float) and out.is_integer():
        out = int(out)
    if isinstance(out, bool) or not isinstance(out, int) or out < 0:
        raise MalformedDocumentError(
            f"{what}: a count must be a whole number, at least 0 ({out!r})"
        )
    return out


# ------------------------------------------------------------------ conversion
def _convert(value: object, depth: int) -> Any:
    """One value at ``depth`` (1 for the value itself); ``_Refused`` says what is wrong."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)  # np.str_ and str enums become plain str
    if isinstance(value, int):
        return _integer(int(value))
    if isinstance(value, float):
        return _finite(float(value))
    origin = type(value).__module__.partition(".")[0]
    if origin == "numpy":
        return _from_numpy(value, depth)
    if origin == "pandas":
        return _from_pandas(value, depth)
    if isinstance(value, datetime):
        return _instant(value)
    if isinstance(value, Mapping):
        return _mapping(value, depth)
    if isinstance(value, list | tuple):
        return _sequence(value, depth)
    raise _Refused(f": {_type_name(value)} is not a JSON value{_remedy(value)}")


def _integer(value: int) -> int:
    if abs(value) > MAX_SAFE_INTEGER:
        raise _Refused(
            f": integer {value} is outside the interoperable range ±(2^53−1) "
            "(I-JSON, RFC 7493); record it as a string"
        )
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise _Refused(f": {value!r} is not finite; JSON has no NaN or infinity")
    return value


def _mapping(value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    _check_depth(depth)
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise _Refused(f": key {key!r} is not a string (JSON object keys are strings)")
        out[str.__str__(key)] = _inside(f"[{key!r}]", item, depth)
    return out


def _sequence(value: list[Any] | tuple[Any, ...], depth: int) -> list[Any]:
    _check_depth(depth)
    return [_inside(f"[{i}]", item, depth) for i, item in enumerate(value)]


def _inside(where: str, item: object, depth: int) -> Any:
    """An item of a list or mapping; a refusal inside it says where (``[2]['lr']``)."""
    try:
        return _convert(item, depth + 1)
    except _Refused as exc:
        raise _Refused(where + exc.args[0]) from None


def _check_depth(depth: int) -> None:
    if depth > _MAX_VALUE_DEPTH:
        raise _Refused(
            f": nested deeper than {_MAX_VALUE_DEPTH} levels of lists and mappings "
            f"(a signed statement nests at most {MAX_JSON_DEPTH})"
        )


def _check_size(items: int) -> None:
    """Before an array is copied into a list: could it fit in a signed statement at all?"""
    if items > MAX_ARRAY_ITEMS:
        raise _Refused(
            f": an array of {items} items cannot fit in a signed statement "
            f"(at most {format_size(MAX_DSSE_PAYLOAD_BYTES)})"
        )


# ------------------------------------------------------------------ numpy
def _from_numpy(value: Any, depth: int, *, objects: bool = False) -> Any:
    """A numpy scalar or array, read through its ``dtype``, ``ndim``, ``item`` and ``tolist``.

    ``objects``: an array of Python objects is converted item by item (pandas keeps
    strings, categories and time-zone-aware times so) instead of refused.
    """
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    ndim = getattr(value, "ndim", None)
    if not isinstance(kind, str) or not isinstance(ndim, int):
        raise _Refused(f": {_type_name(value)} is not a JSON value")
    if kind in _NUMPY_KINDS_REFUSED and not (objects and kind == "O"):
        raise _Refused(f": {_NUMPY_KINDS_REFUSED[kind]}")
    if ndim == 0:
        return _numpy_scalar(value, kind)
    _check_depth(depth + ndim - 1)  # each dimension is one more level of lists
    _check_size(value.size)
    if kind == "f" and value.dtype.itemsize < 8:
        return _sequence(list(value), depth)  # item by item: the shortest decimals
    items: list[Any] = value.tolist()
    return _sequence(items, depth)


def _numpy_scalar(value: Any, kind: str) -> JSONScalar:
    """A numpy scalar or 0-d array of a kind that is not refused."""
    if kind == "b":
        return bool(value.item())
    if kind in "iu":
        return _integer(int(value.item()))
    if kind == "f":
        return _finite(_shortest(value))
    if kind == "U":
        return str(value.item())
    raise _Refused(f": a numpy value of kind {kind!r} is not a JSON value")


def _shortest(value: Any) -> float:
    """The float of a numpy floating scalar: for types narrower than a double, the
    shortest decimal that reads back as the same value (what numpy prints)."""
    exact = float(value.item())
    if value.dtype.itemsize >= 8 or not math.isfinite(exact):
        return exact
    scalar_type = value.dtype.type
    for digits in range(1, 18):
        text = f"{exact:.{digits}g}"
        if scalar_type(text) == value:
            return float(text)
    return exact


# ------------------------------------------------------------------ pandas
def _from_pandas(value: Any, depth: int) -> Any:
    """A pandas value: missing values refused, a ``Timestamp`` as an instant, a ``Series``
    or ``Index`` through ``to_numpy()``; a ``DataFrame`` is refused (it is a table)."""
    name = type(value).__name__
    if name == "NAType":
        raise _Refused(": pandas.NA is a missing value; leave the entry out, or pass None")
    if name == "NaTType":
        raise _Refused(": pandas.NaT is a missing time; leave the entry out, or pass None")
    if isinstance(value, datetime):
        return _instant(value)
    if isinstance(value, timedelta):
        raise _Refused(": a pandas Timedelta is not JSON; record it as a number in named units")
    if hasattr(value, "columns"):
        raise _Refused(
            ": a pandas DataFrame is a table, not a JSON value; record a column or "
            "DataFrame.to_dict('list')"
        )
    to_numpy = getattr(value, "to_numpy", None)
    if callable(to_numpy):
        _check_size(int(getattr(value, "size", 0)))
        _refuse_missing(value)
        return _from_numpy(to_numpy(), depth, objects=True)
    raise _Refused(f": {_type_name(value)} is not a JSON value")


def _refuse_missing(value: Any) -> None:
    """A ``Series`` or ``Index`` with missing values (NA, NaN, NaT) is refused, naming the
    first: ``to_numpy()`` would turn NA into NaN, or keep it as an object."""
    isna = getattr(value, "isna", None)
    if not callable(isna):
        return
    try:
        missing = isna()
    except NotImplementedError:  # a MultiIndex: its tuples are checked item by item
        return
    flags = missing.tolist() if callable(getattr(missing, "tolist", None)) else list(missing)
    if True in flags:
        raise _Refused(
            f"[{flags.index(True)}]: a missing value (NA, NaN or NaT); drop or fill "
            "the missing values first"
        )


def _instant(value: datetime) -> str:
    """An aware datetime as RFC 3339 in UTC, with its fraction of a second when it has one."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise _Refused(
            f": {value.isoformat()} has no time zone; make it aware "
            "(datetime.replace(tzinfo=...), Timestamp.tz_localize('UTC'))"
        )
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise _Refused(f": {value.isoformat()} is out of range in UTC") from None
    # Rebuilt from its fields: a pandas Timestamp keeps nanoseconds, and writes them.
    whole = datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, tzinfo=UTC)
    nanos = utc.microsecond * 1000 + int(getattr(utc, "nanosecond", 0))
    text = format_rfc3339(whole)
    return f"{text[:-1]}.{f'{nanos:09d}'.rstrip('0')}Z" if nanos else text


# ------------------------------------------------------------------ messages
def _type_name(value: object) -> str:
    kind = type(value)
    if kind.__module__ == "builtins":
        return f"a {kind.__qualname__}"
    return f"a {kind.__module__}.{kind.__qualname__}"


def _remedy(value: object) -> str:
    if isinstance(value, set | frozenset):
        return " (a set has no order); pass a sorted list"
    if callable(getattr(value, "tolist", None)):
        return "; pass value.tolist()"
    return " (str, int, float, bool, None, or a list or mapping of them)"
