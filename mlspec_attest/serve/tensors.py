"""Inference requests in, rows out; predictions in, response tensors out.

Reads the two request bodies the reference server accepts, strictly: an Open Inference
Protocol v2 request (one input tensor of shape ``[n, features]``, its data flat or
nested, datatype FP32, FP64, INT32, INT64 or BOOL) and a v1 request (``instances``:
rows as lists, or as objects keyed by feature name). Anything else is a
:class:`~mlspec_attest.errors.BadInputError` whose message says what is wrong and
where (the server answers 400 with it). The body is parsed by the project's one strict
JSON reader (no NaN or Infinity, no duplicate keys), after a nesting check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any, Final

from msgspec import Struct

from mlspec_attest.errors import BadInputError
from mlspec_attest.formats import jsonio, limits

#: Rows in one inference request. Bounds the predictor's work per request; larger
#: batches are split by the client. (A count, so not in formats/limits.py, whose table
#: shows sizes; docs/serving.md lists it.)
MAX_INFER_ROWS: Final = 10_000

OUTPUT_NAME: Final = "predict"
_FP32_MAX: Final = 3.4028234663852886e38
_INT32: Final = (-(2**31), 2**31 - 1)
_INT64: Final = (-(2**63), 2**63 - 1)

Cell = float | int | bool
Rows = list[list[Cell]]


class PredictionError(Exception):
    """The predictor returned something that is not one prediction per row."""


class InferRequest(Struct, frozen=True):
    """A decoded v2 request: its rows and the id the client gave it, if any."""

    rows: Rows
    id: str | None


def _number(value: object) -> bool:
    if type(value) is float:
        return True  # finite: the JSON reader refuses NaN, Infinity and overflow
    return type(value) is int and _INT64[0] <= value <= _INT64[1]


def _fp32(value: object) -> bool:
    return _number(value) and abs(value) <= _FP32_MAX  # type: ignore[arg-type]


def _int_in(bounds: tuple[int, int]) -> Callable[[object], bool]:
    low, high = bounds
    return lambda value: type(value) is int and low <= value <= high


#: datatype -> (the check of one value, what a value must be)
DATATYPES: Final[dict[str, tuple[Callable[[object], bool], str]]] = {
    "FP64": (_number, "a number"),
    "FP32": (_fp32, "a number within FP32 range"),
    "INT64": (_int_in(_INT64), "an integer within INT64 range"),
    "INT32": (_int_in(_INT32), "an integer within INT32 range"),
    "BOOL": (lambda value: type(value) is bool, "true or false"),
}


def parse_body(body: bytes) -> Any:
    """The JSON of a request body: strict, at most :data:`~limits.MAX_INFER_JSON_DEPTH` deep."""
    if jsonio.nests_deeper_than(body, limits.MAX_INFER_JSON_DEPTH):
        raise BadInputError(
            f"request body: nested deeper than {limits.MAX_INFER_JSON_DEPTH} levels "
            "of arrays and objects"
        )
    return jsonio.loads_strict(
        body, what="request body", max_bytes=limits.MAX_INFER_BODY_BYTES, safe_integers=False
    )


def _object(
    value: object, where: str, required: Sequence[str], allowed: frozenset[str]
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadInputError(f"{where}: expected a JSON object, got {_kind(value)}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise BadInputError(f"{where}: unknown field {unknown[0]!r}")
    for key in required:
        if key not in value:
            raise BadInputError(f"{where}: missing field {key!r}")
    return value


def _kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:36] + "...'"


# ------------------------------------------------------------------ v2
def decode_v2(document: object, features: Sequence[str]) -> InferRequest:
    """Rows of an Open Inference Protocol v2 request (see the module docstring)."""
    request = _object(
        document, "request body", ("inputs",), frozenset({"id", "inputs", "outputs", "parameters"})
    )
    given_id = request.get("id")
    if given_id is not None and not isinstance(given_id, str):
        raise BadInputError(f"id: expected a string, got {_kind(given_id)}")
    _check_parameters(request, "request body")
    _check_outputs(request.get("outputs"))
    inputs = request["inputs"]
    if not isinstance(inputs, list) or len(inputs) != 1:
        count = len(inputs) if isinstance(inputs, list) else _kind(inputs)
        raise BadInputError(
            f"inputs: expected one input tensor of shape [n, features], got {count}"
        )
    tensor = _object(
        inputs[0],
        "inputs[0]",
        ("name", "shape", "datatype", "data"),
        frozenset({"name", "shape", "datatype", "data", "parameters"}),
    )
    if not isinstance(tensor["name"], str):
        raise BadInputError(f"inputs[0].name: expected a string, got {_kind(tensor['name'])}")
    _check_parameters(tensor, "inputs[0]")
    rows, width = _shape(tensor["shape"], features)
    datatype = tensor["datatype"]
    if datatype not in DATATYPES:
        supported = ", ".join(sorted(DATATYPES))
        raise BadInputError(f"inputs[0].datatype: {_show(datatype)} is not one of {supported}")
    data = _rows(tensor["data"], rows, width, datatype)
    return InferRequest(data, given_id)


def _check_parameters(holder: dict[str, Any], where: str) -> None:
    if "parameters" in holder and not isinstance(holder["parameters"], dict):
        raise BadInputError(f"{where}.parameters: expected a JSON object")


def _check_outputs(outputs: object) -> None:
    if outputs is None:
        return
    if not isinstance(outputs, list):
        raise BadInputError(f"outputs: expected an array, got {_kind(outputs)}")
    for index, output in enumerate(outputs):
        where = f"outputs[{index}]"
        requested = _object(output, where, ("name",), frozenset({"name", "parameters"}))
        if requested["name"] != OUTPUT_NAME:
            raise BadInputError(
                f"{where}.name: no output {_show(requested['name'])}; the model has one, "
                f"{OUTPUT_NAME!r}"
            )


def _shape(shape: object, features: Sequence[str]) -> tuple[int, int]:
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(type(size) is int and size > 0 for size in shape)
    ):
        raise BadInputError(
            f"inputs[0].shape: expected [rows, features] of positive integers, got {_show(shape)}"
        )
    rows, width = shape
    if rows > MAX_INFER_ROWS:
        raise BadInputError(f"inputs[0].shape: {rows} rows; at most {MAX_INFER_ROWS} per request")
    if features and width != len(features):
        raise BadInputError(
            f"inputs[0].shape: {width} features per row; the model takes {len(features)} "
            f"({', '.join(features)})"
        )
    return rows, width


def _rows(data: object, rows: int, width: int, datatype: str) -> Rows:
    check, what = DATATYPES[datatype]
    if not isinstance(data, list):
        raise BadInputError(f"inputs[0].data: expected an array, got {_kind(data)}")
    if data and isinstance(data[0], list):  # nested: one array per row
        if len(data) != rows:
            raise BadInputError(f"inputs[0].data: {len(data)} rows, the shape says {rows}")
        for index, row in enumerate(data):
            if not isinstance(row, list) or len(row) != width:
                raise BadInputError(
                    f"inputs[0].data[{index}]: expected an array of {width} values, "
                    f"got {_describe(row)}"
                )
            _check_cells(row, check, f"inputs[0].data[{index}]", what, datatype)
        return data
    if len(data) != rows * width:
        raise BadInputError(
            f"inputs[0].data: {len(data)} values, the shape [{rows}, {width}] needs {rows * width}"
        )
    _check_cells(data, check, "inputs[0].data", what, datatype)
    return [data[start : start + width] for start in range(0, len(data), width)]


def _describe(value: object) -> str:
    return f"{len(value)} values" if isinstance(value, list) else _kind(value)


def _check_cells(
    cells: list[Any], check: Callable[[object], bool], where: str, what: str, datatype: str
) -> None:
    for index, value in enumerate(cells):
        if not check(value):
            raise BadInputError(
                f"{where}[{index}]: {_show(value)} is not {what} (datatype {datatype})"
            )


# ------------------------------------------------------------------ v1
def decode_v1(document: object, features: Sequence[str]) -> Rows:
    """Rows of a v1 request: ``{"instances": [[...], ...]}`` or objects keyed by feature."""
    request = _object(document, "request body", ("instances",), frozenset({"instances"}))
    instances = request["instances"]
    if not isinstance(instances, list) or not instances:
        raise BadInputError("instances: expected a non-empty array of rows")
    if len(instances) > MAX_INFER_ROWS:
        raise BadInputError(
            f"instances: {len(instances)} rows; at most {MAX_INFER_ROWS} per request"
        )
    if isinstance(instances[0], dict):
        return [_keyed_row(row, index, features) for index, row in enumerate(instances)]
    width = len(features) if features else _describe_width(instances[0])
    for index, row in enumerate(instances):
        where = f"instances[{index}]"
        if not isinstance(row, list) or len(row) != width:
            raise BadInputError(
                f"{where}: expected an array of {width} numbers, got {_describe(row)}"
            )
        _check_cells(row, _number, where, "a number", "FP64")
    return instances


def _describe_width(first: object) -> int:
    if not isinstance(first, list) or not first:
        raise BadInputError(f"instances[0]: expected an array of numbers, got {_describe(first)}")
    return len(first)


def _keyed_row(row: object, index: int, features: Sequence[str]) -> list[Cell]:
    where = f"instances[{index}]"
    if not features:
        raise BadInputError(
            f"{where}: rows keyed by feature name need the model's feature names, "
            "which its package does not give; send each row as an array"
        )
    if not isinstance(row, dict):
        raise BadInputError(f"{where}: expected an object keyed by feature, got {_kind(row)}")
    missing = [name for name in features if name not in row]
    if missing:
        raise BadInputError(f"{where}: missing feature {missing[0]!r}")
    if len(row) != len(features):
        unknown = sorted(set(row) - set(features))
        raise BadInputError(f"{where}: unknown feature {unknown[0]!r}")
    cells = [row[name] for name in features]
    for name, value in zip(features, cells, strict=True):
        if not _number(value):
            raise BadInputError(f"{where}.{name}: {_show(value)} is not a number")
    return cells


# ------------------------------------------------------------------ predictions
def predictions(result: object, rows: int) -> list[Any]:
    """The predictor's ``result`` as JSON values, one per row; :class:`PredictionError` if not."""
    if hasattr(result, "tolist"):  # a numpy array from a predictor that did not convert
        result = result.tolist()
    if not isinstance(result, list | tuple):
        raise PredictionError(f"the model returned {type(result).__name__}, not a list")
    if len(result) != rows:
        raise PredictionError(f"the model returned {len(result)} predictions for {rows} rows")
    return [_value(item, nested=True) for item in result]


def _value(item: object, *, nested: bool) -> Any:
    if hasattr(item, "item") and not isinstance(item, list | tuple):
        item = item.item()  # a numpy scalar
    if isinstance(item, bool | str):
        return item
    if isinstance(item, Integral):
        return int(item)
    if isinstance(item, Real):
        if not math.isfinite(item):
            raise PredictionError(f"the model predicted a non-finite value ({item!r})")
        return float(item)
    if nested and isinstance(item, list | tuple):
        return [_value(value, nested=False) for value in item]
    raise PredictionError(f"the model predicted a {type(item).__name__}, not a number or text")


def output_tensor(values: list[Any]) -> dict[str, Any]:
    """The v2 output tensor of predictions: shape ``[n]`` (or ``[n, k]``), data flat."""
    shape = [len(values)]
    data = values
    if values and isinstance(values[0], list):
        width = len(values[0])
        if any(not isinstance(row, list) or len(row) != width for row in values):
            raise PredictionError("the model's predictions are rows of different lengths")
        shape.append(width)
        data = [value for row in values for value in row]
    return {"name": OUTPUT_NAME, "shape": shape, "datatype": _datatype(data), "data": data}


def _datatype(data: list[Any]) -> str:
    kinds = {type(value) for value in data}
    if kinds <= {bool}:
        return "BOOL" if kinds else "FP64"
    if kinds <= {int}:
        return "INT64"
    if kinds <= {int, float}:
        return "FP64"
    if kinds <= {str}:
        return "BYTES"
    raise PredictionError("the model's predictions mix text and numbers")
