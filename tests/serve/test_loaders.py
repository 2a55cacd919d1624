"""Loaders: safetensors, ONNX, joblib and pickle models from verified bytes, and the entry file.

ONNX models are built in the test with onnx.helper (a linear model: MatMul + Add); the
safetensors and joblib files with their own libraries. Through open_model, the models are
signed, gated and served like any package.
"""

from __future__ import annotations

import io
import json
import pickle
import sys
from datetime import timedelta
from pathlib import Path

import joblib
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save as save_safetensors
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

from mlspec_attest.errors import BackendError, BadInputError, ExitCode, UsageError
from mlspec_attest.serve.gate import open_model
from mlspec_attest.serve.loaders import (
    LOADERS,
    choose_entry,
    load_model,
    load_onnx,
    load_safetensors,
    read_card,
)
from mlspec_attest.serve.vsa_check import GateExpectations, VerifierTrust

from .test_gate_support import NOW, signed, summary_for, verifier

WEIGHT = [0.5, -1.0, 2.0]
BIAS = 0.25
ROWS = [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [-2.0, 1.0, 0.5]]
EXPECTED = [sum(w * x for w, x in zip(WEIGHT, row, strict=True)) + BIAS for row in ROWS]


def view(data: bytes) -> memoryview:
    return memoryview(bytearray(data)).toreadonly()


def linear_onnx(*, external: Path | None = None) -> bytes:
    weight = numpy_helper.from_array(np.array(WEIGHT, dtype=np.float32).reshape(3, 1), "W")
    bias = helper.make_tensor("B", TensorProto.FLOAT, [1], [BIAS])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Add", ["m", "B"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        [weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if external is None:
        return model.SerializeToString()
    onnx.save_model(
        model, external / "m.onnx", save_as_external_data=True, location="w.bin", size_threshold=0
    )
    return (external / "m.onnx").read_bytes()


# ------------------------------------------------------------------ safetensors
@pytest.mark.parametrize("shape", [(3,), (3, 1)])
def test_a_safetensors_linear_model_predicts(shape: tuple[int, ...]) -> None:
    data = save_safetensors(
        {
            "weight": np.array(WEIGHT, dtype=np.float32).reshape(shape),
            "bias": np.array([BIAS], dtype=np.float32),
        }
    )
    predictions = load_safetensors(view(data), "linear.safetensors").predict(ROWS)
    assert predictions == pytest.approx(EXPECTED)
    assert all(type(p) is float for p in predictions)


def test_a_safetensors_file_of_another_kind_says_what_it_must_hold() -> None:
    data = save_safetensors({"layer1.weight": np.zeros((4, 3), dtype=np.float32)})
    with pytest.raises(BadInputError) as info:
        load_safetensors(view(data), "net.safetensors")
    assert info.value.message == (
        "net.safetensors: the reference server serves a safetensors file as a linear model: "
        "tensors 'weight' [n_features] (or [n_features, 1]) and 'bias' [] (or [1]); "
        "found layer1.weight [4, 3]"
    )
    with pytest.raises(BadInputError, match="not a safetensors file"):
        load_safetensors(view(b"garbage"), "x.safetensors")


def test_rows_of_the_wrong_width_are_refused() -> None:
    data = save_safetensors(
        {"weight": np.ones(3, dtype=np.float32), "bias": np.zeros((), dtype=np.float32)}
    )
    predictor = load_safetensors(view(data), "linear.safetensors")
    with pytest.raises(BadInputError, match=r"shape \[1, 2\], expected \[rows, 3\]"):
        predictor.predict([[1.0, 2.0]])
    with pytest.raises(BadInputError, match="rows of numbers expected"):
        predictor.predict([["a", "b", "c"]])  # type: ignore[list-item]


# ------------------------------------------------------------------ ONNX
def test_an_onnx_linear_model_predicts() -> None:
    predictor = load_onnx(view(linear_onnx()), "linear.onnx")
    predictions = predictor.predict(ROWS)
    assert predictions == pytest.approx(EXPECTED, rel=1e-6)
    assert all(type(p) is float for p in predictions)
    with pytest.raises(BadInputError, match=r"expected \[rows, 3\]"):
        predictor.predict([[1.0]])


def test_an_onnx_model_with_external_data_is_refused(tmp_path: Path) -> None:
    # The weights file sits in the working directory: loading bytes must not read it.
    data = linear_onnx(external=tmp_path)
    assert (tmp_path / "w.bin").exists()
    with pytest.raises(BadInputError, match="onnxruntime cannot load it"):
        load_onnx(view(data), "m.onnx")


def test_garbage_is_no_onnx_model() -> None:
    with pytest.raises(BadInputError, match=r"linear\.onnx: onnxruntime cannot load it"):
        load_onnx(view(b"\x00" * 64), "linear.onnx")


# ------------------------------------------------------------------ pickle and joblib
def _tree() -> DecisionTreeClassifier:
    x, y = load_iris(return_X_y=True)
    return DecisionTreeClassifier(random_state=0).fit(x, y)


def test_a_joblib_model_predicts() -> None:
    buffer = io.BytesIO()
    joblib.dump(_tree(), buffer)
    loaded = load_model({"tree.joblib": view(buffer.getvalue())})
    assert loaded.format == "joblib" and loaded.entry == "tree.joblib"
    assert loaded.predictor.predict([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]) == [0, 2]


def test_a_pickled_object_without_predict_is_refused() -> None:
    with pytest.raises(BadInputError, match=r"the pickled object \(dict\) has no predict method"):
        load_model({"m.pkl": view(pickle.dumps({"weights": [1, 2]}))})
    with pytest.raises(BadInputError, match="cannot unpickle"):
        load_model({"m.pkl": view(b"not a pickle")})


# ------------------------------------------------------------------ the entry file
def test_the_entry_is_the_one_model_file() -> None:
    names = ["README.md", "model-card.json", "weights/linear.safetensors"]
    assert choose_entry(names) == "weights/linear.safetensors"
    assert choose_entry(names, "README.md") == "README.md"


def test_two_model_files_need_an_entry_naming_both() -> None:
    with pytest.raises(UsageError) as info:
        choose_entry(["a.pkl", "b.onnx"])
    assert info.value.message == "the model holds several files a loader opens: a.pkl, b.onnx"
    assert info.value.remedy == "name the one to serve with entry"
    assert info.value.exit_code == ExitCode.USAGE


def test_no_model_file_or_an_unknown_entry_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="holds no file a loader opens"):
        choose_entry(["README.md"])
    with pytest.raises(UsageError, match=r"'x\.pkl' is not a file of the verified model"):
        choose_entry(["a.pkl"], "x.pkl")
    with pytest.raises(UsageError, match="no loader opens this kind of file"):
        load_model({"README.md": view(b"hi")}, entry="README.md")
    with pytest.raises(UsageError, match="unknown loader 'tensorflow'"):
        load_model({"a.pkl": view(b"")}, loader="tensorflow")


def test_a_format_can_be_named_for_an_entry_of_another_suffix() -> None:
    data = save_safetensors(
        {"weight": np.ones(2, dtype=np.float32), "bias": np.ones(1, dtype=np.float32)}
    )
    loaded = load_model({"weights.bin": view(data)}, entry="weights.bin", loader="safetensors")
    assert loaded.format == "safetensors"
    assert loaded.predictor.predict([[1.0, 2.0]]) == [4.0]
    assert set(LOADERS) == {"pickle", "joblib", "safetensors", "onnx"}


def test_a_model_card_is_read_strictly() -> None:
    card = read_card(
        {"model-card.json": view(json.dumps({"name": "n", "features": ["a"], "x": 1}).encode())}
    )
    assert (card.name, card.version, card.features, card.extra) == ("n", None, ("a",), {"x": 1})
    assert read_card({}).name is None
    with pytest.raises(BadInputError, match="version must be a non-empty string"):
        read_card({"model-card.json": view(b'{"version": 3}')})
    with pytest.raises(BadInputError, match="expected a JSON object"):
        read_card({"model-card.json": view(b"[]")})


# ------------------------------------------------------------------ a missing package
def test_a_missing_loader_package_names_the_serve_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "onnxruntime" or n.startswith("onnxruntime.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(BackendError) as info:
        load_onnx(view(linear_onnx()), "linear.onnx")
    assert info.value.exit_code == ExitCode.BACKEND
    assert info.value.message == "loading an ONNX model needs onnxruntime, which is not installed"
    assert info.value.remedy == "pip install 'mlspec-attest[serve]'"


# ------------------------------------------------------------------ through the gate
@pytest.mark.parametrize("kind", ["onnx", "safetensors"])
def test_signed_onnx_and_safetensors_packages_are_served(tmp_path: Path, kind: str) -> None:
    model = tmp_path / kind
    model.mkdir()
    if kind == "onnx":
        (model / "linear.onnx").write_bytes(linear_onnx())
    else:
        tensors = {
            "weight": np.array(WEIGHT, dtype=np.float64),
            "bias": np.array(BIAS, dtype=np.float64),
        }
        (model / "linear.safetensors").write_bytes(save_safetensors(tensors))
    (model / "model-card.json").write_text(
        json.dumps({"name": "linear", "features": ["a", "b", "c"]})
    )
    served = open_model(
        model,
        signed(summary_for(model)),
        VerifierTrust(keys=(verifier().public_key,)),
        GateExpectations(max_age=timedelta(days=1), now=NOW),
    )
    assert served.format == kind
    assert served.features == ("a", "b", "c")
    assert served.predictor.predict(ROWS) == pytest.approx(EXPECTED, rel=1e-6)
