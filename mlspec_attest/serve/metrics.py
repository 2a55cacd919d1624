"""Prometheus collectors of one server or pipeline step, in a registry of its own.

Each :class:`EndpointMetrics` owns a :class:`prometheus_client.CollectorRegistry`, never the
process-wide default one, so two servers (or a server and a step, or the tests) in one
process never share a counter. ``/metrics`` is :meth:`EndpointMetrics.exposition` of that
registry (docs/serving.md, "Endpoints").

The hot path is :meth:`EndpointMetrics.observe_request`: one dict lookup finds the cached
label children of a (route, method, status), so a request costs no label resolution.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from numbers import Real
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

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


class EndpointMetrics:
    """What every server or step exposes: requests, their duration and errors, uptime."""

    def __init__(self, *, duration_buckets: Iterable[float] = DURATION_BUCKETS) -> None:
        self.registry = CollectorRegistry()
        self.started_at = time.time()
        self._started = time.monotonic()
        self._requests = Counter(
            "mlspec_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self._duration = Histogram(
            "mlspec_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template.",
            ("route",),
            buckets=tuple(duration_buckets),
            registry=self.registry,
        )
        self._errors = Counter(
            "mlspec_request_errors",
            "Requests answered with an error, by kind.",
            ("kind",),
            registry=self.registry,
        )
        uptime = Gauge(
            "mlspec_uptime_seconds", "Seconds since the server started.", registry=self.registry
        )
        uptime.set_function(self.uptime)
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._error_children: dict[str, Counter] = {}

    def uptime(self) -> float:
        """Seconds since these metrics were made (the server's start)."""
        return time.monotonic() - self._started

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration (``route`` is a template, not a path)."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = self._children(route, method, status)
        children[0].inc()
        children[1].observe(seconds)

    def _children(self, route: str, method: str, status: int) -> tuple[Counter, Histogram]:
        label = method if method in METHODS else "OTHER"
        children = (
            self._requests.labels(route, label, str(status)),
            self._duration.labels(route),
        )
        self._request_children[(route, method, status)] = children
        return children

    def count_error(self, kind: str) -> None:
        """Count one error of ``kind`` (``bad_request``, ``predictor``, ``log_write`` ...)."""
        child = self._error_children.get(kind)
        if child is None:
            child = self._error_children[kind] = self._errors.labels(kind)
        child.inc()

    def exposition(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
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
        super().__init__(duration_buckets=duration_buckets)
        registry = self.registry
        self._predictions = Histogram(
            "mlspec_predictions",
            "Distribution of the values the model predicted (numeric predictions only).",
            buckets=tuple(prediction_buckets),
            registry=registry,
        )
        self._log_records = Counter(
            "mlspec_log_records", "Inference-log records written.", registry=registry
        )
        self._log_failures = Counter(
            "mlspec_log_failures",
            "Inference-log writes that failed (each request refused with 503).",
            registry=registry,
        )
        self._model_info = Gauge(
            "mlspec_model_info",
            "The model served: always 1, its facts in the labels.",
            ("name", "version", "digest", "vsa"),
            registry=registry,
        )
        self._drift = Gauge(
            "mlspec_drift_psi",
            "Population stability index of each feature against its training distribution.",
            ("feature",),
            registry=registry,
        )

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

    def log_written(self) -> None:
        """Count one inference-log record written."""
        self._log_records.inc()

    def log_failed(self) -> None:
        """Count one inference-log write that failed."""
        self._log_failures.inc()

    def observe_predictions(self, output: object) -> None:
        """Add each finite numeric prediction in ``output`` (a list of values, or of
        lists of values for a multi-output model) to ``mlspec_predictions``."""
        if not isinstance(output, list | tuple):
            return
        observe = self._predictions.observe
        for value in output:
            kind = type(value)
            if kind is float or kind is int:  # the common case, checked first
                if kind is int or math.isfinite(value):
                    observe(value)
            elif isinstance(value, list | tuple):
                for item in value:
                    if _finite_number(item):
                        observe(float(item))
            elif _finite_number(value):
                observe(float(value))


def _finite_number(value: object) -> bool:
    return isinstance(value, Real) and math.isfinite(value)


def sha256_ref(digest: str) -> str:
    """``sha256:<hex>`` for a bare hex digest; a digest already naming its algorithm as is."""
    return digest if ":" in digest else f"sha256:{digest}"
