"""What one stage attests, before it is hashed and signed: the :class:`StageRecord`.

The CLI's ``sign`` and the Python API fill a record in; the checks here run
before the stage's command, so a mistake costs no work.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlspec_attest._version import __version__
from mlspec_attest.errors import BadInputError, UsageError
from mlspec_attest.formats.rfc3339 import parse_rfc3339
from mlspec_attest.formats.stages import StageKind, parse_kind
from mlspec_attest.formats.statement import JSONScalar

STAGE_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_.-"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class StageRecord:
    """Everything one stage will attest; filled in by the CLI or the Python API."""

    stage: str
    kind: str | None = None
    materials: list[Path] = field(default_factory=list)
    products: list[Path] = field(default_factory=list)
    parameters: dict[str, JSONScalar] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    slices: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, Path] = field(default_factory=dict)
    infrastructure: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    policy_digest: str | None = None
    metrics_file: Path | None = None
    detail_files: dict[str, Path] = field(default_factory=dict)
    splits: dict[str, Path] = field(default_factory=dict)
    conversions: dict[str, Path] = field(default_factory=dict)
    # Evidence computed after the stage's command ran: (details key, producer).
    evidence: list[tuple[str, Callable[[], Any]]] = field(default_factory=list)
    split_exclude_columns: tuple[str, ...] = ()
    started_on: str = field(default_factory=now_rfc3339)
    # Attestations of the run that existed when the stage started (see seen_attestations).
    predecessors: dict[str, list[str]] | None = None


def check_stage_name(name: str) -> str:
    if (
        not name
        or len(name) > 64
        or not name[0].isalnum()
        or any(c not in STAGE_NAME_CHARS for c in name)
    ):
        raise UsageError(
            f"stage name {name!r} is not valid",
            remedy="use lower-case letters, digits and . _ - (e.g. train, data-split)",
        )
    return name


def parse_param(text: str) -> tuple[str, JSONScalar]:
    """``K=V``; V is read as a JSON scalar when it is one (``0.1``, ``true``), else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--param {text!r} is not KEY=VALUE")
    try:
        value = json.loads(raw)
    except ValueError:
        return key, raw
    if isinstance(value, str | int | float | bool) or value is None:
        if isinstance(value, float) and not math.isfinite(value):  # NaN, Infinity, 1e999
            return key, raw
        return key, value
    return key, raw


def resolve_kind(stage: str, kind: str | None) -> str:
    if kind is None:
        found = parse_kind(stage)
        return found.value if found else StageKind.CUSTOM.value
    if parse_kind(kind) is None:
        allowed = ", ".join(k.value for k in StageKind)
        raise UsageError(f"unknown stage kind {kind!r}", remedy=f"use one of: {allowed}")
    return kind


def check_rfc3339(value: str, what: str) -> str:
    try:
        parse_rfc3339(value)
    except ValueError as exc:
        raise BadInputError(f"{what} {value!r} is not an RFC 3339 instant") from exc
    return value


def check_roles(record: StageRecord) -> None:
    """A role naming a path no material, product, split or conversion names fails now.

    :func:`~mlspec_attest.attestation.stage.sign_stage` checks the recorded names
    again after hashing (a conversion inside a directory product is no product of
    its own, for one); this catches the rest before the stage's command runs.
    """
    named = {
        os.path.abspath(p)
        for p in (
            *record.materials,
            *record.products,
            *record.splits.values(),
            *record.conversions.values(),
        )
    }
    for role, path in record.roles.items():
        if os.path.abspath(path) not in named:
            raise UsageError(f"--role {role}={path}: not one of this stage's materials or products")


def environment_facts() -> dict[str, Any]:
    return {
        "tool": {"name": "mlspec-attest", "version": __version__},
        "python": platform.python_version(),
        "platform": sys.platform,
        "machine": platform.machine(),
    }
