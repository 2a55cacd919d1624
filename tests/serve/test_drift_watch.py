"""The live drift signal: ``mlspec_drift_psi{feature}`` over the recent requests, on /metrics."""

from __future__ import annotations

import httpx
import pytest

from mlspec_attest.errors import UsageError
from mlspec_attest.evidence.drift import psi
from mlspec_attest.serve.drift_watch import MIN_ROWS, DriftWatch
from mlspec_attest.serve.metrics import ServeMetrics

from .server_fixtures import ServerFactory, diabetes, make_server, sample

__all__ = ["make_server"]  # the fixture, used by name

TRAIN_ROWS = 300


def _watch(window: int = MIN_ROWS) -> DriftWatch:
    data = diabetes()
    columns = {f: [float(r[i]) for r in data.x[:TRAIN_ROWS]] for i, f in enumerate(data.features)}
    return DriftWatch(data.features, columns, window=window)


def _infer(url: str, rows: list[list[float]]) -> None:
    body = {"inputs": [{"name": "x", "shape": [len(rows), 10], "datatype": "FP64", "data": rows}]}
    assert httpx.post(url, json=body).status_code == 200


def test_psi_is_published_only_after_enough_rows() -> None:
    watch, metrics = _watch(), ServeMetrics()
    watch.observe(diabetes().rows(MIN_ROWS - 1, start=TRAIN_ROWS))
    assert watch.current() == {}
    watch.refresh(metrics)
    assert sample(metrics.exposition().decode(), "mlspec_drift_psi", feature="bmi") is None
    watch.observe(diabetes().rows(1, start=TRAIN_ROWS + MIN_ROWS - 1))
    live = diabetes().rows(MIN_ROWS, start=TRAIN_ROWS)
    bmi = diabetes().features.index("bmi")
    expected = psi([float(r[bmi]) for r in diabetes().x[:TRAIN_ROWS]], [r[bmi] for r in live])
    assert watch.current()["bmi"] == pytest.approx(expected, rel=1e-12)


def test_the_window_keeps_only_the_last_rows() -> None:
    watch = _watch(window=MIN_ROWS)
    shifted = [[v + 1.0 for v in row] for row in diabetes().rows(MIN_ROWS, start=TRAIN_ROWS)]
    watch.observe(shifted)
    assert watch.current()["bmi"] > 1.0
    watch.observe(diabetes().rows(MIN_ROWS, start=TRAIN_ROWS))  # pushes every shifted row out
    assert watch.current()["bmi"] < 0.25


def test_served_traffic_moves_the_gauge(make_server: ServerFactory) -> None:
    server = make_server(drift=_watch())
    for start in range(TRAIN_ROWS, TRAIN_ROWS + 100, 10):
        _infer(server.infer_url(), diabetes().rows(10, start=start))
    scraped = httpx.get(f"{server.url}/metrics").text
    stable = sample(scraped, "mlspec_drift_psi", feature="bmi")
    assert stable is not None and stable < 0.25
    bmi = diabetes().features.index("bmi")
    for start in range(0, 100, 10):
        rows = diabetes().rows(10, start=start)
        for row in rows:
            row[bmi] += 0.1  # two training standard deviations
        _infer(server.infer_url(), rows)
    moved = sample(httpx.get(f"{server.url}/metrics").text, "mlspec_drift_psi", feature="bmi")
    age = sample(httpx.get(f"{server.url}/metrics").text, "mlspec_drift_psi", feature="age")
    assert moved is not None and moved > 1.0
    assert age is not None and age < 0.25


@pytest.mark.parametrize(
    ("features", "training", "window", "message"),
    [
        ((), {}, 100, "feature names"),
        (("a",), {"b": [1.0]}, 100, "no values for feature"),
        (("a",), {"a": [1.0]}, MIN_ROWS - 1, "at least"),
    ],
)
def test_a_watch_needs_features_training_values_and_a_window(
    features: tuple[str, ...], training: dict[str, list[float]], window: int, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        DriftWatch(features, training, window=window)
