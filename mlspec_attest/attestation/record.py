"""What one stage attests, before it is hashed and signed: the :class:`StageRecord`.

The CLI's ``sign`` and the Python API fill a record in; :func:`resolve_kind` and
:func:`check_rfc3339` are the record's own rules (a stage's name follows
:func:`mlspec_attest.formats.stages.check_stage_name`).
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from msgspec import Struct, field

from mlspec_attest._version import __version__
from mlspec_attest.errors import BadInputError, UsageError
from mlspec_attest.formats.rfc3339 import parse_rfc3339
from mlspec_attest.formats.stages import StageKind, parse_kind
from mlspec_attest.formats.statement import JSONScalar


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StageRecord(Struct):
    """Everything one stage will attest; filled in by the CLI or the Python API."""

    stage: str
    kind: str | None = None
    # A material or product is a local path, or an object store URL kept as text
    # (attestation/artifacts.py, docs/scale.md).
    materials: list[Path | str] = field(default_factory=list)
    products: list[Path | str] = field(default_factory=list)
    parameters: dict[str, JSONScalar] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    slices: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, Path | str] = field(default_factory=dict)
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


def environment_facts() -> dict[str, Any]:
    return {
        "tool": {"name": "mlspec-attest", "version": __version__},
        "python": platform.python_version(),
        "platform": sys.platform,
        "machine": platform.machine(),
    }
