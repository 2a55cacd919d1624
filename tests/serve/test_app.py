"""The reference server over real HTTP on 127.0.0.1: Open Inference Protocol v2 and v1
with a real scikit-learn model, and every way a request can fail."""

from __future__ import annotations

import json
import re
from threading import current_thread
from typing import Any

import httpx
import pytest

from mlspec_attest._version import __version__
from mlspec_attest.formats import limits
from mlspec_attest.serve import tensors
from mlspec_attest.serve.tensors import MAX_INFER_ROWS

from .server_fixtures import (
    MODEL_NAME,
    MODEL_VERSION,
    VSA_DIGEST,
    FailingPredictor,
    Server,
    ServerFactory,
    diabetes,
    make_server,
    served_model,
    server,
    shared_server,
)

__all__ = ["make_server", "server", "shared_server"]  # fixtures, used by name

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def tensor(data: Any, shape: list[int], datatype: str = "FP64", **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [{"name": "input-0", "shape": shape, "datatype": datatype, "data": data}],
        **extra,
    }


def post(
    url: str, body: Any = None, *, content: bytes | None = None, **kwargs: Any
) -> httpx.Response:
    if content is None:
        content = json.dumps(body).encode()
    return httpx.post(url, content=content, headers={"content-type": "application/json"}, **kwargs)


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    """An error answer: the status, the protocol's error JSON with exactly ``message``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": message}
    assert "Traceback" not in response.text


# ------------------------------------------------------------------ health and metadata
def test_server_metadata_and_health(server: Server) -> None:
    assert httpx.get(f"{server.url}/v2").json() == {
        "name": "mlspec-attest",
        "version": __version__,
        "extensions": [],
    }
    live = httpx.get(f"{server.url}/v2/health/live")
    assert (live.status_code, live.json()) == (200, {"live": True})
    ready = httpx.get(f"{server.url}/v2/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    for path in ("/ready", f"/versions/{MODEL_VERSION}/ready"):
        answer = httpx.get(f"{server.url}/v2/models/{MODEL_NAME}{path}")
        assert (answer.status_code, answer.json()) == (200, {"name": MODEL_NAME, "ready": True})
    v1 = httpx.get(f"{server.url}/v1/models/{MODEL_NAME}")
    assert v1.json() == {"name": MODEL_NAME, "ready": True}


def test_model_metadata(server: Server) -> None:
    binding = server.served.binding
    expected = {
        "name": MODEL_NAME,
        "versions": [MODEL_VERSION],
        "platform": "pickle",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 10]}],
        "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}],
        "parameters": {
            "features": list(diabetes().features),
            "model_digest": f"sha256:{binding.model_digest}",
            "vsa_digest": f"sha256:{VSA_DIGEST}",
        },
    }
    assert httpx.get(f"{server.url}/v2/models/{MODEL_NAME}").json() == expected
    versioned = httpx.get(f"{server.url}/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}")
    assert versioned.json() == expected


def test_metadata_of_a_model_without_feature_names(make_server: ServerFactory) -> None:
    server = make_server(served_model(features=()))
    inputs = httpx.get(f"{server.url}/v2/models/{MODEL_NAME}").json()["inputs"]
    assert inputs == [{"name": "input-0", "datatype": "FP64", "shape": [-1, -1]}]


# ------------------------------------------------------------------ v2 inference
def test_infer_nested_and_flat_data(server: Server) -> None:
    data = diabetes()
    rows = data.rows(5)
    expected = data.expected(rows)
    nested = post(server.infer_url(), tensor(rows, [5, 10], id="req-1"))
    assert nested.status_code == 200, nested.text
    assert nested.json() == {
        "model_name": MODEL_NAME,
        "model_version": MODEL_VERSION,
        "id": "req-1",
        "outputs": [{"name": "predict", "shape": [5], "datatype": "FP64", "data": expected}],
    }
    flat = post(server.infer_url(), tensor([v for row in rows for v in row], [5, 10]))
    assert flat.json()["outputs"][0]["data"] == expected
    # without an id of its own, the response is named by the request id
    assert flat.json()["id"] == flat.headers["x-request-id"]
    assert UUID4.fullmatch(flat.headers["x-request-id"])


@pytest.mark.parametrize(
    ("datatype", "row"),
    [
        ("FP32", [0.5, -0.25, 1, 0, 2.0, 3.0, -1.0, 0.125, 0.0, 1e30]),
        ("INT32", [1, 0, -3, 2**31 - 1, -(2**31), 5, 6, 7, 8, 9]),
        ("INT64", [2**62, 0, -(2**63), 1, 2, 3, 4, 5, 6, 7]),
        ("BOOL", [True, False, True, True, False, False, True, False, True, False]),
    ],
)
def test_infer_each_datatype(shared_server: Server, datatype: str, row: list[Any]) -> None:
    answer = post(shared_server.infer_url(), tensor([row], [1, 10], datatype))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == diabetes().expected([row])


def test_infer_versioned_and_requested_output(server: Server) -> None:
    rows = diabetes().rows(2)
    url = f"{server.url}/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/infer"
    answer = post(url, tensor(rows, [2, 10], outputs=[{"name": "predict"}], parameters={}))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == diabetes().expected(rows)


def test_infer_without_feature_names_takes_any_width(make_server: ServerFactory) -> None:
    server = make_server(served_model(features=()))
    rows = diabetes().rows(3)
    assert post(server.infer_url(), tensor(rows, [3, 10])).status_code == 200
    # the model itself refuses a wrong width: a 500 naming the model's complaint
    answer = post(server.infer_url(), tensor([[1.0, 2.0]], [1, 2]))
    assert answer.status_code == 500
    assert answer.json()["error"].startswith("the model failed to predict (ValueError: ")


# ------------------------------------------------------------------ v1
def test_v1_predict_rows_and_objects(server: Server) -> None:
    data = diabetes()
    rows = data.rows(3, start=10)
    url = f"{server.url}/v1/models/{MODEL_NAME}:predict"
    answer = post(url, {"instances": rows})
    assert (answer.status_code, answer.json()) == (200, {"predictions": data.expected(rows)})
    keyed = [dict(zip(data.features, row, strict=True)) for row in rows]
    answer = post(url, {"instances": keyed})
    assert answer.json() == {"predictions": data.expected(rows)}


V1_ERRORS = [
    ({"instances": []}, "instances: expected a non-empty array of rows"),
    ({"instances": [[1.0] * 10], "extra": 1}, "request body: unknown field 'extra'"),
    ({"rows": []}, "request body: unknown field 'rows'"),
    ({"instances": [[1.0] * 9]}, "instances[0]: expected an array of 10 numbers, got 9 values"),
    (
        {"instances": [[1.0] * 10, "x"]},
        "instances[1]: expected an array of 10 numbers, got a string",
    ),
    ({"instances": [[1.0] * 9 + ["1"]]}, "instances[0][9]: '1' is not a number (datatype FP64)"),
    ({"instances": [{"age": 1}]}, "instances[0]: missing feature 'sex'"),
]


@pytest.mark.parametrize(("body", "message"), V1_ERRORS)
def test_v1_bad_requests(shared_server: Server, body: Any, message: str) -> None:
    assert_error(post(f"{shared_server.url}/v1/models/{MODEL_NAME}:predict", body), 400, message)


def test_v1_keyed_rows_exactly_the_features(shared_server: Server) -> None:
    features = diabetes().features
    row = dict.fromkeys(features, 0.0) | {"colour": 1.0}
    answer = post(f"{shared_server.url}/v1/models/{MODEL_NAME}:predict", {"instances": [row]})
    assert_error(answer, 400, "instances[0]: unknown feature 'colour'")


# ------------------------------------------------------------------ errors
def test_unknown_model_and_version(server: Server) -> None:
    rows = diabetes().rows(1)
    assert_error(
        post(server.infer_url("iris"), tensor(rows, [1, 10])),
        404,
        "model 'iris' is not served here",
    )
    url = f"{server.url}/v2/models/{MODEL_NAME}/versions/9/infer"
    assert_error(
        post(url, tensor(rows, [1, 10])), 404, "model 'diabetes' version '9' is not served here"
    )
    assert_error(httpx.get(f"{server.url}/v2/models/iris"), 404, "model 'iris' is not served here")
    assert_error(
        httpx.get(f"{server.url}/v2/models/iris/ready"), 404, "model 'iris' is not served here"
    )
    v1 = post(f"{server.url}/v1/models/iris:predict", {"instances": rows})
    assert_error(v1, 404, "model 'iris' is not served here")
    assert_error(httpx.get(f"{server.url}/v3/anything"), 404, "Not Found")
    assert_error(httpx.get(server.infer_url()), 405, "Method Not Allowed")
    # none of these is an inference the log records, except the two POSTs to inference routes
    assert [(r.path, r.status) for r in server.log.records] == [
        ("/v2/models/iris/infer", 404),
        (f"/v2/models/{MODEL_NAME}/versions/9/infer", 404),
        ("/v1/models/iris:predict", 404),
    ]


V2_ERRORS: list[tuple[bytes, str]] = [
    (b"", "request body: not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    (b"[1, 2]", "request body: expected a JSON object, got an array"),
    (b'{"inputs": [], "inputs": []}', "request body: not valid JSON (duplicate key 'inputs')"),
    (b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [NaN]}]}',
     "request body: not valid JSON (non-standard JSON constant NaN)"),
    (b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [Infinity]}]}',
     "request body: not valid JSON (non-standard JSON constant Infinity)"),
    (b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1e400]}]}',
     "request body: number 1e400 is out of range (it overflows to infinity)"),
    (b"[[[[[[[[[1]]]]]]]]]", "request body: nested deeper than 8 levels of arrays and objects"),
    (b"\xff\xfe{}", "request body: not valid JSON: starts with a UTF-16 byte order mark; JSON must be UTF-8 without one"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), V2_ERRORS)
def test_bodies_that_are_not_json_requests(
    shared_server: Server, body: bytes, message: str
) -> None:
    assert_error(post(shared_server.infer_url(), content=body), 400, message)


ROW = [0.5] * 10
TENSOR_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"inputs": "x"}, "inputs: expected one input tensor of shape [n, features], got a string"),
    ({"inputs": []}, "inputs: expected one input tensor of shape [n, features], got 0"),
    (tensor([ROW], [1, 10]) | {"inputs": [tensor([ROW], [1, 10])["inputs"][0]] * 2},
     "inputs: expected one input tensor of shape [n, features], got 2"),
    ({"id": 7, **tensor([ROW], [1, 10])}, "id: expected a string, got a number"),
    (tensor([ROW], [1, 10], extra=1), "request body: unknown field 'extra'"),
    (tensor([ROW], [1, 10], outputs=[{"name": "proba"}]),
     "outputs[0].name: no output 'proba'; the model has one, 'predict'"),
    (tensor([ROW], [1, 10], parameters=[]), "request body.parameters: expected a JSON object"),
    ({"inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP64"}]}, "inputs[0]: missing field 'data'"),
    (tensor([ROW], [10]), "inputs[0].shape: expected [rows, features] of positive integers, got [10]"),
    (tensor([ROW], [1, 0]), "inputs[0].shape: expected [rows, features] of positive integers, got [1, 0]"),
    (tensor([ROW], [1, 10.0]), "inputs[0].shape: expected [rows, features] of positive integers, got [1, 10.0]"),
    (tensor([ROW], [MAX_INFER_ROWS + 1, 10]), f"inputs[0].shape: {MAX_INFER_ROWS + 1} rows; at most {MAX_INFER_ROWS} per request"),
    (tensor([[0.5] * 3], [1, 3]),
     "inputs[0].shape: 3 features per row; the model takes 10 (age, sex, bmi, bp, s1, s2, s3, s4, s5, s6)"),
    (tensor([ROW], [1, 10], "BYTES"), "inputs[0].datatype: 'BYTES' is not one of BOOL, FP32, FP64, INT32, INT64"),
    (tensor([ROW, ROW], [1, 10]), "inputs[0].data: 2 rows, the shape says 1"),
    (tensor([ROW, ROW[:9]], [2, 10]), "inputs[0].data[1]: expected an array of 10 values, got 9 values"),
    (tensor(ROW[:9], [1, 10]), "inputs[0].data: 9 values, the shape [1, 10] needs 10"),
    (tensor([[*ROW[:9], "0.5"]], [1, 10]), "inputs[0].data[0][9]: '0.5' is not a number (datatype FP64)"),
    (tensor([[*ROW[:9], None]], [1, 10]), "inputs[0].data[0][9]: None is not a number (datatype FP64)"),
    (tensor([[*ROW[:9], True]], [1, 10]), "inputs[0].data[0][9]: True is not a number (datatype FP64)"),
    (tensor([*ROW[:9], [0.5]], [1, 10]), "inputs[0].data[9]: [0.5] is not a number (datatype FP64)"),
    (tensor([[*ROW[:9], 1e+39]], [1, 10], "FP32"),
     "inputs[0].data[0][9]: 1e+39 is not a number within FP32 range (datatype FP32)"),
    (tensor([[1] * 9 + [2**31]], [1, 10], "INT32"),
     "inputs[0].data[0][9]: 2147483648 is not an integer within INT32 range (datatype INT32)"),
    (tensor([[1] * 9 + [2**63]], [1, 10], "INT64"),
     "inputs[0].data[0][9]: 9223372036854775808 is not an integer within INT64 range (datatype INT64)"),
    (tensor([[1] * 9 + [1.5]], [1, 10], "INT64"),
     "inputs[0].data[0][9]: 1.5 is not an integer within INT64 range (datatype INT64)"),
    (tensor([[True] * 9 + [1]], [1, 10], "BOOL"), "inputs[0].data[0][9]: 1 is not true or false (datatype BOOL)"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), TENSOR_ERRORS)
def test_requests_that_are_not_valid_tensors(
    shared_server: Server, body: Any, message: str
) -> None:
    assert_error(post(shared_server.infer_url(), body), 400, message)


def test_too_many_rows_in_data_as_well_as_shape(server: Server) -> None:
    rows = MAX_INFER_ROWS + 1
    answer = post(f"{server.url}/v1/models/{MODEL_NAME}:predict", {"instances": [ROW] * rows})
    assert_error(answer, 400, f"instances: {rows} rows; at most {MAX_INFER_ROWS} per request")
    at_limit = post(server.infer_url(), tensor([ROW] * MAX_INFER_ROWS, [MAX_INFER_ROWS, 10]))
    assert at_limit.status_code == 200
    assert len(at_limit.json()["outputs"][0]["data"]) == MAX_INFER_ROWS


TOO_LARGE = "request body: larger than 8 MiB, the limit for an inference request"


def test_body_too_large_by_content_length(server: Server) -> None:
    body = b" " * (limits.MAX_INFER_BODY_BYTES + 1)
    assert_error(post(server.infer_url(), content=body), 413, TOO_LARGE)
    (record,) = server.log.records
    assert (record.status, record.body, record.output) == (413, b"", None)


def test_body_too_large_while_streamed(server: Server) -> None:
    """Without a Content-Length (chunked), the body is refused once over the limit."""
    chunk = b" " * (1024 * 1024)

    def chunks() -> Any:
        for _ in range(9):
            yield chunk

    answer = httpx.post(server.infer_url(), content=chunks())
    assert "content-length" not in answer.request.headers
    assert_error(answer, 413, TOO_LARGE)


def test_body_at_the_limit_is_read(server: Server) -> None:
    document = json.dumps(tensor([ROW], [1, 10])).encode()
    body = document + b" " * (limits.MAX_INFER_BODY_BYTES - len(document))
    assert len(body) == limits.MAX_INFER_BODY_BYTES
    answer = post(server.infer_url(), content=body)
    assert answer.status_code == 200, answer.text
    assert server.log.records[-1].body == body


def test_failing_model_answers_500_without_traceback(make_server: ServerFactory) -> None:
    server = make_server(served_model(FailingPredictor()))
    answer = post(server.infer_url(), tensor([ROW], [1, 10]))
    assert_error(answer, 500, "the model failed to predict (ValueError: matrix is singular)")
    v1 = post(f"{server.url}/v1/models/{MODEL_NAME}:predict", {"instances": [ROW]})
    assert_error(v1, 500, "the model failed to predict (ValueError: matrix is singular)")
    assert [(r.status, r.output) for r in server.log.records] == [(500, None), (500, None)]


class WrongCountPredictor:
    def predict(self, rows: Any) -> list[Any]:
        return [1.0]


class NonFinitePredictor:
    def predict(self, rows: Any) -> list[Any]:
        return [float("nan")] * len(rows)


@pytest.mark.parametrize(
    ("predictor", "message"),
    [
        (WrongCountPredictor(), "the model returned 1 predictions for 2 rows"),
        (NonFinitePredictor(), "the model predicted a non-finite value (nan)"),
    ],
)
def test_model_answers_that_are_not_predictions(
    make_server: ServerFactory, predictor: Any, message: str
) -> None:
    server = make_server(served_model(predictor))
    assert_error(post(server.infer_url(), tensor([ROW, ROW], [2, 10])), 500, message)


def test_every_response_names_request_and_summary(server: Server) -> None:
    responses = [
        httpx.get(f"{server.url}/v2"),
        httpx.get(f"{server.url}/ok"),
        httpx.get(f"{server.url}/nowhere"),
        post(server.infer_url(), tensor([ROW], [1, 10])),
        post(server.infer_url(), content=b"{"),
    ]
    for response in responses:
        assert response.headers["x-mlspec-vsa"] == f"sha256:{VSA_DIGEST}"
        assert UUID4.fullmatch(response.headers["x-request-id"])
    assert len({response.headers["x-request-id"] for response in responses}) == len(responses)


def test_a_large_body_is_decoded_off_the_event_loop_with_the_same_answers(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # over 256 KiB the body is parsed on the predict threads: the answers are the same
    threads: list[str] = []
    real = tensors.parse_body
    monkeypatch.setattr(
        tensors, "parse_body", lambda body: threads.append(current_thread().name) or real(body)
    )
    data = diabetes()
    rows = data.rows(400) * 8  # 3,200 rows, about 700 KiB of JSON
    answer = post(server.infer_url(), tensor(rows, [len(rows), 10]))
    assert answer.status_code == 200, answer.text[:200]
    assert answer.json()["outputs"][0]["data"] == data.expected(rows)
    bad = post(server.infer_url(), content=b'{"inputs": [' + b" " * (300 << 10) + b"}")
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("request body: not valid JSON")
    assert [r.status for r in server.log.records] == [200, 400]
    assert [name.startswith("mlspec-predict") for name in threads] == [True, True]
    assert post(server.infer_url(), tensor(data.rows(1), [1, 10])).status_code == 200
    assert not threads[2].startswith("mlspec-predict")  # a small body: on the event loop
