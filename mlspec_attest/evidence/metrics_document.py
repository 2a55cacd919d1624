"""The metrics document of computed metrics: overall, per slice, with bootstrap intervals.

:func:`build_document` runs one ``compute`` function (rows -> metric values and the
reasons others are undefined) over all rows and over every slice, adding percentile
bootstrap intervals when asked; :mod:`mlspec_attest.evidence.metrics` supplies the
functions (regression, classification). The document format is docs/metrics.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlspec_attest.errors import BadInputError, UsageError, require
from mlspec_attest.formats.inputs import named

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Rows = NDArray[np.intp]

METRICS_SCHEMA = "https://mlspec-attest.dev/metrics/v1"
DEFAULT_CONFIDENCE = 0.95
# An interval estimated from fewer than half of the resamples says more about which
# resamples happened to be defined than about the metric: it is omitted instead.
_MIN_DEFINED_SHARE = 0.5

Computed = tuple[dict[str, float], dict[str, str]]


def build_document(
    task: str,
    compute: Callable[[Rows], Computed],
    n: int,
    groups: dict[str, dict[str, Rows]],
    order: tuple[str, ...],
    level: float,
    bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    """The document of ``compute`` over ``n`` rows and every slice in ``groups``."""
    np = require("numpy", "computing metrics")
    sklearn = require("sklearn", "computing metrics")
    # The inputs are checked by the callers (finite, 1-D, equal lengths); skipping
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
    np = require("numpy", "computing metrics")
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


def check_resampling(confidence: float | None, bootstrap: int, seed: int) -> float:
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise UsageError(f"bootstrap must be a non-negative integer, not {bootstrap!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise UsageError(f"seed must be an integer in [0, 2**32), not {seed!r}")
    if confidence is None:
        return DEFAULT_CONFIDENCE
    if not bootstrap:
        raise UsageError(
            "a confidence level needs bootstrap resamples",
            remedy=f"pass {named('bootstrap')} N (e.g. 1000)",
        )
    if not isinstance(confidence, int | float) or not 0.0 < confidence < 1.0:
        raise UsageError(f"confidence must be strictly between 0 and 1, not {confidence!r}")
    return float(confidence)
