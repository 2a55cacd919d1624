"""Descriptive statistics of one column and its outlier fences (the analysis report's numbers).

Conventions (see docs/data.md): ``std`` is the sample standard deviation
(n-1); quantiles interpolate linearly between order statistics (type 7,
``statistics.quantiles(method="inclusive")``, numpy's default); every number is
finite (``None`` where undefined).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

from mlspec_attest.errors import UsageError
from mlspec_attest.formats.cells import clip_text

OUTLIER_METHODS: Final = {"iqr": 1.5, "zscore": 3.0}
"""Outlier methods and their default thresholds (IQR fences k, |z| limit)."""

QUANTILES: Final = (
    ("p01", 0.01),
    ("p05", 0.05),
    ("p25", 0.25),
    ("p50", 0.50),
    ("p75", 0.75),
    ("p95", 0.95),
    ("p99", 0.99),
)
TOP_VALUES: Final = 10
MAX_DISTINCT: Final = 100_000
"""Distinct values counted per string column; beyond it counts are approximate."""


def finite(value: float | None) -> float | None:
    """``value`` if it is a finite number, else None (reports never hold NaN or infinity)."""
    if value is None or not math.isfinite(value):
        return None
    return value


def quantile(ordered: Sequence[float], p: float) -> float:
    """The ``p`` quantile of sorted data, linear between order statistics (type 7)."""
    position = (len(ordered) - 1) * p
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def numeric_summary(values: Sequence[float]) -> dict[str, Any]:
    """count, missing, mean, std, min, max and quantiles; NaN entries count as missing."""
    ordered = sorted(v for v in values if v == v)  # NaN != NaN: drops missing values
    n = len(ordered)
    missing = len(values) - n
    stats: dict[str, Any] = {"type": "number", "count": n, "missing": missing}
    if n == 0:
        stats.update(mean=None, std=None, min=None, max=None)
        stats["quantiles"] = {name: None for name, _ in QUANTILES}
        return stats
    mean = math.fsum(ordered) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in ordered) / (n - 1)) if n > 1 else None
    stats.update(mean=finite(mean), std=finite(std), min=ordered[0], max=ordered[-1])
    stats["quantiles"] = {name: finite(quantile(ordered, p)) for name, p in QUANTILES}
    return stats


class ValueCounter:
    """Counts of the values of a string column, with a cap on distinct values."""

    __slots__ = ("capped", "counts", "missing", "present")

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.present = 0
        self.missing = 0
        self.capped = False

    def add(self, text: str | None) -> None:
        if text is None:
            self.missing += 1
            return
        self.present += 1
        if text in self.counts or len(self.counts) < MAX_DISTINCT:
            self.counts[text] += 1
        else:
            self.capped = True

    def summary(self) -> dict[str, Any]:
        top = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_VALUES]
        stats: dict[str, Any] = {
            "type": "string",
            "count": self.present,
            "missing": self.missing,
            "distinct": len(self.counts),
            "top": [[clip_text(value), count] for value, count in top],
        }
        if self.capped:
            stats["distinctCapped"] = True
        return stats


# ---------------------------------------------------------------------- outliers
def outlier_settings(method: str, threshold: float | None) -> tuple[str, float]:
    if method not in OUTLIER_METHODS:
        raise UsageError(
            f"unknown outlier method {method!r}", remedy=f"use one of: {', '.join(OUTLIER_METHODS)}"
        )
    k = OUTLIER_METHODS[method] if threshold is None else float(threshold)
    if not math.isfinite(k) or k <= 0:
        raise UsageError(f"outlier threshold must be a positive number, got {threshold!r}")
    return method, k


def outlier_bounds(stats: Mapping[str, Any], method: str, k: float) -> tuple[float, float] | None:
    """The (low, high) fences of a numeric feature; None when no value can be an outlier."""
    if method == "iqr":
        q1, q3 = stats["quantiles"]["p25"], stats["quantiles"]["p75"]
        if q1 is None or q3 is None:
            return None
        spread = q3 - q1
        return q1 - k * spread, q3 + k * spread
    mean, std = stats["mean"], stats["std"]
    if mean is None or not std:
        return None  # constant (or single-valued) column: no z-scores
    return mean - k * std, mean + k * std


def is_outlier(
    x: float, method: str, k: float, stats: Mapping[str, Any], low: float, high: float
) -> bool:
    if x != x:
        return False
    if method == "zscore":
        # Compare |z| directly so a value exactly at the limit is never flagged by rounding.
        mean: float = stats["mean"]
        std: float = stats["std"]
        return abs(x - mean) / std > k
    return x < low or x > high
