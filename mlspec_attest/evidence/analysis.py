"""Data analysis (lifecycle stage 3): descriptive statistics per feature and slice, outliers.

:func:`analyze_dataset` streams a CSV, TSV or JSON Lines file twice (read by the one
tabular reader): the first pass decides each column's type (``number`` when every
present value is numeric, else ``string``), the second gathers the statistics.
Numeric columns are kept as compact ``array('d')`` (8 bytes a value) for exact
quantiles; string columns keep a value counter, capped at
:data:`~mlspec_attest.evidence.feature_stats.MAX_DISTINCT` distinct values. The
report is a JSON document (schema ``analysis-v1``) meant to be a product of the
analyze stage; every number in it is finite (``null`` where undefined). The
statistics themselves are :mod:`mlspec_attest.evidence.feature_stats`.

Row indices are 0-based data rows (the CSV header is not a row).
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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final

from mlspec_attest.digest.artifact import sha256_file
from mlspec_attest.errors import BadInputError, StoreError, UsageError
from mlspec_attest.evidence.feature_stats import (
    ValueCounter,
    is_outlier,
    numeric_summary,
    outlier_bounds,
    outlier_settings,
)
from mlspec_attest.formats.cells import (
    Cell,
    TabularReader,
    as_number,
    as_text,
    clip_text,
    is_numeric,
    kind_of,
)
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.jsonio import canonical

ANALYSIS_SCHEMA = "https://mlspec-attest.dev/analysis/v1"
TRANSFORM_SCHEMA = "https://mlspec-attest.dev/transform/v1"

MAX_OUTLIER_ROWS: Final = 1000
"""Outlier row indices listed in a report; the count always covers all of them."""
MAX_SLICE_VALUES: Final = 100
MISSING_SLICE: Final = "null"
"""Slice key of rows whose slice column is missing (never a real value: it is a missing token)."""


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


class _Slices:
    """Pass 2, per slice column: each row's slice code and each slice's string counters."""

    def __init__(self, column: str, counted: Sequence[str]) -> None:
        self.column = column
        self.keys: dict[str, int] = {}
        self.codes = array("l")
        self.counters: list[dict[str, ValueCounter]] = []
        self._counted = [c for c in counted if c != column]

    def code_of(self, row: Mapping[str, Cell]) -> int:
        cell = row.get(self.column)
        key = MISSING_SLICE if cell is None else clip_text(as_text(cell))
        code = self.keys.get(key)
        if code is None:
            if len(self.keys) >= MAX_SLICE_VALUES:
                raise UsageError(
                    f"{named('slice')} {self.column}: more than {MAX_SLICE_VALUES} distinct values",
                    remedy="slice on a categorical column (bucket numeric ones first)",
                )
            code = self.keys[key] = len(self.keys)
            self.counters.append({c: ValueCounter() for c in self._counted})
        self.codes.append(code)
        return code

    def report(self, features: Sequence[str], values: Mapping[str, array[float]]) -> dict[str, Any]:
        """Every slice's rows and per-feature statistics."""
        parts: list[dict[str, array[float]]] = [
            {c: array("d") for c in values if c != self.column} for _ in self.keys
        ]
        for column in values:
            if column != self.column:
                for v, code in zip(values[column], self.codes, strict=True):
                    parts[code][column].append(v)
        sizes = Counter(self.codes)
        family: dict[str, Any] = {}
        for key, code in sorted(self.keys.items()):
            stats: dict[str, Any] = {}
            for column in features:
                if column == self.column:
                    continue
                if column in values:
                    stats[column] = numeric_summary(parts[code][column])
                else:
                    stats[column] = self.counters[code][column].summary()
            family[key] = {"rows": sizes[code], "features": stats}
        return family


class _Gathering:
    """Pass 2: every numeric value, every string count, overall and per slice."""

    def __init__(
        self, path: Path, features: Sequence[str], numeric: set[str], slices: Sequence[str]
    ) -> None:
        self.path = path
        self.features = features
        self.values = {c: array("d") for c in features if c in numeric}
        self.counters = {c: ValueCounter() for c in features if c not in numeric}
        self.slices = [_Slices(s, list(self.counters)) for s in slices]

    def add(self, row: Mapping[str, Cell]) -> None:
        codes = [(s, s.code_of(row)) for s in self.slices]
        nan = math.nan
        try:
            for column, column_values in self.values.items():
                cell = row.get(column)
                # Pass 1 found every present value of this column numeric and finite.
                column_values.append(nan if cell is None else float(cell))
        except ValueError as exc:
            raise BadInputError(f"{self.path}: changed while being analyzed") from exc
        for column, counter in self.counters.items():
            cell = row.get(column)
            text = None if cell is None else clip_text(as_text(cell))
            counter.add(text)
            for s, code in codes:
                if column != s.column:
                    s.counters[code][column].add(text)

    def features_report(self) -> dict[str, dict[str, Any]]:
        return {
            c: numeric_summary(self.values[c]) if c in self.values else self.counters[c].summary()
            for c in self.features
        }


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
    method, k = outlier_settings(outliers, threshold)
    columns, numeric, _rows, digest = _survey(path)
    _check_columns(slices, columns, named("slice"))
    _check_columns(exclude_columns, columns, named("exclude_column"))
    excluded = set(exclude_columns)
    features = [c for c in columns if c not in excluded]
    gathering = _Gathering(path, features, numeric, list(dict.fromkeys(slices)))
    with TabularReader(path) as reader:
        for row in reader:
            gathering.add(row)
        rows, fmt = reader.rows_read, reader.format
        if reader.sha256 != digest:
            raise BadInputError(
                f"{path}: changed while being analyzed", remedy="analyze a stable copy"
            )
    feature_stats = gathering.features_report()
    values = gathering.values
    return {
        "schemaVersion": ANALYSIS_SCHEMA,
        "dataset": {"rows": rows, "columns": columns, "format": fmt, "sha256": digest},
        "features": feature_stats,
        "slices": {s.column: s.report(features, values) for s in gathering.slices},
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
                if is_outlier(x, method, k, stats[column], low, high):
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
Fence = tuple[str, float, float, Mapping[str, Any]]
"""(column, low, high, the column's statistics) of one numeric feature with fences."""


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
    method, k = outlier_settings(found["method"], found["threshold"])
    fences = [
        (column, bounds["low"], bounds["high"], report["features"][column])
        for column, bounds in found["bounds"].items()
        if bounds is not None
    ]
    per_feature: Counter[str] = Counter()
    kept, removed = _write_atomically(
        out, lambda fh: _copy_kept_rows(path, fh, fences, method, k, per_feature, expected)
    )
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


def _write_atomically(out: Path, write: Callable[[IO[str]], tuple[int, int]]) -> tuple[int, int]:
    """Run ``write`` on a temporary file beside ``out``, then move it into place."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise StoreError(f"cannot write {out}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            result = write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return result


def _copy_kept_rows(
    path: Path,
    fh: IO[str],
    fences: Sequence[Fence],
    method: str,
    k: float,
    per_feature: Counter[str],
    expected: str,
) -> tuple[int, int]:
    """Write the rows no fence flags, in the input's format; (kept, removed)."""
    kept = removed = 0
    with TabularReader(path) as reader:
        writer = None
        if reader.text_cells:
            delimiter = "\t" if reader.format == "tsv" else ","
            writer = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
            writer.writerow(reader.columns)
        for row in reader:
            if _flag(row, fences, method, k, per_feature, reader.text_cells):
                removed += 1
                continue
            kept += 1
            if writer is not None:
                writer.writerow(["" if row[c] is None else row[c] for c in reader.columns])
            else:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        if reader.sha256 != expected:
            raise BadInputError(f"{path}: changed while being transformed")
    return kept, removed


def _flag(
    row: Mapping[str, Cell],
    fences: Sequence[Fence],
    method: str,
    k: float,
    per_feature: Counter[str],
    text_cells: bool,
) -> bool:
    """Whether any fence flags the row (each flagging feature counted)."""
    flagged = False
    for column, low, high, stats in fences:
        cell = row.get(column)
        if cell is None:
            continue
        x = as_number(cell, kind_of(cell, text_cells=text_cells))
        if x is not None and is_outlier(x, method, k, stats, low, high):
            per_feature[column] += 1
            flagged = True
    return flagged
