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
validating a document needs neither.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from mlspec_attest.errors import BadInputError, MalformedDocumentError, UsageError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Rows = NDArray[np.intp]

METRICS_SCHEMA = "https://mlspec-attest.dev/metrics/v1"
TASKS = ("regression", "classification")
DEFAULT_CONFIDENCE = 0.95
REGRESSION_METRICS = ("count", "mae", "mse", "rmse", "r2", "max_error", "median_absolute_error")
CLASSIFICATION_METRICS = ("count", "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
# An interval estimated from fewer than half of the resamples says more about which
# resamples happened to be defined than about the metric: it is omitted instead.
_MIN_DEFINED_SHARE = 0.5
_INTEGRAL_DECIMAL = re.compile(r"[+-]?[0-9]+\.0+")

Computed = tuple[dict[str, float], dict[str, str]]


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
    np, skm = _backend()
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
            remedy="name the positive class (positive_label= / --positive-label)",
        )
    score = None if y_score is None else _numbers(y_score, "y_score")
    if score is not None:
        _same_length(len(truth), score=len(score))
        if not binary:
            raise BadInputError(
                f"y_score is supported for binary classification only ({len(labels)} labels found)"
            )
    probabilities = score is not None and bool(np.all((score >= 0) & (score <= 1)))
    t_pos = np.fromiter((v == positive_label for v in truth.tolist()), np.int8, len(truth))
    p_pos = np.fromiter((v == positive_label for v in pred.tolist()), np.int8, len(pred))

    def compute(rows: Rows) -> Computed:
        values: dict[str, float] = {
            "count": len(rows),
            "accuracy": float(skm.accuracy_score(truth[rows], pred[rows])),
        }
        omitted: dict[str, str] = {}
        if not binary:
            prf = skm.precision_recall_fscore_support(
                truth[rows], pred[rows], average="macro", zero_division=0.0
            )
            values.update(precision=float(prf[0]), recall=float(prf[1]), f1=float(prf[2]))
            return values, omitted
        t, p = t_pos[rows], p_pos[rows]
        predicted, actual = int(p.sum()), int(t.sum())
        prf = skm.precision_recall_fscore_support(
            t, p, average="binary", pos_label=1, zero_division=0.0
        )
        positive = f"the positive label {positive_label!r}"
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
            s = score[rows]
            if 0 < actual < len(rows):
                values["roc_auc"] = float(skm.roc_auc_score(t, s))
            else:
                omitted["roc_auc"] = "undefined: only one class among the true labels"
            if probabilities:
                values["log_loss"] = float(skm.log_loss(t, s, labels=[0, 1]))
            else:
                omitted["log_loss"] = "undefined: the scores are not probabilities in [0, 1]"
        return values, omitted

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
    """The metrics document of a CSV file with a header row (read with :mod:`csv`).

    Regression cells must be finite numbers. Classification labels and slice
    cells are text, with integral decimals normalized (``"2.0"`` -> ``"2"``) as
    :func:`slice_key` does; the default positive label is ``"1"``.
    """
    if task not in TASKS:
        raise UsageError(f"unknown task {task!r}", remedy=f"use one of {', '.join(TASKS)}")
    if task == "regression" and (score is not None or positive_label is not None):
        raise UsageError("a score column and a positive label apply to classification only")
    if len(set(slices)) != len(slices):
        raise UsageError(f"a slice column is named twice: {list(slices)}")
    wanted = [label, prediction, *([score] if score else []), *slices]
    columns, lines = _read_columns(path, wanted)
    where = str(path)
    slice_values: dict[str, Sequence[object]] = {
        name: [_text_key(c) for c in columns[name]] for name in slices
    }
    if task == "regression":
        return regression_metrics(
            _parse_numbers(columns[label], label, lines, where),
            _parse_numbers(columns[prediction], prediction, lines, where),
            slices=slice_values,
            confidence=confidence,
            bootstrap=bootstrap,
            seed=seed,
        )
    return classification_metrics(
        [_text_key(c) for c in columns[label]],
        [_text_key(c) for c in columns[prediction]],
        y_score=None if score is None else _parse_numbers(columns[score], score, lines, where),
        slices=slice_values,
        positive_label=_text_key("1" if positive_label is None else positive_label),
        confidence=confidence,
        bootstrap=bootstrap,
        seed=seed,
    )


def validate_metrics_document(doc: Any, *, what: str) -> None:
    """Check ``doc`` against metrics-v1.schema.json; raise listing every problem.

    Beyond the schema: numbers must be finite, counts must be JSON integers
    (not ``5.0``) and every interval needs ``low <= high``.
    """
    from mlspec_attest.formats.schemas import schema_errors

    problems = [f"{_pointer(p)}: {_clip(m)}" for p, m in schema_errors("metrics-v1", doc)]
    problems += _value_problems(doc)
    if problems:
        raise MalformedDocumentError(
            f"{what}: not a valid metrics document ({len(problems)} problem(s))\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


# ------------------------------------------------------------------ computation
def _backend() -> tuple[Any, Any]:
    from mlspec_attest.errors import require

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
    import numpy as np
    import sklearn

    level = _check_resampling(confidence, bootstrap, seed)
    if n == 0:
        raise BadInputError(f"no rows to compute {task} metrics from")
    groups = _slice_rows(slices or {}, n)
    # The inputs are checked above (finite, 1-D, equal lengths); skipping
    # scikit-learn's own re-checks halves the cost of each bootstrap resample.
    fast = sklearn.config_context(assume_finite=True, skip_parameter_validation=True)
    try:
        with fast:
            overall = _entry(np.arange(n), compute, order, level, bootstrap, seed)
            per_slice = {
                family: {
                    key: _entry(rows, compute, order, level, bootstrap, seed)
                    for key, rows in members.items()
                }
                for family, members in groups.items()
            }
    except (ValueError, TypeError) as exc:  # scikit-learn refusing the data
        raise BadInputError(f"cannot compute {task} metrics: {exc}") from exc
    doc: dict[str, Any] = {"schemaVersion": METRICS_SCHEMA, "metrics": overall["metrics"]}
    for extra in ("confidenceIntervals", "omitted"):
        if extra in overall:
            doc[extra] = overall[extra]
    doc["slices"] = per_slice
    return doc


def _entry(
    rows: Rows,
    compute: Callable[[Rows], Computed],
    order: tuple[str, ...],
    level: float,
    bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    values, omitted = _finite(*compute(rows))
    entry: dict[str, Any] = {"count": len(rows), "metrics": _ordered(values, order)}
    if bootstrap:
        intervals = _bootstrap(rows, compute, values, level, bootstrap, seed, omitted)
        if intervals:
            entry["confidenceIntervals"] = _ordered(intervals, order)
    if omitted:
        entry["omitted"] = _ordered(omitted, order)
    return entry


def _bootstrap(
    rows: Rows,
    compute: Callable[[Rows], Computed],
    point: dict[str, float],
    level: float,
    resamples: int,
    seed: int,
    omitted: dict[str, str],
) -> dict[str, dict[str, Any]]:
    """Percentile bootstrap: ``resamples`` draws of len(rows) rows with replacement.

    Every entry gets its own ``RandomState(seed)``, so an interval depends only
    on the entry's rows, the seed and the number of resamples.
    """
    import numpy as np

    rng = np.random.RandomState(seed)  # the legacy generator: stable across numpy versions
    draws: dict[str, list[float]] = {name: [] for name in point if name != "count"}
    for _ in range(resamples):
        values, _ = _finite(*compute(rows[rng.randint(0, len(rows), size=len(rows))]))
        for name, series in draws.items():
            if name in values:
                series.append(values[name])
    tail = (1.0 - level) / 2.0 * 100.0
    out: dict[str, dict[str, Any]] = {}
    for name, series in draws.items():
        if len(series) < max(1, math.ceil(resamples * _MIN_DEFINED_SHARE)):
            omitted[f"confidenceIntervals/{name}"] = (
                f"{name} is undefined in {resamples - len(series)} of {resamples} resamples"
            )
            continue
        low, high = np.percentile(np.asarray(series), [tail, 100.0 - tail])
        interval: dict[str, Any] = {
            "low": float(low),
            "high": float(high),
            "level": level,
            "method": "bootstrap",
            "resamples": resamples,
        }
        if len(series) < resamples:
            interval["skipped"] = resamples - len(series)
        out[name] = interval
    return out


def _finite(values: dict[str, float], omitted: dict[str, str]) -> Computed:
    """Move any non-finite result (overflow) from ``values`` to ``omitted``."""
    for name in [k for k, v in values.items() if not math.isfinite(v)]:
        del values[name]
        omitted[name] = "not finite (numeric overflow)"
    return values, omitted


def _ordered(mapping: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    rank = {name: i for i, name in enumerate(order)}
    return dict(sorted(mapping.items(), key=lambda kv: (rank.get(kv[0], len(order)), kv[0])))


def _check_resampling(confidence: float | None, bootstrap: int, seed: int) -> float:
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise UsageError(f"bootstrap must be a non-negative integer, not {bootstrap!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise UsageError(f"seed must be an integer in [0, 2**32), not {seed!r}")
    if confidence is None:
        return DEFAULT_CONFIDENCE
    if not bootstrap:
        raise UsageError(
            "a confidence level needs bootstrap resamples",
            remedy="pass bootstrap=N / --bootstrap N (e.g. 1000)",
        )
    if not isinstance(confidence, int | float) or not 0.0 < confidence < 1.0:
        raise UsageError(f"confidence must be strictly between 0 and 1, not {confidence!r}")
    return float(confidence)


def _slice_rows(slices: Mapping[str, Sequence[object]], n: int) -> dict[str, dict[str, Rows]]:
    import numpy as np

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
    import numpy as np

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
    import numpy as np

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


# ------------------------------------------------------------------ CSV
def _text_key(cell: str) -> str:
    """CSV text as a label or slice key: ``"2.0"`` -> ``"2"`` (what a float column writes)."""
    if _INTEGRAL_DECIMAL.fullmatch(cell):
        return str(int(cell.split(".", 1)[0]))
    return cell


def _read_columns(path: Path, wanted: Sequence[str]) -> tuple[dict[str, list[str]], list[int]]:
    """The ``wanted`` columns of a CSV file, and the line number of each data row."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            header = next(reader, None)
            if header is None:
                raise BadInputError(f"{path}: empty file, expected a header row")
            index = _column_index(path, header, wanted)
            columns: dict[str, list[str]] = {name: [] for name in wanted}
            lines: list[int] = []
            for row in reader:
                if not row:
                    continue  # blank line
                if len(row) != len(header):
                    raise BadInputError(
                        f"{path} line {reader.line_num}: {len(row)} fields, "
                        f"the header has {len(header)}"
                    )
                lines.append(reader.line_num)
                for name, i in index.items():
                    columns[name].append(row[i])
    except FileNotFoundError as exc:
        raise BadInputError(f"{path}: file not found") from exc
    except IsADirectoryError as exc:
        raise BadInputError(f"{path}: is a directory, expected a CSV file") from exc
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise BadInputError(f"{path}: malformed CSV ({exc})") from exc
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({exc.strerror})") from exc
    if not lines:
        raise BadInputError(f"{path}: no data rows after the header")
    return columns, lines


def _column_index(path: Path, header: list[str], wanted: Sequence[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for name in dict.fromkeys(wanted):
        positions = [i for i, column in enumerate(header) if column == name]
        if not positions:
            raise BadInputError(
                f"{path}: no column {name!r}", remedy=f"the columns are: {', '.join(header)}"
            )
        if len(positions) > 1:
            raise BadInputError(f"{path}: column {name!r} appears {len(positions)} times")
        index[name] = positions[0]
    return index


def _parse_numbers(cells: list[str], column: str, lines: list[int], where: str) -> list[float]:
    out: list[float] = []
    for cell, line in zip(cells, lines, strict=True):
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise BadInputError(
                f"{where} line {line}, column {column!r}: {cell!r} is not a finite number"
            )
        out.append(value)
    return out


# ------------------------------------------------------------------ validation
def _pointer(path: Sequence[str | int]) -> str:
    return "".join(f"/{p}" for p in path) or "(root)"


def _clip(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _value_problems(doc: Any) -> list[str]:
    problems = [f"{p}: {v!r} is not a finite number" for p, v in _non_finite(doc, "")]
    if not isinstance(doc, dict):
        return problems
    entries: list[tuple[str, Any]] = [("", doc)]
    slices = doc.get("slices")
    if isinstance(slices, dict):
        for family, members in slices.items():
            if isinstance(members, dict):
                entries += [(f"/slices/{family}/{key}", e) for key, e in members.items()]
    for where, entry in entries:
        if not isinstance(entry, dict):
            continue
        if where and isinstance(entry.get("count"), float):
            problems.append(f"{where}/count: {entry['count']!r} is not an integer")
        intervals = entry.get("confidenceIntervals")
        if not isinstance(intervals, dict):
            continue
        for name, ci in intervals.items():
            if not isinstance(ci, dict):
                continue
            at = f"{where}/confidenceIntervals/{name}"
            for field in ("resamples", "skipped"):
                if isinstance(ci.get(field), float):
                    problems.append(f"{at}/{field}: {ci[field]!r} is not an integer")
            low, high = ci.get("low"), ci.get("high")
            if _is_number(low) and _is_number(high) and low > high:
                problems.append(f"{at}: low {low!r} is above high {high!r}")
    return problems


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _non_finite(value: Any, where: str) -> list[tuple[str, float]]:
    if isinstance(value, float) and not math.isfinite(value):
        return [(where or "(root)", value)]
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in _non_finite(v, f"{where}/{k}")]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in _non_finite(v, f"{where}/{i}")]
    return []
