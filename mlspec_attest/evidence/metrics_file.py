"""Reading a metrics file (``sign --metrics FILE``, ``objectives check --metrics``).

The one reader of the metrics format (docs/metrics.md): strict, bounded, finite numbers
only; a document with ``schemaVersion`` is also checked against metrics-v1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeGuard

from msgspec import Struct, field

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.evidence.metrics_document import METRICS_SCHEMA
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.formats.limits import MAX_METRICS_BYTES
from mlspec_attest.formats.schemas import schema_errors
from mlspec_attest.formats.statement import check_finite_metrics


class MetricsDocument(Struct, frozen=True):
    """What ``--metrics FILE`` contributes to a stage: overall metrics, slices, intervals."""

    metrics: dict[str, float]
    slices: dict[str, Any]
    intervals: dict[str, Any]
    omitted: dict[str, Any] = field(default_factory=dict)


_FULL_FORM_FIELDS = frozenset(
    {"metrics", "slices", "schemaVersion", "confidenceIntervals", "omitted"}
)


def read_metrics_document(path: Path) -> MetricsDocument:
    """Read ``--metrics FILE``: ``{"metrics": {...}, "slices": {...}}`` or a flat map of numbers.

    The full format (docs/metrics.md) also allows ``schemaVersion``,
    ``confidenceIntervals`` and ``omitted``, overall and per slice.
    """
    doc = load_file(
        path, what=f"metrics file {path}", max_bytes=MAX_METRICS_BYTES, kind="a metrics file"
    )
    if not isinstance(doc, dict):
        raise MalformedDocumentError(f"metrics file {path}: expected a JSON object")
    if "schemaVersion" in doc:
        validate_metrics_document(doc, what=f"metrics file {path}")
    intervals: Any = {}
    if "metrics" in doc or "slices" in doc:
        unknown = set(doc) - _FULL_FORM_FIELDS
        if unknown:
            raise MalformedDocumentError(f"metrics file {path}: unknown field(s) {sorted(unknown)}")
        metrics = doc.get("metrics", {})
        slices = doc.get("slices", {})
        intervals = doc.get("confidenceIntervals", {})
    else:
        metrics, slices = doc, {}
    if (
        not isinstance(metrics, dict)
        or not isinstance(slices, dict)
        or not isinstance(intervals, dict)
    ):
        raise MalformedDocumentError(
            f"metrics file {path}: metrics, slices and confidenceIntervals must be objects"
        )
    checked = check_finite_metrics(metrics, what=f"metrics file {path}")
    for family, members in slices.items():
        if not isinstance(members, dict):
            raise MalformedDocumentError(
                f"metrics file {path}: slice family {family!r} must be an object"
            )
        for value, entry in members.items():
            where = f"metrics file {path}: slice {family}={value}"
            if not isinstance(entry, dict) or not isinstance(entry.get("metrics"), dict):
                raise MalformedDocumentError(f"{where}: needs 'count' and 'metrics'")
            extra = set(entry) - {"count", "metrics", "confidenceIntervals", "omitted"}
            if extra:
                raise MalformedDocumentError(f"{where}: unknown field(s) {sorted(extra)}")
            count = entry.get("count")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise MalformedDocumentError(f"{where}: count must be a non-negative integer")
            check_finite_metrics(entry["metrics"], what=where)
    if "schemaVersion" not in doc and ("metrics" in doc or "slices" in doc):
        # the full form without its version: the same rules as with it
        validate_metrics_document(
            {**doc, "schemaVersion": METRICS_SCHEMA}, what=f"metrics file {path}"
        )
    omitted = doc.get("omitted", {}) if "metrics" in doc else {}
    return MetricsDocument(checked, slices, intervals, omitted if isinstance(omitted, dict) else {})


def load_metrics_file(path: Path) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics, slices) of a metrics file; see :func:`read_metrics_document`."""
    doc = read_metrics_document(path)
    return doc.metrics, doc.slices


def validate_metrics_document(doc: Any, *, what: str) -> None:
    """Check ``doc`` against metrics-v1.schema.json; raise listing every problem.

    Beyond the schema: numbers must be finite, counts must be JSON integers
    (not ``5.0``) and every interval needs ``low <= high``.
    """
    problems = [f"{_pointer(p)}: {_clip(m)}" for p, m in schema_errors("metrics-v1", doc)]
    problems += _value_problems(doc)
    if problems:
        raise MalformedDocumentError(
            f"{what}: not a valid metrics document ({len(problems)} problem(s))\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def _pointer(path: Sequence[str | int]) -> str:
    return "".join(f"/{p}" for p in path) or "(root)"


def _clip(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _value_problems(doc: Any) -> list[str]:
    problems = [f"{p}: {v!r} is not a finite number" for p, v in _non_finite(doc, "")]
    if not isinstance(doc, dict):
        return problems
    entries: list[tuple[str, Any]] = [("", doc)]
    slices = doc.get("slices")
    if isinstance(slices, dict):
        for family, members in slices.items():
            if isinstance(members, dict):
                entries += [(f"/slices/{family}/{key}", e) for key, e in members.items()]
    for where, entry in entries:
        if not isinstance(entry, dict):
            continue
        if where and isinstance(entry.get("count"), float):
            problems.append(f"{where}/count: {entry['count']!r} is not an integer")
        intervals = entry.get("confidenceIntervals")
        if not isinstance(intervals, dict):
            continue
        for name, ci in intervals.items():
            if not isinstance(ci, dict):
                continue
            at = f"{where}/confidenceIntervals/{name}"
            for key in ("resamples", "skipped"):
                if isinstance(ci.get(key), float):
                    problems.append(f"{at}/{key}: {ci[key]!r} is not an integer")
            low, high = ci.get("low"), ci.get("high")
            if _is_number(low) and _is_number(high) and low > high:
                problems.append(f"{at}: low {low!r} is above high {high!r}")
    return problems


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _non_finite(value: Any, where: str) -> list[tuple[str, float]]:
    if isinstance(value, float) and not math.isfinite(value):
        return [(where or "(root)", value)]
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in _non_finite(v, f"{where}/{k}")]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in _non_finite(v, f"{where}/{i}")]
    return []
