"""Prometheus collectors of one server or pipeline step, in a registry of its own.

Each :class:`EndpointMetrics` owns a :class:`prometheus_client.CollectorRegistry`, never the
process-wide default one, so two servers (or a server and a step, or the tests) in one
process never share a counter. ``/metrics`` is :meth:`EndpointMetrics.exposition` of that
registry (docs/serving.md, "Endpoints").

The hot path (:meth:`EndpointMetrics.observe_request` and what a request adds to the
log and prediction counts) updates plain numbers under one lock; a collector of ours
turns them into metric families when ``/metrics`` is read, so a request costs no label
resolution and no per-bucket lock.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from numbers import Real
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from mlspec_attest.errors import BadInputError
from mlspec_attest.serve.model import ServedModel

#: The ``Content-Type`` of :meth:`EndpointMetrics.exposition` (text format 0.0.4).
EXPOSITION_CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

#: Methods counted by name; any other (a client may send any token) is counted as OTHER,
#: so clients cannot grow the label set.
METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})

#: Request durations: 100 µs to 10 s.
DURATION_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)

#: Prediction values: symmetric decades around 0, quarters between 0 and 1 (scores and
#: probabilities). A server whose predictions live elsewhere passes its own buckets.
PREDICTION_BUCKETS: Final = (
    -1000.0,
    -100.0,
    -10.0,
    -1.0,
    0.0,
    0.25,
    0.5,
    0.75,
    1.0,
    10.0,
    100.0,
    1000.0,
)

#: The error kind of a status the application did not name one for.
_STATUS_KINDS: Final = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    500: "internal",
    503: "unavailable",
}


def error_kind(status: int) -> str:
    """The ``mlspec_request_errors_total`` kind of an error status nobody named a kind for."""
    kind = _STATUS_KINDS.get(status)
    if kind is not None:
        return kind
    return "client_error" if status < 500 else "server_error"


class _Histogram:
    """One histogram's cells: a count per bucket (not cumulative), the sum, the count."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self, size: int) -> None:
        self.buckets = [0] * size
        self.count = 0
        self.total = 0.0

    def add(self, bounds: tuple[float, ...], value: float) -> None:
        """Count ``value`` (the caller holds the lock)."""
        index = bisect_left(bounds, value)
        if index < len(self.buckets):
            self.buckets[index] += 1
        self.count += 1
        self.total += value

    def family_buckets(self, bounds: tuple[str, ...]) -> list[tuple[str, float]]:
        running, out = 0, []
        for bound, count in zip(bounds, self.buckets, strict=False):
            running += count
            out.append((bound, float(running)))
        out.append(("+Inf", float(self.count)))
        return out


#: One queued inference request: route, method, status, seconds, error kind, output,
#: whether its record was written.
_Inference = tuple[str, str, int, float, str | None, object, bool]
#: Queued inference requests are counted at the latest when this many have queued.
FOLD_EVERY: Final = 1024


class _HotPath(Collector):
    """The counters every request updates, as plain numbers under one lock, turned into
    metric families only when ``/metrics`` is read. prometheus-client's own Counter and
    Histogram take a lock per bucket and per value; this takes one per request."""

    def __init__(self, duration_buckets: Iterable[float], prediction_buckets: Iterable[float]):
        self.lock = threading.Lock()
        self.duration_bounds = tuple(sorted(float(bound) for bound in duration_buckets))
        self.prediction_bounds = tuple(sorted(float(bound) for bound in prediction_buckets))
        self.duration_les = tuple(repr(bound) for bound in self.duration_bounds)
        self.prediction_les = tuple(repr(bound) for bound in self.prediction_bounds)
        self.requests: dict[tuple[str, str, int], list[int]] = {}
        self.durations: dict[str, _Histogram] = {}
        self.errors: dict[str, int] = {}
        self.predictions = _Histogram(len(self.prediction_bounds))
        self.log_records = self.log_failures = 0
        self.serving = False  # whether the prediction and log families are shown
        self.pending: deque[_Inference] = deque()  # appended without the lock (atomic)

    def fold(self) -> None:
        """Count the queued inference requests (any thread may queue meanwhile)."""
        pending = self.pending
        with self.lock:
            while pending:
                try:
                    route, method, status, seconds, error, output, logged = pending.popleft()
                except IndexError:
                    return
                self.request(route, method, status, seconds)
                if error is not None:
                    self.errors[error] = self.errors.get(error, 0) + 1
                if logged:
                    self.log_records += 1
                else:
                    self.log_failures += 1
                if output is not None:
                    for value in _numbers(output):
                        self.predictions.add(self.prediction_bounds, value)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request (the caller holds the lock). A method outside :data:`METHODS`
        is counted as OTHER here, not when exposed: the table stays as small as the label
        set, whatever methods clients invent, and no two samples share their labels."""
        if method not in METHODS:
            method = "OTHER"
        cell = self.requests.get((route, method, status))
        if cell is None:
            cell = self.requests[(route, method, status)] = [0]
        cell[0] += 1
        cells = self.durations.get(route)
        if cells is None:
            cells = self.durations[route] = _Histogram(len(self.duration_bounds))
        cells.add(self.duration_bounds, seconds)

    def collect(self) -> Iterator[Metric]:
        self.fold()
        with self.lock:  # a consistent snapshot
            requests = [(key, cell[0]) for key, cell in self.requests.items()]
            durations = [(route, _copy(cells)) for route, cells in self.durations.items()]
            errors, predictions = list(self.errors.items()), _copy(self.predictions)
            records, failures = self.log_records, self.log_failures
        family = CounterMetricFamily("mlspec_requests", _REQUESTS_DOC, labels=_REQUEST_LABELS)
        for (route, method, status), count in requests:
            family.add_metric([route, method, str(status)], count)
        yield family
        histogram = HistogramMetricFamily(
            "mlspec_request_duration_seconds", _DURATION_DOC, labels=["route"]
        )
        for route, cells in durations:
            histogram.add_metric([route], cells.family_buckets(self.duration_les), cells.total)
        yield histogram
        family = CounterMetricFamily("mlspec_request_errors", _ERRORS_DOC, labels=["kind"])
        for kind, count in errors:
            family.add_metric([kind], count)
        yield family
        if self.serving:
            yield from self._serving(predictions, records, failures)

    def _serving(self, predictions: _Histogram, records: int, failures: int) -> Iterator[Metric]:
        histogram = HistogramMetricFamily("mlspec_predictions", _PREDICTIONS_DOC, labels=[])
        histogram.add_metric([], predictions.family_buckets(self.prediction_les), None)
        # no _sum when buckets may be negative (OpenMetrics); the count is still meaningful
        histogram.samples.append(Sample("mlspec_predictions_count", {}, float(predictions.count)))
        yield histogram
        yield CounterMetricFamily("mlspec_log_records", _RECORDS_DOC, value=records)
        yield CounterMetricFamily("mlspec_log_failures", _FAILURES_DOC, value=failures)


def _copy(cells: _Histogram) -> _Histogram:
    copy = _Histogram(0)
    copy.buckets, copy.count, copy.total = list(cells.buckets), cells.count, cells.total
    return copy


_REQUEST_LABELS: Final = ["route", "method", "status"]
_REQUESTS_DOC: Final = "HTTP requests answered, by route template, method and status."
_DURATION_DOC: Final = (
    "Time from a request's arrival to the end of its response, by route template."
)
_ERRORS_DOC: Final = "Requests answered with an error, by kind."
_PREDICTIONS_DOC: Final = "Distribution of the values the model predicted (numeric only)."
_RECORDS_DOC: Final = "Inference-log records written."
_FAILURES_DOC: Final = "Inference-log writes that failed (each request refused with 503)."


class EndpointMetrics:
    """What every server or step exposes: requests, their duration and errors, uptime."""

    def __init__(
        self,
        *,
        duration_buckets: Iterable[float] = DURATION_BUCKETS,
        prediction_buckets: Iterable[float] = PREDICTION_BUCKETS,
    ) -> None:
        self.registry = CollectorRegistry()
        self.started_at = time.time()
        self._started = time.monotonic()
        self._hot = _HotPath(duration_buckets, prediction_buckets)
        self.registry.register(self._hot)
        uptime = Gauge(
            "mlspec_uptime_seconds", "Seconds since the server started.", registry=self.registry
        )
        uptime.set_function(self.uptime)
        self._before_scrape: list[Callable[[], None]] = []

    def on_scrape(self, refresh: Callable[[], None]) -> None:
        """Call ``refresh`` before each exposition (values computed when they are read)."""
        self._before_scrape.append(refresh)

    def uptime(self) -> float:
        """Seconds since these metrics were made (the server's start)."""
        return time.monotonic() - self._started

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration (``route`` is a template, not a path)."""
        with self._hot.lock:
            self._hot.request(route, method, status, seconds)

    def count_error(self, kind: str) -> None:
        """Count one error of ``kind`` (``bad_request``, ``predictor``, ``log_write`` ...)."""
        hot = self._hot
        with hot.lock:
            hot.errors[kind] = hot.errors.get(kind, 0) + 1

    def exposition(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        for refresh in self._before_scrape:
            refresh()
        return generate_latest(self.registry)


class ServeMetrics(EndpointMetrics):
    """A model server's metrics: the endpoint metrics plus predictions, the inference
    log, the served model and drift."""

    def __init__(
        self,
        *,
        prediction_buckets: Iterable[float] = PREDICTION_BUCKETS,
        duration_buckets: Iterable[float] = DURATION_BUCKETS,
    ) -> None:
        super().__init__(duration_buckets=duration_buckets, prediction_buckets=prediction_buckets)
        self._hot.serving = True
        self._model_info = Gauge(
            "mlspec_model_info",
            "The model served: always 1, its facts in the labels.",
            ("name", "version", "digest", "vsa"),
            registry=self.registry,
        )
        self._drift = Gauge(
            "mlspec_drift_psi",
            "Population stability index of each feature against its training distribution.",
            ("feature",),
            registry=self.registry,
        )
        self._log_backlog = Gauge(
            "mlspec_log_backlog",
            "Requests answered whose records the log's writer process has not committed yet.",
            registry=self.registry,
        )

    def watch_log_backlog(self, backlog: Callable[[], int]) -> None:
        """Read ``mlspec_log_backlog`` from ``backlog`` at each scrape (journal mode)."""
        self._log_backlog.set_function(lambda: float(backlog()))

    def set_model(self, served: ServedModel) -> None:
        """Publish ``mlspec_model_info`` for ``served`` (one model per server)."""
        binding = served.binding
        self._model_info.clear()
        self._model_info.labels(
            served.name,
            served.version,
            sha256_ref(binding.model_digest),
            sha256_ref(binding.vsa_digest),
        ).set(1)

    def set_drift(self, feature: str, value: float) -> None:
        """Set the drift (PSI) of ``feature``; the monitoring code calls this."""
        if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
            raise BadInputError(f"drift of feature {feature!r} must be a finite number: {value!r}")
        self._drift.labels(feature).set(float(value))

    def observe_inference(
        self,
        route: str,
        method: str,
        status: int,
        seconds: float,
        error: str | None,
        output: object,
        logged: bool,
    ) -> None:
        """All one inference request adds: the request, its error kind (if any), its record
        written or failed, and its predictions (``output``). Queued, and counted when
        ``/metrics`` is read or :data:`FOLD_EVERY` requests have queued, whichever comes
        first: a request pays for one append, a scrape for the arithmetic."""
        pending = self._hot.pending
        pending.append((route, method, status, seconds, error, output, logged))
        if len(pending) >= FOLD_EVERY:
            self._hot.fold()

    def observe_predictions(self, output: object) -> None:
        """Add each finite numeric prediction in ``output`` to ``mlspec_predictions``."""
        values = _numbers(output)
        hot = self._hot
        with hot.lock:
            for value in values:
                hot.predictions.add(hot.prediction_bounds, value)


def _numbers(output: object) -> list[float]:
    """The finite numbers of a prediction output: a list of values, or of lists of values
    (a multi-output model); anything else has none."""
    values: list[float] = []
    if not isinstance(output, list | tuple):
        return values
    for value in output:
        kind = type(value)
        if kind is float or kind is int:  # the common case, checked first
            if kind is int or math.isfinite(value):
                values.append(value)
        elif isinstance(value, list | tuple):
            values.extend(float(item) for item in value if _finite_number(item))
        elif _finite_number(value):
            values.append(float(value))
    return values


def _finite_number(value: object) -> bool:
    return isinstance(value, Real) and math.isfinite(value)


def sha256_ref(digest: str) -> str:
    """``sha256:<hex>`` for a bare hex digest; a digest already naming its algorithm as is."""
    return digest if ":" in digest else f"sha256:{digest}"
