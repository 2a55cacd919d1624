"""Predictions to response tensors, and the server's configuration, without a server."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mlspec_attest.errors import UsageError
from mlspec_attest.serve.config import ServeConfig
from mlspec_attest.serve.tensors import PredictionError, output_tensor, predictions


@pytest.mark.parametrize(
    ("result", "datatype", "shape", "data"),
    [
        ([1.5, 2], "FP64", [2], [1.5, 2]),
        (np.array([0, 2, 1]), "INT64", [3], [0, 2, 1]),
        ([np.float32(0.5), np.int64(3)], "FP64", [2], [0.5, 3]),
        (np.array([True, False]), "BOOL", [2], [True, False]),
        (np.array(["setosa", "virginica"]), "BYTES", [2], ["setosa", "virginica"]),
        (np.array([[0.1, 0.9], [0.8, 0.2]]), "FP64", [2, 2], [0.1, 0.9, 0.8, 0.2]),
        ((1, 2), "INT64", [2], [1, 2]),
    ],
)
def test_predictions_become_one_output_tensor(
    result: Any, datatype: str, shape: list[int], data: list[Any]
) -> None:
    values = predictions(result, shape[0])
    assert output_tensor(values) == {
        "name": "predict",
        "shape": shape,
        "datatype": datatype,
        "data": data,
    }
    assert all(type(v) in (int, float, bool, str) for v in output_tensor(values)["data"])


@pytest.mark.parametrize(
    ("result", "rows", "message"),
    [
        ("12", 2, "the model returned str, not a list"),
        ([1.0], 2, "the model returned 1 predictions for 2 rows"),
        ([float("inf")], 1, "the model predicted a non-finite value (inf)"),
        ([{"a": 1}], 1, "the model predicted a dict, not a number or text"),
        ([[[1.0]]], 1, "the model predicted a list, not a number or text"),
    ],
)
def test_what_is_not_one_prediction_per_row(result: Any, rows: int, message: str) -> None:
    with pytest.raises(PredictionError) as info:
        predictions(result, rows)
    assert str(info.value) == message


def test_output_tensors_that_cannot_be_written() -> None:
    with pytest.raises(PredictionError, match="rows of different lengths"):
        output_tensor([[1.0, 2.0], [3.0]])
    with pytest.raises(PredictionError, match="mix text and numbers"):
        output_tensor(["a", 1.0])


def test_configuration_is_checked() -> None:
    assert ServeConfig(user_header="X-Tenant").user_header == "X-Tenant"
    with pytest.raises(UsageError, match="user_header 'X User' is not an HTTP header name"):
        ServeConfig(user_header="X User")
    with pytest.raises(UsageError, match="max_body_bytes must be between 1 and 8388608"):
        ServeConfig(max_body_bytes=8 * 1024 * 1024 + 1)
    with pytest.raises(UsageError, match="max_body_bytes must be between 1 and 8388608"):
        ServeConfig(max_body_bytes=0)
