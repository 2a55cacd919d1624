"""Metrics from predictions (``mlspec_attest.evidence.metrics``) and ``mlspec-attest metrics``.

Every value is checked against scikit-learn's own metric functions on real data
sets that scikit-learn ships (diabetes, breast cancer, iris) and real models.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")

from click.testing import CliRunner  # noqa: E402
from sklearn import metrics as skm  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from mlspec_attest.attestation.stage import StageRecord, sign_stage  # noqa: E402
from mlspec_attest.cli import main as cli_main  # noqa: E402
from mlspec_attest.cli.metrics_cmd import metrics as metrics_group  # noqa: E402
from mlspec_attest.errors import (  # noqa: E402
    BackendError,
    BadInputError,
    ExitCode,
    MalformedDocumentError,
    UsageError,
)
from mlspec_attest.evidence.metrics import (  # noqa: E402
    classification_metrics,
    metrics_from_csv,
    regression_metrics,
    slice_key,
)
from mlspec_attest.evidence.metrics_document import METRICS_SCHEMA  # noqa: E402
from mlspec_attest.evidence.metrics_file import (  # noqa: E402
    load_metrics_file,
    validate_metrics_document,
)
from mlspec_attest.formats.jsonio import load_file  # noqa: E402
from mlspec_attest.store.ledger import AttestationStore  # noqa: E402

from .support import KeyPair  # noqa: E402

# An undefined metric must be left out, never computed with a warning and a NaN.
pytestmark = [
    pytest.mark.filterwarnings("error::sklearn.exceptions.UndefinedMetricWarning"),
    pytest.mark.filterwarnings("error::RuntimeWarning"),
]


@dataclass(frozen=True)
class Regression:
    y: Any
    pred: Any
    sex: Any


@dataclass(frozen=True)
class Binary:
    y: Any
    pred: Any
    proba: Any
    large: Any  # 1 where mean radius > 15, else 0


@pytest.fixture(scope="module")
def diabetes() -> Regression:
    """A linear model's hold-out predictions; column 1 is sex, coded 1.0 / 2.0."""
    x, y = load_diabetes(return_X_y=True, scaled=False)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.4, random_state=0)
    model = LinearRegression().fit(x_train, y_train)
    return Regression(y_test, model.predict(x_test), x_test[:, 1])


@pytest.fixture(scope="module")
def cancer() -> Binary:
    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.4, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x_train, y_train)
    return Binary(
        y_test,
        model.predict(x_test),
        model.predict_proba(x_test)[:, 1],
        (x_test[:, 0] > 15).astype(int),
    )


def expected_regression(y: Any, pred: Any) -> dict[str, Any]:
    return {
        "count": len(y),
        "mae": skm.mean_absolute_error(y, pred),
        "mse": skm.mean_squared_error(y, pred),
        "rmse": skm.root_mean_squared_error(y, pred),
        "r2": skm.r2_score(y, pred),
        "max_error": skm.max_error(y, pred),
        "median_absolute_error": skm.median_absolute_error(y, pred),
    }


def assert_plain_json(value: Any) -> None:
    """Only Python dict/list/str/int/float/bool, and every float finite."""
    if isinstance(value, dict):
        assert all(type(k) is str for k in value)
        for v in value.values():
            assert_plain_json(v)
    elif isinstance(value, list):
        for v in value:
            assert_plain_json(v)
    else:
        assert type(value) in (str, int, float, bool), type(value)
        if type(value) is float:
            assert math.isfinite(value)


# ------------------------------------------------------------- slice keys
@pytest.mark.parametrize(
    ("value", "key"),
    [
        (1.0, "1"),
        (2.0, "2"),
        (-0.0, "0"),
        (0.5, "0.5"),
        (3, "3"),
        ("female", "female"),
        (True, "True"),
        (1e300, "1e+300"),
    ],
)
def test_slice_key(value: object, key: str) -> None:
    assert slice_key(value) == key


def test_slice_key_of_numpy_scalars() -> None:
    assert slice_key(np.float64(2.0)) == "2"
    assert slice_key(np.int64(7)) == "7"
    assert slice_key(np.str_("a")) == "a"
    assert slice_key(np.bool_(False)) == "False"


# ------------------------------------------------------------- regression
def test_regression_matches_sklearn_overall_and_per_slice(diabetes: Regression) -> None:
    doc = regression_metrics(diabetes.y, diabetes.pred, slices={"sex": diabetes.sex})
    assert doc["schemaVersion"] == METRICS_SCHEMA
    assert doc["metrics"] == expected_regression(diabetes.y, diabetes.pred)
    assert list(doc["slices"]) == ["sex"]
    assert list(doc["slices"]["sex"]) == ["1", "2"]  # not "1.0", "2.0"
    for key, code in (("1", 1.0), ("2", 2.0)):
        mask = diabetes.sex == code
        entry = doc["slices"]["sex"][key]
        assert entry["count"] == int(mask.sum()) > 50
        assert entry["metrics"] == expected_regression(diabetes.y[mask], diabetes.pred[mask])
        assert set(entry) == {"count", "metrics"}
    counts = [e["count"] for e in doc["slices"]["sex"].values()]
    assert sum(counts) == doc["metrics"]["count"] == len(diabetes.y)
    assert "confidenceIntervals" not in doc and "omitted" not in doc
    assert_plain_json(doc)
    validate_metrics_document(doc, what="diabetes")


def test_regression_accepts_plain_lists() -> None:
    doc = regression_metrics([1.0, 2.0, 4.0], [1.5, 2.0, 3.0])
    assert doc["metrics"] == expected_regression([1.0, 2.0, 4.0], [1.5, 2.0, 3.0])
    assert doc["slices"] == {}


def test_r2_omitted_where_undefined() -> None:
    # slice "a" has a constant target, slice "b" a single row: R² is undefined for both
    doc = regression_metrics(
        [3.0, 3.0, 5.0, 1.0],
        [2.5, 3.5, 4.0, 1.5],
        slices={"group": ["a", "a", "b", "c"]},
    )
    assert "r2" in doc["metrics"]
    a, b = doc["slices"]["group"]["a"], doc["slices"]["group"]["b"]
    assert "r2" not in a["metrics"] and "zero variance" in a["omitted"]["r2"]
    assert "r2" not in b["metrics"] and "fewer than two" in b["omitted"]["r2"]
    assert a["metrics"]["mae"] == 0.5
    validate_metrics_document(doc, what="r2")


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        ([1.0, math.nan], [1.0, 2.0], "NaN or infinite"),
        ([1.0, 2.0], [1.0, math.inf], "NaN or infinite"),
        ([1.0, 2.0], [1.0], "has 2 rows but y_pred has 1"),
        ([], [], "no rows"),
        (["a", "b"], [1.0, 2.0], "expected numbers"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "one value per row"),
    ],
)
def test_regression_refuses_bad_input(y_true: Any, y_pred: Any, message: str) -> None:
    with pytest.raises(BadInputError, match=message) as info:
        regression_metrics(y_true, y_pred)
    assert info.value.exit_code == ExitCode.BAD_INPUT


def test_slice_length_must_match() -> None:
    with pytest.raises(BadInputError, match="slice 'sex' has 1 values for 2 rows"):
        regression_metrics([1.0, 2.0], [1.0, 2.0], slices={"sex": [1]})


# ------------------------------------------------------------- classification
def test_binary_classification_matches_sklearn(cancer: Binary) -> None:
    doc = classification_metrics(
        cancer.y, cancer.pred, y_score=cancer.proba, slices={"large": cancer.large}
    )

    def expected(mask: Any) -> dict[str, Any]:
        y, pred, proba = cancer.y[mask], cancer.pred[mask], cancer.proba[mask]
        return {
            "count": int(mask.sum()),
            "accuracy": skm.accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred),
            "recall": skm.recall_score(y, pred),
            "f1": skm.f1_score(y, pred),
            "roc_auc": skm.roc_auc_score(y, proba),
            "log_loss": skm.log_loss(y, proba),
        }

    assert doc["metrics"] == expected(np.ones(len(cancer.y), dtype=bool))
    for key in ("0", "1"):
        entry = doc["slices"]["large"][key]
        mask = cancer.large == int(key)
        assert entry["count"] == int(mask.sum())
        assert entry["metrics"] == pytest.approx(expected(mask), rel=1e-12, abs=1e-15)
    assert 0.9 < doc["metrics"]["roc_auc"] <= 1.0
    assert_plain_json(doc)
    validate_metrics_document(doc, what="cancer")


def test_positive_label_selects_the_class(cancer: Binary) -> None:
    doc = classification_metrics(cancer.y, cancer.pred, positive_label=0, y_score=1 - cancer.proba)
    assert doc["metrics"]["precision"] == skm.precision_score(cancer.y, cancer.pred, pos_label=0)
    assert doc["metrics"]["recall"] == skm.recall_score(cancer.y, cancer.pred, pos_label=0)
    assert doc["metrics"]["roc_auc"] == pytest.approx(
        skm.roc_auc_score(cancer.y == 0, 1 - cancer.proba), rel=1e-12
    )


def test_one_class_slice_omits_auc_with_a_reason(cancer: Binary) -> None:
    # Slicing by the true label leaves one class per slice: AUC is undefined there.
    doc = classification_metrics(
        cancer.y, cancer.pred, y_score=cancer.proba, slices={"truth": cancer.y}
    )
    assert "roc_auc" in doc["metrics"]
    for key in ("0", "1"):
        entry = doc["slices"]["truth"][key]
        assert "roc_auc" not in entry["metrics"]
        assert entry["omitted"]["roc_auc"] == "undefined: only one class among the true labels"
        # log loss stays defined on one class; accuracy is the recall of that class
        assert entry["metrics"]["log_loss"] == pytest.approx(
            skm.log_loss(
                cancer.y[cancer.y == int(key)], cancer.proba[cancer.y == int(key)], labels=[0, 1]
            ),
            rel=1e-12,
        )
    negatives = doc["slices"]["truth"]["0"]
    assert "recall" not in negatives["metrics"]
    assert "no true label" in negatives["omitted"]["recall"]
    assert negatives["metrics"]["f1"] == 0.0  # 2TP/(2TP+FP+FN) with TP=0, FP>0
    validate_metrics_document(doc, what="truth slices")
    assert "NaN" not in json.dumps(doc)


def test_precision_omitted_without_positive_predictions() -> None:
    doc = classification_metrics([1, 0, 1, 0], [0, 0, 0, 0])
    assert doc["metrics"] == {"count": 4, "accuracy": 0.5, "recall": 0.0, "f1": 0.0}
    assert set(doc["omitted"]) == {"precision"}
    only_negative = classification_metrics([0, 0], [0, 0])
    assert set(only_negative["omitted"]) == {"precision", "recall", "f1"}
    assert only_negative["metrics"]["accuracy"] == 1.0


def test_string_labels_and_scores_that_are_not_probabilities() -> None:
    y = ["spam", "ham", "spam", "ham", "ham"]
    pred = ["spam", "ham", "ham", "ham", "spam"]
    margin = [2.5, -1.0, 0.3, -0.2, 0.1]  # a decision function, not probabilities
    doc = classification_metrics(y, pred, y_score=margin, positive_label="spam")
    assert doc["metrics"]["precision"] == skm.precision_score(y, pred, pos_label="spam")
    assert doc["metrics"]["roc_auc"] == skm.roc_auc_score([t == "spam" for t in y], margin)
    assert "log_loss" not in doc["metrics"]
    assert "not probabilities" in doc["omitted"]["log_loss"]


def test_multiclass_uses_macro_averages() -> None:
    x, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.5, random_state=1)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x_train, y_train)
    pred = model.predict(x_test)
    petal = np.where(x_test[:, 2] > 4.0, "long", "short")
    doc = classification_metrics(y_test, pred, slices={"petal": petal})
    assert doc["metrics"] == {
        "count": len(y_test),
        "accuracy": skm.accuracy_score(y_test, pred),
        "precision": skm.precision_score(y_test, pred, average="macro"),
        "recall": skm.recall_score(y_test, pred, average="macro"),
        "f1": skm.f1_score(y_test, pred, average="macro"),
    }
    for key, entry in doc["slices"]["petal"].items():
        mask = petal == key
        assert entry["metrics"]["f1"] == skm.f1_score(
            y_test[mask], pred[mask], average="macro", zero_division=0.0
        )
    with pytest.raises(BadInputError, match="binary classification only"):
        classification_metrics(y_test, pred, y_score=np.full(len(y_test), 0.5))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y_true": ["no", "yes"], "y_pred": ["no", "no"]}, "positive label 1 is not one of"),
        ({"y_true": [0, 1], "y_pred": ["0", "1"]}, "mix numbers and strings"),
        ({"y_true": [0, None], "y_pred": [0, 1]}, "all numbers or all strings"),
        ({"y_true": [0, 1], "y_pred": [0, 1], "y_score": [0.5]}, "y_score has 1"),
        ({"y_true": [0.5, 1.5, 2.5], "y_pred": [0.5, 1.5, 2.5]}, "cannot compute classification"),
    ],
)
def test_classification_refuses_bad_input(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        classification_metrics(**kwargs)


# ------------------------------------------------------------- bootstrap
def test_bootstrap_intervals_are_deterministic_and_contain_the_estimate(
    diabetes: Regression,
) -> None:
    def run(seed: int) -> dict[str, Any]:
        return regression_metrics(
            diabetes.y, diabetes.pred, slices={"sex": diabetes.sex}, bootstrap=200, seed=seed
        )

    first, again, other = run(7), run(7), run(8)
    assert first == again
    assert first["confidenceIntervals"] != other["confidenceIntervals"]
    assert first["metrics"] == other["metrics"]  # resampling never changes the estimate
    entries = [first, *first["slices"]["sex"].values()]
    for entry in entries:
        intervals = entry["confidenceIntervals"]
        assert set(intervals) == set(entry["metrics"]) - {"count"}
        for name in ("mae", "rmse", "mse", "r2", "median_absolute_error"):
            ci = intervals[name]
            assert ci["low"] <= entry["metrics"][name] <= ci["high"], name
            assert ci["level"] == 0.95
            assert ci["method"] == "bootstrap"
            assert ci["resamples"] == 200
            assert "skipped" not in ci
        # the largest error over all rows bounds every resample's largest error
        assert intervals["max_error"]["high"] <= entry["metrics"]["max_error"]
    assert_plain_json(first)
    validate_metrics_document(first, what="bootstrap")


def test_bootstrap_is_the_percentile_method(diabetes: Regression) -> None:
    doc = regression_metrics(diabetes.y, diabetes.pred, bootstrap=50, seed=3, confidence=0.9)
    rng = np.random.RandomState(3)
    n = len(diabetes.y)
    maes = []
    for _ in range(50):
        rows = rng.randint(0, n, size=n)
        maes.append(skm.mean_absolute_error(diabetes.y[rows], diabetes.pred[rows]))
    low, high = np.percentile(maes, [5.0, 95.0])
    assert doc["confidenceIntervals"]["mae"] == {
        "low": low,
        "high": high,
        "level": 0.9,
        "method": "bootstrap",
        "resamples": 50,
    }


def test_higher_confidence_gives_wider_intervals(cancer: Binary) -> None:
    def width(level: float) -> float:
        doc = classification_metrics(
            cancer.y, cancer.pred, y_score=cancer.proba, bootstrap=100, confidence=level
        )
        ci = doc["confidenceIntervals"]["roc_auc"]
        assert ci["low"] <= doc["metrics"]["roc_auc"] <= ci["high"]
        return float(ci["high"] - ci["low"])

    assert width(0.5) < width(0.99)


def test_bootstrap_skips_resamples_where_a_metric_is_undefined() -> None:
    # One positive row in 40: about a third of the resamples miss it, and recall
    # (and AUC) are undefined there. Those resamples are skipped, and counted.
    y = [1] + [0] * 39
    pred = [1] + [0] * 29 + [1] * 10
    score = [0.9] + [i / 100 for i in range(39)]
    doc = classification_metrics(y, pred, y_score=score, bootstrap=100, seed=0)
    assert doc["confidenceIntervals"]["accuracy"]["resamples"] == 100
    assert "skipped" not in doc["confidenceIntervals"]["accuracy"]
    rng = np.random.RandomState(0)
    missing = sum(0 not in rng.randint(0, 40, size=40) for _ in range(100))
    assert 10 < missing < 50
    for name in ("recall", "roc_auc"):
        assert doc["confidenceIntervals"][name]["skipped"] == missing
        assert doc["confidenceIntervals"][name]["resamples"] == 100
    validate_metrics_document(doc, what="sparse positives")


def test_interval_omitted_when_most_resamples_are_undefined() -> None:
    # Two rows, one per class: AUC is defined only in resamples that draw both
    # rows (half of them on average). Below half, the interval is omitted.
    def undefined(seed: int) -> int:
        rng = np.random.RandomState(seed)
        return sum(len(set(rng.randint(0, 2, size=2).tolist())) < 2 for _ in range(101))

    counts = {seed: undefined(seed) for seed in range(30)}
    few = next(seed for seed, k in counts.items() if k < 50)
    many = next(seed for seed, k in counts.items() if k > 51)
    kept = classification_metrics([1, 0], [1, 0], y_score=[0.8, 0.2], bootstrap=101, seed=few)
    assert kept["confidenceIntervals"]["roc_auc"]["skipped"] == counts[few]
    assert "omitted" not in kept
    dropped = classification_metrics([1, 0], [1, 0], y_score=[0.8, 0.2], bootstrap=101, seed=many)
    assert dropped["metrics"]["roc_auc"] == 1.0
    assert "roc_auc" not in dropped["confidenceIntervals"]
    assert dropped["omitted"] == {
        "confidenceIntervals/roc_auc": f"roc_auc is undefined in {counts[many]} of 101 resamples"
    }
    validate_metrics_document(dropped, what="two rows")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": 0.95}, "needs bootstrap"),
        ({"bootstrap": 10, "confidence": 1.0}, "strictly between 0 and 1"),
        ({"bootstrap": -1}, "non-negative"),
        ({"bootstrap": 10, "seed": -1}, "seed"),
    ],
)
def test_resampling_options_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        regression_metrics([1.0, 2.0], [1.0, 2.0], **kwargs)


# ------------------------------------------------------------- CSV
def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow([repr(v) if isinstance(v, float) else v for v in row])
    return path


@pytest.fixture
def diabetes_csv(tmp_path: Path, diabetes: Regression) -> Path:
    rows = zip(diabetes.y.tolist(), diabetes.pred.tolist(), diabetes.sex.tolist(), strict=True)
    return write_csv(tmp_path / "predictions.csv", ["target", "predicted", "sex"], list(rows))


def test_csv_regression_round_trip(diabetes_csv: Path, diabetes: Regression) -> None:
    assert "1.0" in diabetes_csv.read_text()  # the CSV holds the float codes
    from_csv = metrics_from_csv(
        diabetes_csv, task="regression", label="target", prediction="predicted", slices=["sex"]
    )
    direct = regression_metrics(diabetes.y, diabetes.pred, slices={"sex": diabetes.sex})
    assert from_csv == direct
    assert list(from_csv["slices"]["sex"]) == ["1", "2"]


def test_csv_classification_round_trip(tmp_path: Path, cancer: Binary) -> None:
    rows = zip(
        cancer.y.tolist(),
        cancer.pred.tolist(),
        cancer.proba.tolist(),
        cancer.large.tolist(),
        strict=True,
    )
    path = write_csv(tmp_path / "p.csv", ["y", "yhat", "p", "large"], list(rows))
    from_csv = metrics_from_csv(
        path,
        task="classification",
        label="y",
        prediction="yhat",
        score="p",
        slices=["large"],
        bootstrap=20,
        seed=5,
    )
    direct = classification_metrics(
        cancer.y,
        cancer.pred,
        y_score=cancer.proba,
        slices={"large": cancer.large},
        bootstrap=20,
        seed=5,
    )
    assert from_csv == direct


def test_csv_labels_normalize_integral_decimals(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "p.csv",
        ["label", "pred", "site"],
        [["1.0", "1", "007"], ["0.0", "1", "007"], ["1", "0", "2.0"]],
    )
    doc = metrics_from_csv(
        path, task="classification", label="label", prediction="pred", slices=["site"]
    )
    assert doc["metrics"]["precision"] == 0.5  # "1.0" and "1" are the same label
    assert list(doc["slices"]["site"]) == ["2", "007"]
    yes_no = write_csv(tmp_path / "yn.csv", ["t", "p"], [["yes", "yes"], ["no", "yes"]])
    with pytest.raises(BadInputError, match="positive label '1'"):
        metrics_from_csv(yes_no, task="classification", label="t", prediction="p")
    doc = metrics_from_csv(
        yes_no, task="classification", label="t", prediction="p", positive_label="yes"
    )
    assert doc["metrics"]["precision"] == 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("y,p\n", "no data rows"),
        ("y,p\n1,2\n3\n", "bad.csv:3: 1 fields, the header has 2"),
        ("y,p\n1,2\nx,2\n", "line 3, column 'y': 'x' is not a finite number"),
        ("y,p\n1,nan\n", "line 2, column 'p': a missing value is not a finite number"),
        ("y,q\n1,2\n", "no column 'p'"),
        ("y,p,p\n1,2,3\n", "column 'p' appears twice"),
        ('y,p\n"1,2\n', "malformed CSV"),
    ],
)
def test_csv_refuses_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(BadInputError, match=message):
        metrics_from_csv(path, task="regression", label="y", prediction="p")


def test_csv_errors_name_the_problem(tmp_path: Path, diabetes_csv: Path) -> None:
    with pytest.raises(BadInputError, match="no such file"):
        metrics_from_csv(tmp_path / "nope.csv", task="regression", label="y", prediction="p")
    with pytest.raises(BadInputError) as info:
        metrics_from_csv(diabetes_csv, task="regression", label="y", prediction="predicted")
    assert info.value.remedy == "the columns are: target, predicted, sex"
    with pytest.raises(UsageError, match="classification only"):
        metrics_from_csv(
            diabetes_csv, task="regression", label="target", prediction="predicted", score="sex"
        )
    with pytest.raises(UsageError, match="unknown task"):
        metrics_from_csv(diabetes_csv, task="ranking", label="target", prediction="predicted")


def test_missing_scikit_learn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # what an absent package looks like
    monkeypatch.setitem(sys.modules, "sklearn.metrics", None)
    with pytest.raises(BackendError) as info:
        regression_metrics([1.0], [1.0])
    assert info.value.message == "computing metrics needs scikit-learn, which is not installed"
    assert info.value.remedy == "pip install 'mlspec-attest[metrics]'"


# ------------------------------------------------------------- validation
def valid_doc() -> dict[str, Any]:
    return {
        "schemaVersion": METRICS_SCHEMA,
        "metrics": {"mae": 1.5, "count": 10},
        "confidenceIntervals": {
            "mae": {"low": 1.0, "high": 2.0, "level": 0.95, "method": "bootstrap", "resamples": 9}
        },
        "slices": {
            "sex": {
                "1": {"count": 4, "metrics": {"mae": 1.0}, "omitted": {"r2": "undefined"}},
                "2": {"count": 6, "metrics": {}},
            }
        },
    }


def test_valid_document_passes() -> None:
    validate_metrics_document(valid_doc(), what="doc")


def mutate(path: str, value: Any) -> dict[str, Any]:
    doc = valid_doc()
    *parents, last = path.split("/")
    target: Any = doc
    for part in parents:
        target = target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        (mutate("metrics/mae", math.nan), "/metrics/mae: nan is not a finite number"),
        (mutate("metrics/mae", math.inf), "/metrics/mae: inf is not a finite number"),
        (
            mutate("slices/sex/1/metrics/mae", -math.inf),
            "/slices/sex/1/metrics/mae: -inf is not a finite number",
        ),
        (
            mutate("confidenceIntervals/mae/low", math.nan),
            "/confidenceIntervals/mae/low: nan is not a finite number",
        ),
        (mutate("slices/sex/1/count", KeyError), "'count' is a required property"),
        (mutate("slices/sex/1/count", "4"), "/slices/sex/1/count: '4' is not of type 'integer'"),
        (mutate("slices/sex/1/count", 4.0), "/slices/sex/1/count: 4.0 is not an integer"),
        (mutate("slices/sex/1/count", -1), "-1 is less than the minimum of 0"),
        (mutate("metrics/mae", "1.5"), "/metrics/mae: '1.5' is not of type 'number'"),
        (mutate("metrics/mae", True), "/metrics/mae: True is not of type 'number'"),
        (mutate("metrics", [1.0]), "/metrics: [1.0] is not of type 'object'"),
        (mutate("schemaVersion", "v0"), "/schemaVersion"),
        (mutate("schemaVersion", KeyError), "'schemaVersion' is a required property"),
        (mutate("extra", 1), "/extra: unknown field 'extra'"),
        (mutate("slices/sex/1/extra", 1), "/slices/sex/1/extra: unknown field 'extra'"),
        (mutate("confidenceIntervals/mae/level", 95), "/confidenceIntervals/mae/level"),
        (mutate("confidenceIntervals/mae/low", 3.0), "low 3.0 is above high 2.0"),
        (mutate("slices/sex/2/omitted", {"r2": 1}), "/slices/sex/2/omitted/r2"),
        ([], "(root): [] is not of type 'object'"),
    ],
)
def test_validation_rejects(doc: Any, problem: str) -> None:
    with pytest.raises(MalformedDocumentError) as info:
        validate_metrics_document(doc, what="metrics file m.json")
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert info.value.message.startswith("metrics file m.json: not a valid metrics document")
    assert problem in info.value.message


def test_validation_lists_every_problem() -> None:
    doc = valid_doc()
    doc["metrics"]["mae"] = math.nan
    del doc["slices"]["sex"]["1"]["count"]
    doc["slices"]["sex"]["2"]["metrics"]["rmse"] = "x"
    with pytest.raises(MalformedDocumentError, match=r"\(3 problem\(s\)\)") as info:
        validate_metrics_document(doc, what="doc")
    lines = [line for line in info.value.message.splitlines() if line.startswith("  - ")]
    assert len(lines) == 3


# ------------------------------------------------------------- sign --metrics
def test_sign_reads_the_document(
    tmp_path: Path, diabetes: Regression, keys: dict[str, KeyPair]
) -> None:
    doc = regression_metrics(diabetes.y, diabetes.pred, slices={"sex": diabetes.sex})
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps(doc))
    metrics, slices = load_metrics_file(path)
    assert metrics == doc["metrics"]
    assert slices == doc["slices"]
    record = StageRecord("evaluate", products=[path], metrics_file=path)
    signed = sign_stage(
        record,
        keys["ml-engineer"].signer,
        AttestationStore(tmp_path / "store"),
        run_id="r1",
        base_dir=tmp_path,
        echo=False,
    )
    meta = signed.statement.metadata
    assert meta.metrics == doc["metrics"]
    assert meta.slices["sex"]["2"]["count"] == doc["slices"]["sex"]["2"]["count"]


def test_sign_records_intervals_and_omissions(
    tmp_path: Path, cancer: Binary, keys: dict[str, KeyPair]
) -> None:
    doc = classification_metrics(
        cancer.y, cancer.pred, y_score=cancer.proba, slices={"truth": cancer.y}, bootstrap=20
    )
    assert "confidenceIntervals" in doc and "omitted" in doc["slices"]["truth"]["0"]
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps(doc))
    record = StageRecord("evaluate", products=[path], metrics_file=path)
    signed = sign_stage(
        record,
        keys["ml-engineer"].signer,
        AttestationStore(tmp_path / "store"),
        run_id="r1",
        base_dir=tmp_path,
        echo=False,
    )
    meta = signed.statement.metadata
    assert meta.metrics == doc["metrics"]
    assert meta.slices == doc["slices"]  # per-slice intervals and omissions included
    assert meta.details["confidenceIntervals"] == doc["confidenceIntervals"]


# ------------------------------------------------------------- CLI
def test_cli_compute_prints_the_document(diabetes_csv: Path, diabetes: Regression) -> None:
    result = CliRunner().invoke(
        metrics_group,
        [
            "compute",
            str(diabetes_csv),
            "--task",
            "regression",
            "--label",
            "target",
            "--prediction",
            "predicted",
            "--slice",
            "sex",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc == regression_metrics(diabetes.y, diabetes.pred, slices={"sex": diabetes.sex})


def test_cli_compute_writes_a_file_sign_accepts(tmp_path: Path, diabetes_csv: Path) -> None:
    out = tmp_path / "reports" / "evaluation.json"
    args = [
        "compute",
        str(diabetes_csv),
        "--task",
        "regression",
        "--label",
        "target",
        "--prediction",
        "predicted",
        "--slice",
        "sex",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(metrics_group, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {out}: ")
    assert "slices: sex (2)" in result.stdout
    doc = load_file(out)
    validate_metrics_document(doc, what=str(out))
    assert load_metrics_file(out) == (doc["metrics"], doc["slices"])
    assert not list(out.parent.glob(".*.tmp"))  # the atomic write left nothing behind

    again = CliRunner().invoke(metrics_group, [*args, "--json"])
    assert again.exit_code == 0
    assert json.loads(again.stdout) == doc == load_file(out)


def test_cli_compute_bootstrap_is_reproducible(tmp_path: Path, cancer: Binary) -> None:
    rows = zip(cancer.y.tolist(), cancer.pred.tolist(), cancer.proba.tolist(), strict=True)
    path = write_csv(tmp_path / "p.csv", ["y", "yhat", "p"], list(rows))
    args = [
        "compute",
        str(path),
        "--task",
        "classification",
        "--label",
        "y",
        "--prediction",
        "yhat",
        "--score",
        "p",
        "--bootstrap",
        "30",
        "--seed",
        "11",
        "--confidence",
        "0.9",
    ]
    first = CliRunner().invoke(metrics_group, args)
    second = CliRunner().invoke(metrics_group, args)
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout
    ci = json.loads(first.stdout)["confidenceIntervals"]["roc_auc"]
    assert (ci["level"], ci["resamples"]) == (0.9, 30)


def test_cli_validate(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(valid_doc()))
    result = CliRunner().invoke(metrics_group, ["validate", str(good)])
    assert result.exit_code == 0
    assert "valid metrics document; 2 metrics; slices: sex (2)" in result.stdout
    result = CliRunner().invoke(metrics_group, ["validate", str(good), "--json"])
    assert json.loads(result.stdout) == {
        "schemaVersion": "https://mlspec-attest.dev/metrics-validation/v1",
        "file": str(good),
        "valid": True,
        "metrics": ["count", "mae"],
        "slices": {"sex": ["1", "2"]},
    }
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(mutate("slices/sex/1/count", KeyError)))
    result = CliRunner().invoke(metrics_group, ["validate", str(bad)])
    assert isinstance(result.exception, MalformedDocumentError)
    assert result.exception.exit_code == ExitCode.BAD_INPUT


@dataclass(frozen=True)
class MainResult:
    code: int
    out: str
    err: str

    @property
    def clean(self) -> bool:
        return "Traceback" not in self.out + self.err


MainRunner = Callable[..., MainResult]


@pytest.fixture
def cli_with_metrics(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> MainRunner:
    """The real entry point (exit-code mapping included), with the group registered."""
    monkeypatch.setitem(
        cli_main.COMMANDS, "metrics", ("metrics_cmd", "metrics", "Compute and check metrics.")
    )

    def run(*args: str | Path) -> MainResult:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            cli_main.main([str(a) for a in args])
        out, err = capsys.readouterr()
        code = exit_info.value.code
        return MainResult(code if isinstance(code, int) else 0, out, err)

    return run


def test_cli_exit_codes_through_main(cli_with_metrics: MainRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schemaVersion": METRICS_SCHEMA, "metrics": {"mae": "x"}}))
    result = cli_with_metrics("metrics", "validate", bad, "--json")
    assert result.code == ExitCode.BAD_INPUT and result.clean
    error = json.loads(result.out)
    assert error["exitCode"] == 3
    assert "/metrics/mae: 'x' is not of type 'number'" in error["error"]["message"]

    nan = tmp_path / "nan.json"
    nan.write_text(json.dumps({"schemaVersion": METRICS_SCHEMA, "metrics": {"mae": math.nan}}))
    result = cli_with_metrics("metrics", "validate", nan)
    assert result.code == ExitCode.BAD_INPUT and result.clean
    assert "NaN" in result.err

    csv_path = write_csv(tmp_path / "p.csv", ["y", "p"], [[1.0, 2.0], [2.0, 2.0]])
    result = cli_with_metrics(
        "metrics",
        "compute",
        csv_path,
        "--task",
        "regression",
        "--label",
        "y",
        "--prediction",
        "p",
        "--confidence",
        "0.9",
    )
    assert result.code == ExitCode.USAGE and result.clean
    assert "needs bootstrap" in result.err
    result = cli_with_metrics(
        "metrics",
        "compute",
        tmp_path / "missing.csv",
        "--task",
        "regression",
        "--label",
        "y",
        "--prediction",
        "p",
    )
    assert result.code == ExitCode.BAD_INPUT and result.clean
    assert "no such file" in result.err
    result = cli_with_metrics(
        "metrics",
        "compute",
        csv_path,
        "--task",
        "regression",
        "--label",
        "y",
        "--prediction",
        "p",
        "--json",
    )
    assert result.code == 0
    assert json.loads(result.out)["metrics"]["count"] == 2


def test_the_full_form_without_its_version_is_checked_by_the_same_rules(tmp_path: Path) -> None:
    # without schemaVersion the metrics-v1 checks were skipped: sign recorded an empty
    # slice family and an interval with low above high that metrics validate refuses
    from mlspec_attest.errors import MalformedDocumentError
    from mlspec_attest.evidence.metrics_file import read_metrics_document

    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"metrics": {"mae": 3.0}, "slices": {"": {"x": {"count": 3, "metrics": {"mae": 1.0}}}},'
        ' "confidenceIntervals": {"mae": {"low": 5.0, "high": 1.0, "level": 0.95}}}'
    )
    with pytest.raises(MalformedDocumentError, match=r"/slices: .. should be non-empty"):
        read_metrics_document(bad)
    flat = tmp_path / "flat.json"
    flat.write_text('{"mae": 3.0, "rmse": 4.0}')
    assert read_metrics_document(flat).metrics == {"mae": 3.0, "rmse": 4.0}
