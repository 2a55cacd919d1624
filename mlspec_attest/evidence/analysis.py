"""Data analysis (lifecycle stage 3): descriptive statistics per feature and slice, outliers.

:func:`analyze_dataset` streams a CSV or JSON Lines file twice: the first pass
decides each column's type (``number`` when every present value is numeric,
else ``string``), the second gathers the statistics. Numeric columns are kept
as compact ``array('d')`` (8 bytes a value) for exact quantiles; string
columns keep a value counter, capped at :data:`MAX_DISTINCT` distinct values.
The report is a JSON document (schema ``analysis-v1``) meant to be a product
of the analyze stage; every number in it is finite (``null`` where undefined).

Conventions (see docs/data.md): ``std`` is the sample standard deviation
(``statistics.stdev``, n-1); quantiles interpolate linearly between order
statistics (``statistics.quantiles(method="inclusive")``, numpy's default);
row indices are 0-based data rows (the CSV header is not a row).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import tempfile
from array import array
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from mlspec_attest.digest.artifact import sha256_file
from mlspec_attest.errors import BadInputError, StoreError, UsageError
from mlspec_attest.formats.cells import (
    TabularReader,
    as_number,
    as_text,
    clip_text,
    is_numeric,
    kind_of,
)
from mlspec_attest.formats.jsonio import canonical

ANALYSIS_SCHEMA = "https://mlspec-attest.dev/analysis/v1"
TRANSFORM_SCHEMA = "https://mlspec-attest.dev/transform/v1"

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
MAX_OUTLIER_ROWS: Final = 1000
"""Outlier row indices listed in a report; the count always covers all of them."""
TOP_VALUES: Final = 10
MAX_DISTINCT: Final = 100_000
"""Distinct values counted per string column; beyond it counts are approximate."""
MAX_SLICE_VALUES: Final = 100
MISSING_SLICE: Final = "null"
"""Slice key of rows whose slice column is missing (never a real value: it is a missing token)."""


# --------------------------------------------------------------------- statistics
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


class _ValueCounter:
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
def _outlier_settings(method: str, threshold: float | None) -> tuple[str, float]:
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


def _is_outlier(
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


# ---------------------------------------------------------------------- the passes
def _survey(path: Path) -> tuple[list[str], set[str], int, str | None]:
    """Pass 1: columns, which of them are numeric, row count, file digest."""
    not_numeric: set[str] = set()
    has_value: set[str] = set()
    with TabularReader(path) as reader:
        text_cells = reader.text_cells
        for row in reader:
            for column, cell in row.items():
                if cell is None or column in not_numeric:
                    continue
                has_value.add(column)
                if not is_numeric(cell, text_cells=text_cells):
                    not_numeric.add(column)
        columns = list(reader.columns)
        rows, digest = reader.rows_read, reader.sha256
    numeric = {c for c in columns if c in has_value and c not in not_numeric}
    return columns, numeric, rows, digest


def _check_columns(names: Sequence[str], columns: Sequence[str], option: str) -> None:
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise UsageError(
            f"{option}: column(s) {', '.join(map(repr, unknown))} not in the dataset",
            remedy=f"columns are: {', '.join(columns)}",
        )


def analyze_dataset(
    path: Path,
    *,
    slices: Sequence[str] = (),
    outliers: str = "iqr",
    threshold: float | None = None,
    exclude_columns: Sequence[str] = (),
) -> dict[str, Any]:
    """Descriptive statistics of ``path`` overall and per slice, and its outliers.

    ``slices`` names categorical columns; each distinct value (at most
    :data:`MAX_SLICE_VALUES`) gets the same per-feature statistics over its
    rows. ``outliers`` is ``iqr`` (outside ``[p25 - k*IQR, p75 + k*IQR]``,
    k=1.5) or ``zscore`` (``|x - mean| / std > k``, k=3); ``threshold``
    overrides k. Only numeric features are checked for outliers.
    ``exclude_columns`` are left out of features and outliers (ids, labels)
    but may still be sliced on. Raises :class:`UsageError` for unknown
    columns or settings, :class:`BadInputError` for unreadable data.
    """
    method, k = _outlier_settings(outliers, threshold)
    columns, numeric, _rows, digest = _survey(path)
    _check_columns(slices, columns, "--slice")
    _check_columns(exclude_columns, columns, "--exclude-column")
    slice_columns = list(dict.fromkeys(slices))
    excluded = set(exclude_columns)
    features = [c for c in columns if c not in excluded]

    values = {c: array("d") for c in features if c in numeric}
    counters = {c: _ValueCounter() for c in features if c not in numeric}
    slice_keys: dict[str, dict[str, int]] = {s: {} for s in slice_columns}
    slice_codes = {s: array("l") for s in slice_columns}
    # slice column -> slice code -> string feature -> counter
    slice_counters: dict[str, list[dict[str, _ValueCounter]]] = {s: [] for s in slice_columns}
    nan = math.nan

    with TabularReader(path) as reader:
        for row in reader:
            codes: list[tuple[str, int]] = []
            for s in slice_columns:
                cell = row.get(s)
                key = MISSING_SLICE if cell is None else clip_text(as_text(cell))
                keys = slice_keys[s]
                code = keys.get(key)
                if code is None:
                    if len(keys) >= MAX_SLICE_VALUES:
                        raise UsageError(
                            f"--slice {s}: more than {MAX_SLICE_VALUES} distinct values",
                            remedy="slice on a categorical column (bucket numeric ones first)",
                        )
                    code = keys[key] = len(keys)
                    slice_counters[s].append({c: _ValueCounter() for c in counters if c != s})
                slice_codes[s].append(code)
                codes.append((s, code))
            try:
                for column, column_values in values.items():
                    cell = row.get(column)
                    # Pass 1 found every present value of this column numeric and finite.
                    column_values.append(nan if cell is None else float(cell))
            except ValueError as exc:
                raise BadInputError(f"{path}: changed while being analyzed") from exc
            for column, counter in counters.items():
                cell = row.get(column)
                text = None if cell is None else clip_text(as_text(cell))
                counter.add(text)
                for s, code in codes:
                    if column != s:
                        slice_counters[s][code][column].add(text)
        rows = reader.rows_read
        if reader.sha256 != digest:
            raise BadInputError(
                f"{path}: changed while being analyzed", remedy="analyze a stable copy"
            )

    feature_stats: dict[str, dict[str, Any]] = {}
    for column in features:
        if column in values:
            feature_stats[column] = numeric_summary(values[column])
        else:
            feature_stats[column] = counters[column].summary()

    slice_report: dict[str, dict[str, Any]] = {}
    for s in slice_columns:
        codes_of_rows = slice_codes[s]
        keys = slice_keys[s]
        parts: list[dict[str, array[float]]] = [
            {c: array("d") for c in values if c != s} for _ in keys
        ]
        for column in values:
            if column == s:
                continue
            for v, code in zip(values[column], codes_of_rows, strict=True):
                parts[code][column].append(v)
        sizes = Counter(codes_of_rows)
        family: dict[str, Any] = {}
        for key, code in sorted(keys.items()):
            slice_features: dict[str, Any] = {}
            for column in features:
                if column == s:
                    continue
                if column in values:
                    slice_features[column] = numeric_summary(parts[code][column])
                else:
                    slice_features[column] = slice_counters[s][code][column].summary()
            family[key] = {"rows": sizes[code], "features": slice_features}
        slice_report[s] = family

    return {
        "schemaVersion": ANALYSIS_SCHEMA,
        "dataset": {
            "rows": rows,
            "columns": columns,
            "format": reader.format,
            "sha256": digest,
        },
        "features": feature_stats,
        "slices": slice_report,
        "outliers": _find_outliers(values, feature_stats, method, k),
    }


def _find_outliers(
    values: Mapping[str, array[float]],
    stats: Mapping[str, Mapping[str, Any]],
    method: str,
    k: float,
) -> dict[str, Any]:
    flagged: set[int] = set()
    per_feature: dict[str, int] = {}
    bounds: dict[str, dict[str, float] | None] = {}
    for column, column_values in values.items():
        fences = outlier_bounds(stats[column], method, k)
        bounds[column] = None if fences is None else {"low": fences[0], "high": fences[1]}
        count = 0
        if fences is not None:
            low, high = fences
            for index, x in enumerate(column_values):
                if _is_outlier(x, method, k, stats[column], low, high):
                    count += 1
                    flagged.add(index)
        per_feature[column] = count
    ordered = sorted(flagged)
    return {
        "method": method,
        "threshold": k,
        "count": len(ordered),
        "rows": ordered[:MAX_OUTLIER_ROWS],
        "truncated": len(ordered) > MAX_OUTLIER_ROWS,
        "perFeature": per_feature,
        "bounds": bounds,
    }


def analysis_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """Headline numbers of a report for a stage's ``metrics`` (all finite)."""
    dataset, found = report["dataset"], report["outliers"]
    metrics: dict[str, float] = {
        "rows": dataset["rows"],
        "columns": len(dataset["columns"]),
        "outlierRows": found["count"],
    }
    for column, count in found["perFeature"].items():
        metrics[f"outliers.{column}"] = count
    for column, stats in report["features"].items():
        metrics[f"missing.{column}"] = stats["missing"]
    return metrics


# ------------------------------------------------------------- transformation (stage 4)
def remove_outliers(
    path: Path,
    out: Path,
    report: Mapping[str, Any],
    *,
    mappings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``path`` to ``out`` without the rows ``report`` flags; return the transformation record.

    Rows are judged by the report's own fences and statistics (not its capped
    row list), so every outlier row is removed and the count matches the
    report. ``report`` must describe exactly the bytes of ``path``. The output
    has the input's format, uncompressed; missing CSV cells are written empty.
    ``mappings`` (e.g. ``{"sex": {"1": 0, "2": 1}}``) is recorded as given.
    """
    canonical(dict(mappings or {}))  # refuse what cannot be recorded as JSON, before any work
    expected = report["dataset"]["sha256"]
    actual, _size = sha256_file(path)
    if actual != expected:
        raise BadInputError(
            f"{path}: the analysis report describes other data (sha256:{expected})",
            remedy="analyze this file first and pass that report",
        )
    found = report["outliers"]
    method, k = _outlier_settings(found["method"], found["threshold"])
    fences = [
        (column, bounds["low"], bounds["high"], report["features"][column])
        for column, bounds in found["bounds"].items()
        if bounds is not None
    ]
    per_feature: Counter[str] = Counter()
    kept = removed = 0
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise StoreError(f"cannot write {out}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh, TabularReader(path) as reader:
            writer = None
            if reader.text_cells:
                delimiter = "\t" if reader.format == "tsv" else ","
                writer = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
                writer.writerow(reader.columns)
            for row in reader:
                flagged = False
                for column, low, high, stats in fences:
                    cell = row.get(column)
                    if cell is None:
                        continue
                    x = as_number(cell, kind_of(cell, text_cells=reader.text_cells))
                    if x is not None and _is_outlier(x, method, k, stats, low, high):
                        per_feature[column] += 1
                        flagged = True
                if flagged:
                    removed += 1
                elif writer is not None:
                    kept += 1
                    writer.writerow(["" if row[c] is None else row[c] for c in reader.columns])
                else:
                    kept += 1
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            if reader.sha256 != expected:
                raise BadInputError(f"{path}: changed while being transformed")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return {
        "schemaVersion": TRANSFORM_SCHEMA,
        "input": {"rows": kept + removed, "sha256": expected},
        "output": {"rows": kept, "sha256": sha256_file(out)[0]},
        "mappings": dict(mappings or {}),
        "outliersRemoved": {
            "method": method,
            "threshold": k,
            "rows": removed,
            "perFeature": {c: per_feature[c] for c, *_ in fences},
        },
    }
