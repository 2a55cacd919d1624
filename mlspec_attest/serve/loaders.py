"""Model loaders: a predictor from the verified bytes of one file, never from a path.

The gate (:mod:`mlspec_attest.serve.gate`) hashes every file of a model into memory
and compares the digests with the signed summary before anything here runs; a
loader is then handed those bytes, so what is deserialized is exactly what was
hashed (a file swapped on disk after the check is never read).

========  =================  ==========================================================
format    entry file         how it is opened
========  =================  ==========================================================
pickle    ``*.pkl``          ``pickle.loads``: an object with ``predict`` (scikit-learn)
joblib    ``*.joblib``       ``joblib.load`` of an in-memory file: the same
safetensors ``*.safetensors`` ``safetensors.numpy.load``: a linear model, tensors
                             ``weight`` ([n_features] or [n_features, 1]) and ``bias``
                             ([] or [1]); prediction = rows · weight + bias
onnx      ``*.onnx``         ``onnxruntime.InferenceSession`` of the bytes: the first
                             input fed float32 [rows, features], the first output
                             returned flattened (external data files are refused)
========  =================  ==========================================================

Pickle and joblib run code from the file: the gate accepts them only because the
bytes are the ones a trusted pipeline produced and a trusted verifier checked.
Every third-party package is imported on first use; a missing one is exit 4
naming the ``serve`` extra. Predictions are plain Python lists.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePosixPath
from types import ModuleType
from typing import Any

from msgspec import Struct, field

from mlspec_attest.errors import (
    BadInputError,
    UsageError,
    require,
)
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.jsonio import loads_strict
from mlspec_attest.formats.limits import MAX_MODEL_CARD_BYTES
from mlspec_attest.serve.model import Predictor

MODEL_CARD = "model-card.json"
SUFFIXES: dict[str, str] = {
    ".pkl": "pickle",
    ".joblib": "joblib",
    ".safetensors": "safetensors",
    ".onnx": "onnx",
}
"""Entry-file suffix -> the loader that opens it."""

Loader = Callable[[memoryview, str], Predictor]
"""A loader: (the verified bytes of the entry file, its name in the model) -> a predictor."""

Rows = Sequence[Sequence[float]]


# ------------------------------------------------------------------ third-party imports
def _import(module: str, feature: str) -> ModuleType:
    """:func:`~mlspec_attest.errors.require`: a missing package names the ``serve`` extra."""
    return require(module, feature)


def _numpy() -> Any:
    return _import("numpy", "serving a model")


def _matrix(rows: Rows, dtype: str, width: int | None) -> Any:
    """``rows`` as a 2-D array of ``dtype``; ``width`` columns when the model says."""
    np = _numpy()
    try:
        x = np.asarray(rows, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"model input: rows of numbers expected ({exc})") from exc
    if x.ndim != 2 or (width is not None and x.shape[1] != width):
        wanted = f"[rows, {width}]" if width is not None else "[rows, features]"
        raise BadInputError(f"model input: shape {list(x.shape)}, expected {wanted}")
    return x


def _plain(values: Any) -> list[Any]:
    """A prediction as a plain Python list (numbers, strings, booleans)."""
    out = values.tolist() if hasattr(values, "tolist") else list(values)
    return out if isinstance(out, list) else [out]


# ------------------------------------------------------------------ predictors
class EstimatorPredictor(Struct, frozen=True):
    """An object with scikit-learn's ``predict`` (pickle, joblib)."""

    model: Any

    def predict(self, rows: Rows) -> list[Any]:
        width = getattr(self.model, "n_features_in_", None)
        x = _matrix(rows, "float64", width if isinstance(width, int) else None)
        return _plain(self.model.predict(x))


class LinearPredictor(Struct, frozen=True):
    """rows · weight + bias (a safetensors linear model)."""

    weight: Any
    bias: float

    def predict(self, rows: Rows) -> list[Any]:
        x = _matrix(rows, "float64", int(self.weight.shape[0]))
        return _plain(x @ self.weight + self.bias)


class OnnxPredictor(Struct, frozen=True):
    """The first input fed float32 [rows, features], the first output flattened."""

    session: Any
    input_name: str
    width: int | None = None

    def predict(self, rows: Rows) -> list[Any]:
        x = _matrix(rows, "float32", self.width)
        try:
            outputs = self.session.run(None, {self.input_name: x})
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BadInputError(f"model input: the ONNX model refused it ({exc})") from exc
        return _plain(_numpy().asarray(outputs[0]).reshape(-1))


# ------------------------------------------------------------------ loaders
def _estimator(model: Any, name: str, kind: str) -> Predictor:
    if not callable(getattr(model, "predict", None)):
        raise BadInputError(
            f"{name}: the {kind} object ({type(model).__name__}) has no predict method",
            remedy="package an estimator with predict(rows), e.g. a scikit-learn model",
        )
    return EstimatorPredictor(model)


def load_pickle(data: memoryview, name: str) -> Predictor:
    try:
        model = pickle.loads(data)  # noqa: S301 - the bytes a trusted verifier covered
    except Exception as exc:
        raise BadInputError(f"{name}: cannot unpickle ({type(exc).__name__}: {exc})") from exc
    return _estimator(model, name, "pickled")


def load_joblib(data: memoryview, name: str) -> Predictor:
    joblib = _import("joblib", "loading a joblib model")
    try:
        model = joblib.load(io.BytesIO(data))
    except Exception as exc:
        raise BadInputError(f"{name}: cannot load ({type(exc).__name__}: {exc})") from exc
    return _estimator(model, name, "joblib")


def load_safetensors(data: memoryview, name: str) -> Predictor:
    st = _import("safetensors.numpy", "loading a safetensors model")
    np = _numpy()
    try:
        tensors = st.load(bytes(data))  # the library takes bytes only: one copy
    except Exception as exc:
        raise BadInputError(f"{name}: not a safetensors file ({exc})") from exc
    weight, bias = tensors.get("weight"), tensors.get("bias")
    if weight is not None and weight.ndim == 2 and weight.shape[1] == 1:
        weight = weight[:, 0]
    if weight is None or bias is None or weight.ndim != 1 or bias.size != 1:
        shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in sorted(tensors.items()))
        raise BadInputError(
            f"{name}: the reference server serves a safetensors file as a linear model: "
            f"tensors 'weight' [n_features] (or [n_features, 1]) and 'bias' [] (or [1]); "
            f"found {shapes or 'no tensors'}",
            remedy="serve other architectures as ONNX, or with a loader of your own",
        )
    return LinearPredictor(np.asarray(weight, dtype="float64"), float(bias.reshape(-1)[0]))


def load_onnx(data: memoryview, name: str) -> Predictor:
    ort = _import("onnxruntime", "loading an ONNX model")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors come back as exceptions, not on stderr
    try:
        # From bytes there is no model path, so onnxruntime refuses external data files:
        # nothing is read besides the verified bytes.
        session = ort.InferenceSession(bytes(data), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise BadInputError(f"{name}: onnxruntime cannot load it ({exc})") from exc
    first = session.get_inputs()[0]
    shape = list(first.shape)
    width = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
    return OnnxPredictor(session, first.name, width)


LOADERS: dict[str, Loader] = {
    "pickle": load_pickle,
    "joblib": load_joblib,
    "safetensors": load_safetensors,
    "onnx": load_onnx,
}


# ------------------------------------------------------------------ choosing and loading
def choose_entry(names: Sequence[str], entry: str | None = None) -> str:
    """The file the loader opens: ``entry``, else the one file with a known suffix."""
    if entry is not None:
        if entry not in names:
            raise UsageError(
                f"{named('entry')} {entry!r} is not a file of the verified model",
                remedy=f"name one of: {', '.join(names[:10]) or '(no files)'}",
            )
        return entry
    candidates = [n for n in names if PurePosixPath(n).suffix in SUFFIXES]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise UsageError(
            "the model holds no file a loader opens (.pkl, .joblib, .safetensors, .onnx)",
            remedy=f"name the model file with {named('entry')}",
        )
    raise UsageError(
        f"the model holds several files a loader opens: {', '.join(candidates)}",
        remedy=f"name the one to serve with {named('entry')}",
    )


class Loaded(Struct, frozen=True):
    """A loaded model: the predictor, its format, the entry file it came from."""

    predictor: Predictor
    format: str
    entry: str


def load_model(
    files: Mapping[str, memoryview],
    *,
    entry: str | None = None,
    loader: str | Loader | None = None,
) -> Loaded:
    """Load the entry file of ``files`` (verified bytes by name) with ``loader``
    (a format name or a :data:`Loader`), by default the one its suffix names."""
    name = choose_entry(list(files), entry)
    fmt = SUFFIXES.get(PurePosixPath(name).suffix)
    if isinstance(loader, str):
        if loader not in LOADERS:
            raise UsageError(
                f"unknown loader {loader!r}", remedy=f"use one of {', '.join(LOADERS)}"
            )
        fmt = loader
    if callable(loader):
        return Loaded(loader(files[name], name), fmt or "custom", name)
    if fmt is None:
        raise UsageError(
            f"{name}: no loader opens this kind of file",
            remedy=f"name a .pkl, .joblib, .safetensors or .onnx file with {named('entry')}",
        )
    return Loaded(LOADERS[fmt](files[name], name), fmt, name)


class ModelCard(Struct, frozen=True):
    """What a package's ``model-card.json`` says: name, version, feature names, the rest."""

    name: str | None = None
    version: str | None = None
    features: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def read_card(files: Mapping[str, memoryview]) -> ModelCard:
    """The model card among the verified files, if there is one (bounded, strict JSON)."""
    data = files.get(MODEL_CARD)
    if data is None:
        return ModelCard()
    doc = loads_strict(bytes(data), what=MODEL_CARD, max_bytes=MAX_MODEL_CARD_BYTES)
    if not isinstance(doc, dict):
        raise BadInputError(f"{MODEL_CARD}: expected a JSON object")
    name, version, features = doc.get("name"), doc.get("version"), doc.get("features", [])
    for key, value in (("name", name), ("version", version)):
        if value is not None and (not isinstance(value, str) or not value):
            raise BadInputError(f"{MODEL_CARD}: {key} must be a non-empty string")
    if not isinstance(features, list) or not all(isinstance(f, str) and f for f in features):
        raise BadInputError(f"{MODEL_CARD}: features must be a list of feature names")
    rest = {k: v for k, v in doc.items() if k not in ("name", "version", "features")}
    return ModelCard(name, version, tuple(features), rest)
