"""Evaluation metrics in the ``sign --metrics`` format, computed with scikit-learn.

The document (``https://mlspec-attest.dev/metrics/v1``, see docs/metrics.md)::

    {"schemaVersion": METRICS_SCHEMA,
     "metrics": {...overall...}, "confidenceIntervals"?: {...}, "omitted"?: {...},
     "slices": {family: {value: {"count": n, "metrics": {...},
                                 "confidenceIntervals"?: {...}, "omitted"?: {...}}}}}

A metric that is undefined for some rows (AUC on a one-class slice, R² on a
constant target, precision with no positive predictions) is left out and the
reason recorded under ``omitted``: the document never holds NaN, so a policy
objective over a missing metric fails closed instead of comparing against NaN.

scikit-learn and numpy are optional (the ``metrics`` extra, see
:mod:`mlspec_attest.errors`) and imported only when metrics are computed;
validating a document (:mod:`mlspec_attest.evidence.metrics_file`) needs neither.
The document is assembled by :mod:`mlspec_attest.evidence.metrics_document`; a
file of predictions is read by :mod:`mlspec_attest.evidence.predictions`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec_attest.errors import BadInputError, UsageError, require
from mlspec_attest.evidence.metrics_document import Computed, build_document, check_resampling
from mlspec_attest.evidence.predictions import read_predictions, text_key
from mlspec_attest.formats.inputs import named

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Rows = NDArray[np.intp]

TASKS = ("regression", "classification")
REGRESSION_METRICS = ("count", "mae", "mse", "rmse", "r2", "max_error", "median_absolute_error")
CLASSIFICATION_METRICS = ("count", "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")


# ------------------------------------------------------------------ public API
def slice_key(value: object) -> str:
    """The text key of one slice value: ``str(value)``, except that integral floats lose ``.0``.

    ``1.0`` and ``numpy.float64(2.0)`` become ``"1"`` and ``"2"``, so a float column
    of category codes (the diabetes ``sex`` column) gives the same keys as integers.
    """
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, str | bytes):
        value = item()  # numpy scalar -> Python scalar
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def regression_metrics(
    y_true: Sequence[float],
    y_pred: Sequence[float],
    *,
    slices: Mapping[str, Sequence[object]] | None = None,
    confidence: float | None = None,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """mae, mse, rmse, r2, max_error, median_absolute_error and count, overall and per slice.

    ``r2`` is omitted (with the reason) for fewer than two rows or a constant
    target, where scikit-learn would return NaN or an arbitrary 0/1.
    """
    np, skm = _backend()
    truth = _numbers(y_true, "y_true")
    pred = _numbers(y_pred, "y_pred")
    _same_length(len(truth), pred=len(pred))

    def compute(rows: Rows) -> Computed:
        t, p = truth[rows], pred[rows]
        values: dict[str, float] = {
            "count": len(rows),
            "mae": float(skm.mean_absolute_error(t, p)),
            "mse": float(skm.mean_squared_error(t, p)),
            "rmse": float(skm.root_mean_squared_error(t, p)),
            "max_error": float(skm.max_error(t, p)),
            "median_absolute_error": float(skm.median_absolute_error(t, p)),
        }
        omitted: dict[str, str] = {}
        if len(rows) < 2:
            omitted["r2"] = "undefined for fewer than two rows"
        elif bool(np.all(t == t[0])):
            omitted["r2"] = "undefined: every true value is equal (zero variance)"
        else:
            values["r2"] = float(skm.r2_score(t, p))
        return values, omitted

    return _document(
        "regression", compute, len(truth), slices, REGRESSION_METRICS, confidence, bootstrap, seed
    )


def classification_metrics(
    y_true: Sequence[object],
    y_pred: Sequence[object],
    *,
    y_score: Sequence[float] | None = None,
    slices: Mapping[str, Sequence[object]] | None = None,
    positive_label: object = 1,
    confidence: float | None = None,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """accuracy, precision, recall, f1 and count (+ roc_auc, log_loss with ``y_score``).

    With at most two labels overall the problem is binary: precision, recall and
    f1 are those of ``positive_label``, and each is omitted where it is 0/0.
    With more labels they are macro averages over the labels present in the rows
    measured, a label's undefined term counting 0 (scikit-learn's
    ``zero_division=0``). ``y_score`` is the positive class's probability or
    score (binary only): roc_auc needs both classes among the true labels;
    log_loss needs probabilities in [0, 1].
    """
    np, _ = _backend()
    truth = _labels(y_true, "y_true")
    pred = _labels(y_pred, "y_pred")
    _same_length(len(truth), pred=len(pred))
    if (truth.dtype.kind == "U") != (pred.dtype.kind == "U"):
        raise BadInputError("y_true and y_pred mix numbers and strings")
    labels = np.unique(np.concatenate([truth, pred])).tolist()
    binary = len(labels) <= 2
    if binary and len(labels) == 2 and positive_label not in labels:
        raise BadInputError(
            f"positive label {positive_label!r} is not one of the labels {labels}",
            remedy=f"name the positive class ({named('positive_label')})",
        )
    score = None if y_score is None else _numbers(y_score, "y_score")
    if score is not None:
        _same_length(len(truth), score=len(score))
        if not binary:
            raise BadInputError(
                f"y_score is supported for binary classification only ({len(labels)} labels found)"
            )
    compute = _binary(truth, pred, score, positive_label) if binary else _multiclass(truth, pred)
    return _document(
        "classification",
        compute,
        len(truth),
        slices,
        CLASSIFICATION_METRICS,
        confidence,
        bootstrap,
        seed,
    )


def _multiclass(truth: Any, pred: Any) -> Callable[[Rows], Computed]:
    """Accuracy and the macro averages of precision, recall and f1 (a 0/0 term counts 0)."""
    _, skm = _backend()

    def compute(rows: Rows) -> Computed:
        prf = skm.precision_recall_fscore_support(
            truth[rows], pred[rows], average="macro", zero_division=0.0
        )
        values: dict[str, float] = {
            "count": len(rows),
            "accuracy": float(skm.accuracy_score(truth[rows], pred[rows])),
        }
        values.update(precision=float(prf[0]), recall=float(prf[1]), f1=float(prf[2]))
        return values, {}

    return compute


def _binary(
    truth: Any, pred: Any, score: Any, positive_label: object
) -> Callable[[Rows], Computed]:
    """The binary metrics of ``positive_label``, each omitted where it is 0/0."""
    np, skm = _backend()
    probabilities = score is not None and bool(np.all((score >= 0) & (score <= 1)))
    t_pos = np.fromiter((v == positive_label for v in truth.tolist()), np.int8, len(truth))
    p_pos = np.fromiter((v == positive_label for v in pred.tolist()), np.int8, len(pred))
    positive = f"the positive label {positive_label!r}"

    def compute(rows: Rows) -> Computed:
        values: dict[str, float] = {
            "count": len(rows),
            "accuracy": float(skm.accuracy_score(truth[rows], pred[rows])),
        }
        omitted: dict[str, str] = {}
        t, p = t_pos[rows], p_pos[rows]
        predicted, actual = int(p.sum()), int(t.sum())
        prf = skm.precision_recall_fscore_support(
            t, p, average="binary", pos_label=1, zero_division=0.0
        )
        if predicted:
            values["precision"] = float(prf[0])
        else:
            omitted["precision"] = f"undefined: no row is predicted as {positive}"
        if actual:
            values["recall"] = float(prf[1])
        else:
            omitted["recall"] = f"undefined: no true label is {positive}"
        if predicted or actual:
            values["f1"] = float(prf[2])
        else:
            omitted["f1"] = f"undefined: {positive} occurs in neither true nor predicted labels"
        if score is not None:
            _score_metrics(t, score[rows], actual, probabilities, values, omitted)
        return values, omitted

    return compute


def _score_metrics(
    t: Any,
    s: Any,
    actual: int,
    probabilities: bool,
    values: dict[str, float],
    omitted: dict[str, str],
) -> None:
    _, skm = _backend()
    if 0 < actual < len(t):
        values["roc_auc"] = float(skm.roc_auc_score(t, s))
    else:
        omitted["roc_auc"] = "undefined: only one class among the true labels"
    if probabilities:
        values["log_loss"] = float(skm.log_loss(t, s, labels=[0, 1]))
    else:
        omitted["log_loss"] = "undefined: the scores are not probabilities in [0, 1]"


def metrics_from_csv(
    path: Path,
    *,
    task: str,
    label: str,
    prediction: str,
    score: str | None = None,
    slices: Sequence[str] = (),
    positive_label: str | None = None,
    confidence: float | None = None,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """The metrics document of a file of predictions with a header row (CSV, TSV, JSON Lines).

    Read by the one tabular reader (:mod:`mlspec_attest.evidence.predictions`).
    Regression cells must be finite numbers. Classification labels and slice
    cells are text, with integral decimals normalized (``"2.0"`` -> ``"2"``) as
    :func:`slice_key` does; the default positive label is ``"1"``. A missing
    number or label is bad input; a missing slice value is the slice ``null``.
    """
    if task not in TASKS:
        raise UsageError(f"unknown task {task!r}", remedy=f"use one of {', '.join(TASKS)}")
    if task == "regression" and (score is not None or positive_label is not None):
        raise UsageError("a score column and a positive label apply to classification only")
    if len(set(slices)) != len(slices):
        raise UsageError(f"a slice column is named twice: {list(slices)}")
    table = read_predictions(path, [label, prediction, *([score] if score else []), *slices])
    slice_values: dict[str, Sequence[object]] = {name: table.slice_keys(name) for name in slices}
    resampling: dict[str, Any] = {"confidence": confidence, "bootstrap": bootstrap, "seed": seed}
    if task == "regression":
        return regression_metrics(
            table.numbers(label), table.numbers(prediction), slices=slice_values, **resampling
        )
    return classification_metrics(
        table.labels(label),
        table.labels(prediction),
        y_score=None if score is None else table.numbers(score),
        slices=slice_values,
        positive_label=text_key("1" if positive_label is None else positive_label),
        **resampling,
    )


# ------------------------------------------------------------------ computation
def _backend() -> tuple[Any, Any]:
    numpy = require("numpy", "computing metrics")
    return numpy, require("sklearn.metrics", "computing metrics")


def _document(
    task: str,
    compute: Callable[[Rows], Computed],
    n: int,
    slices: Mapping[str, Sequence[object]] | None,
    order: tuple[str, ...],
    confidence: float | None,
    bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    level = check_resampling(confidence, bootstrap, seed)
    if n == 0:
        raise BadInputError(f"no rows to compute {task} metrics from")
    groups = _slice_rows(slices or {}, n)
    return build_document(task, compute, n, groups, order, level, bootstrap, seed)


def _slice_rows(slices: Mapping[str, Sequence[object]], n: int) -> dict[str, dict[str, Rows]]:
    np, _ = _backend()
    out: dict[str, dict[str, Rows]] = {}
    for family, values in slices.items():
        if not isinstance(family, str) or not family:
            raise BadInputError(f"slice family names must be non-empty strings, not {family!r}")
        items = values.tolist() if hasattr(values, "tolist") else list(values)
        if len(items) != n:
            raise BadInputError(f"slice {family!r} has {len(items)} values for {n} rows")
        groups: dict[str, list[int]] = {}
        for i, value in enumerate(items):
            groups.setdefault(slice_key(value), []).append(i)
        out[family] = {
            key: np.asarray(groups[key], dtype=np.intp) for key in sorted(groups, key=_key_order)
        }
    return out


def _key_order(key: str) -> tuple[int, float, str]:
    try:
        number = float(key)
    except ValueError:
        return (1, 0.0, key)
    return (0, number, key) if math.isfinite(number) else (1, 0.0, key)


def _numbers(values: Sequence[float], name: str) -> Any:
    np, _ = _backend()

    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"{name}: expected numbers ({exc})") from exc
    if array.ndim != 1:
        raise BadInputError(f"{name}: expected one value per row, got shape {array.shape}")
    if not bool(np.all(np.isfinite(array))):
        raise BadInputError(f"{name}: NaN or infinite values are not allowed")
    return array


def _labels(values: Sequence[object], name: str) -> Any:
    np, _ = _backend()

    array = np.asarray(values.tolist() if hasattr(values, "tolist") else list(values))
    if array.ndim != 1:
        raise BadInputError(f"{name}: expected one label per row, got shape {array.shape}")
    if array.dtype.kind == "f" and not bool(np.all(np.isfinite(array))):
        raise BadInputError(f"{name}: NaN or infinite labels are not allowed")
    if array.dtype.kind not in "biufU":
        raise BadInputError(f"{name}: labels must be all numbers or all strings")
    return array


def _same_length(n: int, **others: int) -> None:
    for name, length in others.items():
        if length != n:
            raise BadInputError(f"y_true has {n} rows but y_{name} has {length}")
