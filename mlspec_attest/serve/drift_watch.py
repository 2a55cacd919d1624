"""The live drift signal of ``/metrics``: PSI of each feature over the last requests.

A :class:`DriftWatch` keeps the feature values of the last ``window`` predicted rows
(one bounded deque per feature, appended on the request path: no statistics there) and
the training columns it compares them with, read once at start from the split the
verification summary names (:func:`mlspec_attest.serve.monitor.training_columns`). At
scrape time :meth:`DriftWatch.refresh` sets ``mlspec_drift_psi{feature}``
(:func:`mlspec_attest.evidence.drift.psi_against`, the same PSI the signed monitor stage
uses, its training side computed once at start).

It is a signal for alerting, not evidence: the monitor stage (``mlspec-attest monitor``)
computes the signed numbers from the verified log.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping, Sequence

from mlspec_attest.errors import UsageError
from mlspec_attest.evidence.drift import DEFAULT_BINS, psi_against, psi_reference
from mlspec_attest.serve.metrics import ServeMetrics

DEFAULT_WINDOW = 1000
MIN_ROWS = 100
"""Rows seen before a PSI is published (and the smallest window): with ten bins, fewer rows
leave bins empty by chance, and each empty bin adds about 0.7 to the PSI of a stable feature."""


class DriftWatch:
    """Recent feature values of served requests against the training columns."""

    def __init__(
        self,
        features: Sequence[str],
        training: Mapping[str, Sequence[float]],
        *,
        window: int = DEFAULT_WINDOW,
        bins: int = DEFAULT_BINS,
    ) -> None:
        if not features:
            raise UsageError(
                "a drift signal needs the model's feature names",
                remedy="list them in the package's model-card.json (features)",
            )
        missing = [f for f in features if not training.get(f)]
        if missing:
            raise UsageError(f"the training data has no values for feature(s) {', '.join(missing)}")
        if window < MIN_ROWS:
            raise UsageError(f"a drift window holds at least {MIN_ROWS} rows, not {window}")
        self.features = tuple(features)
        # The training side of each PSI is computed once, not at every scrape.
        self.references = {f: psi_reference(training[f], bins) for f in self.features}
        self._recent = [deque[float](maxlen=window) for _ in self.features]
        self._lock = threading.Lock()

    def observe(self, rows: Sequence[Sequence[float]]) -> None:
        """Remember the rows a request predicted (their width is the model's)."""
        with self._lock:
            for row in rows:
                for column, value in zip(self._recent, row, strict=False):
                    column.append(float(value))

    def current(self) -> dict[str, float]:
        """PSI of each feature over the window (empty until :data:`MIN_ROWS` rows)."""
        with self._lock:
            recent = [list(c) for c in self._recent]
        if len(recent[0]) < MIN_ROWS:
            return {}
        return {
            name: psi_against(self.references[name], values)
            for name, values in zip(self.features, recent, strict=True)
        }

    def refresh(self, metrics: ServeMetrics) -> None:
        """Publish the current PSI of each feature (called when ``/metrics`` is read)."""
        for name, value in self.current().items():
            metrics.set_drift(name, value)
