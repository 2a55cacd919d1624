"""The ML lifecycle vocabulary: the 13 stage kinds and what each one records.

A policy names its stages freely; each stage declares a ``kind`` from this
vocabulary (or ``custom``). The kind tells users and later checks what the
stage is expected to record. See docs/stages.md.

A stage's name is also a file name in the store, so :func:`check_stage_name` is
the one rule for it; :func:`check_name` is the same refusal for the package's
other names (split roles, run ids, schema names).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

from msgspec import Struct

from mlspec_attest.errors import UsageError

STAGE_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
"""A stage name: 1 to 64 of lower-case letters, digits and ``. _ -``, starting with a
letter or digit (it becomes a file name in the store)."""
_STAGE_NAME_REMEDY: Final = "use lower-case letters, digits and . _ - (e.g. train, data-split)"


def check_name(value: str, what: str, pattern: re.Pattern[str], remedy: str) -> str:
    """``value`` if ``pattern`` matches the whole of it, else a usage error (exit 2)."""
    if not pattern.fullmatch(value):
        raise UsageError(f"{what} {value!r} is not valid", remedy=remedy)
    return value


def check_stage_name(name: str) -> str:
    """``name`` if it is a valid stage name (:data:`STAGE_NAME_RE`), else a usage error."""
    return check_name(name, "stage name", STAGE_NAME_RE, _STAGE_NAME_REMEDY)


class StageKind(StrEnum):
    """Lifecycle stage kinds, in lifecycle order."""

    OBJECTIVES = "objectives"
    INGEST = "ingest"
    ANALYZE = "analyze"
    TRANSFORM = "transform"
    VALIDATE = "validate"
    SPLIT = "split"
    TRAIN = "train"
    EVALUATE = "evaluate"
    TEST = "test"
    PACKAGE = "package"
    SERVE = "serve"
    MONITOR = "monitor"
    LOG = "log"
    CUSTOM = "custom"


class StageProfile(Struct, frozen=True):
    """What a stage kind is for and what it should record."""

    kind: StageKind
    title: str
    purpose: str
    records: tuple[str, ...]
    typical_roles: tuple[str, ...] = ()


PROFILES: dict[StageKind, StageProfile] = {
    p.kind: p
    for p in (
        StageProfile(
            StageKind.OBJECTIVES,
            "Codify objectives",
            "Model outputs, known error classes and the minimum launch criteria, as a signed document.",
            ("objectives document (product)", "criteria version"),
            ("objectives",),
        ),
        StageProfile(
            StageKind.INGEST,
            "Data ingestion",
            "Where raw data came from: connector, query, sharding, labeling or synthesis.",
            ("connector and query (parameters)", "raw dataset digest (product)", "row counts"),
            ("raw",),
        ),
        StageProfile(
            StageKind.ANALYZE,
            "Data analysis",
            "Descriptive statistics per feature and per slice; outliers found.",
            ("statistics report (product)", "outlier method and counts (details)"),
        ),
        StageProfile(
            StageKind.TRANSFORM,
            "Data transformation",
            "Feature wrangling and mappings applied; outliers removed.",
            ("mappings applied (parameters)", "rows removed (metrics)", "transformed dataset"),
            ("features",),
        ),
        StageProfile(
            StageKind.VALIDATE,
            "Data validation",
            "The dataset checked against a versioned schema; violations recorded.",
            ("schema version (parameters)", "violations (metrics)", "validation report"),
        ),
        StageProfile(
            StageKind.SPLIT,
            "Data splitting",
            "Train / validation / hold-back partitions with counts and overlap proof.",
            ("split datasets (products with roles)", "counts per split (metrics)", "seed"),
            ("train", "validation", "holdback"),
        ),
        StageProfile(
            StageKind.TRAIN,
            "Training and tuning",
            "Hyperparameters searched and chosen, search results, infrastructure used.",
            ("hyperparameters (parameters)", "model (product)", "infrastructure"),
            ("train", "model"),
        ),
        StageProfile(
            StageKind.EVALUATE,
            "Evaluation",
            "Metrics overall and per slice on the validation set.",
            ("metrics and slices", "validation dataset (material with role)"),
            ("validation", "model"),
        ),
        StageProfile(
            StageKind.TEST,
            "Test on hold-back",
            "Final confirmation on the hold-back set; always separate from evaluation.",
            ("metrics and slices", "hold-back dataset (material with role)"),
            ("holdback", "model"),
        ),
        StageProfile(
            StageKind.PACKAGE,
            "Packaging",
            "The deployable model package, conversions, infrastructure requirements.",
            ("package (product)", "format conversions", "infrastructure requirements"),
            ("model",),
        ),
        StageProfile(
            StageKind.SERVE,
            "Serving",
            "The rollout of the verified package: target, version, result.",
            ("rollout record (product)",),
        ),
        StageProfile(
            StageKind.MONITOR,
            "Monitoring",
            "Live signals and the rollback plan (which model to fall back to).",
            ("monitoring config and rollback target (product)",),
        ),
        StageProfile(
            StageKind.LOG,
            "Inference logging",
            "Per-request records bound to the verified pipeline.",
            ("log configuration or sample (product)",),
        ),
        StageProfile(
            StageKind.CUSTOM,
            "Custom stage",
            "Any stage a policy adds beyond the lifecycle vocabulary.",
            (),
        ),
    )
}

LIFECYCLE_ORDER: tuple[StageKind, ...] = tuple(k for k in StageKind if k is not StageKind.CUSTOM)


def parse_kind(value: str) -> StageKind | None:
    """The StageKind named ``value``, or None if it is not in the vocabulary."""
    try:
        return StageKind(value)
    except ValueError:
        return None
