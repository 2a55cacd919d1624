"""Fixtures of the server tests: a real scikit-learn model, an in-memory inference log,
real servers on 127.0.0.1.

:class:`MemoryLog` is a small, real implementation of the middleware's ``RequestLog``
protocol (records kept in a list, a capacity after which every append fails as a full
disk does); the tests test the HTTP side, not the log. Nothing fakes hashing or
signing. Test modules import the fixtures they use from here (pytest finds fixtures
by name in the test module).
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Unpack

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

from mlspec_attest.errors import StoreError
from mlspec_attest.log.prepare import RequestValues
from mlspec_attest.serve.app import build_app
from mlspec_attest.serve.config import ServeConfig
from mlspec_attest.serve.drift_watch import DriftWatch
from mlspec_attest.serve.endpoints import ReadinessCheck
from mlspec_attest.serve.metrics import ServeMetrics
from mlspec_attest.serve.model import Binding, ServedModel
from mlspec_attest.serve.runner import RunningServer, start_server

MODEL_NAME = "diabetes"
MODEL_VERSION = "3"
VSA_DIGEST = hashlib.sha256(b"a signed verification summary").hexdigest()
POLICY_DIGEST = hashlib.sha256(b"a signed policy").hexdigest()


@dataclass(frozen=True)
class LoggedRequest:
    """One record :class:`MemoryLog` kept: the arguments of one ``append``."""

    request_id: str
    client: str
    user: str | None
    method: str
    path: str
    protocol: str
    status: int
    bytes_sent: int
    referer: str | None
    user_agent: str | None
    model: str
    model_version: str
    model_digest: str
    vsa_digest: str
    body: bytes
    output: object
    latency_us: int
    time: datetime | None


@dataclass
class MemoryLog:
    """An inference log in memory. ``capacity`` bounds it: once full, every append
    raises :class:`StoreError` (as the real writer does on a full disk)."""

    capacity: int | None = None
    records: list[LoggedRequest] = field(default_factory=list)
    closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, **values: Unpack[RequestValues]) -> LoggedRequest:
        record = LoggedRequest(**{"time": None, **values})
        with self._lock:
            if self.closed:
                raise StoreError("inference log: closed")
            if self.capacity is not None and len(self.records) >= self.capacity:
                raise StoreError("inference log: no space left on device")
            self.records.append(record)
        return record

    def close(self) -> None:
        self.closed = True


# ------------------------------------------------------------------ the model
@dataclass(frozen=True)
class Diabetes:
    """scikit-learn's diabetes data (shipped with it: no download) and a model fit on it."""

    model: LinearRegression
    x: np.ndarray
    features: tuple[str, ...]

    def expected(self, rows: Sequence[Sequence[float]]) -> list[float]:
        """What the model predicts for ``rows``, computed directly."""
        return list(self.model.predict(np.asarray(rows, dtype="float64")).tolist())

    def rows(self, count: int, start: int = 0) -> list[list[float]]:
        return [list(map(float, row)) for row in self.x[start : start + count]]


@cache
def diabetes() -> Diabetes:
    data = load_diabetes()
    model = LinearRegression().fit(data.data, data.target)
    return Diabetes(model, data.data, tuple(data.feature_names))


@dataclass(frozen=True)
class EstimatorPredictor:
    """A scikit-learn estimator as a :class:`~mlspec_attest.serve.model.Predictor`."""

    model: Any

    def predict(self, rows: Sequence[Sequence[float]]) -> list[Any]:
        return list(self.model.predict(np.asarray(rows, dtype="float64")).tolist())


class FailingPredictor:
    """A model that fails on every row, as a broken model does."""

    def predict(self, rows: Sequence[Sequence[float]]) -> list[Any]:
        raise ValueError("matrix is singular")


def served_model(predictor: Any = None, features: Sequence[str] | None = None) -> ServedModel:
    """The diabetes model as the gate would hand it over (digests of its real bytes)."""
    data = diabetes()
    binding = Binding(
        model_digest=hashlib.sha256(pickle.dumps(data.model)).hexdigest(),
        vsa_digest=VSA_DIGEST,
        policy_digest=POLICY_DIGEST,
        run_id="run-2026-06-01",
        time_verified="2026-06-01T12:00:00Z",
        verifier_id="https://mlspec-attest.dev/verifier/v1",
        resource_uri="https://models.example.com/diabetes",
    )
    return ServedModel(
        name=MODEL_NAME,
        version=MODEL_VERSION,
        binding=binding,
        predictor=predictor if predictor is not None else EstimatorPredictor(data.model),
        format="pickle",
        features=tuple(data.features if features is None else features),
        extra={"card": {"owner": "ml-team"}},
    )


# ------------------------------------------------------------------ a running server
@dataclass
class Server:
    """A reference server running on 127.0.0.1, with its log and metrics."""

    url: str
    log: Any  # a MemoryLog, or the real InferenceLog
    metrics: ServeMetrics
    served: ServedModel
    running: RunningServer

    def infer_url(self, name: str = MODEL_NAME) -> str:
        return f"{self.url}/v2/models/{name}/infer"


@dataclass
class ServerFactory:
    """Starts reference servers for one test; all are stopped when the test ends."""

    started: list[RunningServer] = field(default_factory=list)

    def __call__(
        self,
        served: ServedModel | None = None,
        *,
        log: Any = None,
        config: ServeConfig | None = None,
        readiness: Sequence[ReadinessCheck] = (),
        drift: DriftWatch | None = None,
    ) -> Server:
        served = served if served is not None else served_model()
        log = log if log is not None else MemoryLog()
        metrics = ServeMetrics()
        app = build_app(
            served, log, config=config, metrics=metrics, readiness=readiness, drift=drift
        )
        running = start_server(app)
        self.started.append(running)
        return Server(running.url, log, metrics, served, running)


@pytest.fixture
def make_server() -> Iterator[ServerFactory]:
    factory = ServerFactory()
    try:
        yield factory
    finally:
        for running in factory.started:
            running.stop()


@pytest.fixture
def server(make_server: ServerFactory) -> Server:
    """The diabetes model served with an unbounded in-memory log."""
    return make_server()


@pytest.fixture(scope="module")
def shared_server() -> Iterator[Server]:
    """One server for a whole module, for tests that look only at their own answers."""
    factory = ServerFactory()
    try:
        yield factory()
    finally:
        for running in factory.started:
            running.stop()


# ------------------------------------------------------------------ /metrics
def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus exposition: (name, labels) -> value."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def sample(exposition: str, metric: str, /, **labels: str) -> float | None:
    """The value of one sample, or None if the exposition has no such sample."""
    return samples(exposition).get((metric, frozenset(labels.items())))
