"""``/ok`` ``/varz`` ``/metrics`` for a long-running pipeline step (a training loop).

::

    with serve_step_endpoints(name="train", port=0, varz={"epochs": 20}) as endpoint:
        print("status at", endpoint.url)
        for epoch in range(20):
            loss = train_one_epoch()
            endpoint.set("epoch", epoch)
            endpoint.observe("loss", loss)

A small uvicorn server runs in a background thread for as long as the block, on
127.0.0.1 by default (port 0: a free port, reported as ``endpoint.port``), and stops
gracefully when the block ends, however it ends. ``/varz`` shows what the step
:meth:`StepEndpoint.set`; ``/metrics`` the values it :meth:`StepEndpoint.observe`\\ d
(gauge ``mlspec_step_value{name}``) and :meth:`StepEndpoint.count`\\ ed (counter
``mlspec_step_events_total{name}``), beside the request metrics and uptime; the
step may register collectors of its own in ``endpoint.registry``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from numbers import Real
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

from mlspec_attest.errors import BadInputError
from mlspec_attest.serve.endpoints import ReadinessCheck, StatusEndpoints
from mlspec_attest.serve.metrics import EndpointMetrics
from mlspec_attest.serve.runner import RunningServer, start_server

_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")


class StepEndpoint:
    """The running endpoints of one step: where they are, and what they show."""

    def __init__(self, endpoints: StatusEndpoints, server: RunningServer) -> None:
        self.endpoints = endpoints
        self.metrics = endpoints.metrics
        self.server = server
        self.host, self.port, self.url = server.host, server.port, server.url
        registry = self.metrics.registry
        self._values = Gauge(
            "mlspec_step_value",
            "The last value the step observed, by name.",
            ("name",),
            registry=registry,
        )
        self._events = Counter(
            "mlspec_step_events",
            "Events the step counted, by name.",
            ("name",),
            registry=registry,
        )

    @property
    def registry(self) -> CollectorRegistry:
        """The registry ``/metrics`` exposes, for the step's own collectors."""
        return self.metrics.registry

    def set(self, key: str, value: object) -> None:
        """Show ``key: value`` under ``vars`` in ``/varz`` (any JSON value)."""
        self.endpoints.set_var(key, value)

    def observe(self, name: str, value: float) -> None:
        """Set ``mlspec_step_value{name=...}`` to ``value`` (a loss, an accuracy ...)."""
        if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
            raise BadInputError(f"step value {name!r} must be a finite number: {value!r}")
        self._values.labels(_checked(name)).set(float(value))

    def count(self, name: str, amount: float = 1) -> None:
        """Add ``amount`` to ``mlspec_step_events_total{name=...}`` (batches, rows ...)."""
        self._events.labels(_checked(name)).inc(amount)

    def set_fault(self, name: str, reason: str) -> None:
        """Make ``/ok`` answer 503 naming ``reason`` until :meth:`clear_fault`."""
        self.endpoints.set_fault(name, reason)

    def clear_fault(self, name: str) -> None:
        self.endpoints.clear_fault(name)


def _checked(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise BadInputError(
            f"step metric name {name!r}: use letters, digits and _ . : - (at most 64)"
        )
    return name


@contextmanager
def serve_step_endpoints(
    name: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    varz: Mapping[str, object] | None = None,
    ready: Callable[[], bool] | None = None,
    readiness: Iterable[ReadinessCheck] = (),
) -> Iterator[StepEndpoint]:
    """Serve the step's ``/ok`` ``/varz`` ``/metrics`` while the block runs.

    ``ready`` (a callable, True when ready) and ``readiness`` (named callables) decide
    ``/ok``'s readiness; ``varz`` is shown under ``vars`` from the start.
    """
    checks = list(readiness)
    if ready is not None:
        checks.insert(0, (name, ready))
    endpoints = StatusEndpoints(metrics=EndpointMetrics(), name=name, readiness=checks, varz=varz)
    with start_server(endpoints, host=host, port=port) as server:
        yield StepEndpoint(endpoints, server)
