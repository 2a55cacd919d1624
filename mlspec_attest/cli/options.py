"""Option helpers shared by several commands."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import UsageError
from ..store import AttestationStore, default_store_path

F = TypeVar("F", bound=Callable[..., Any])


def store_option() -> Callable[[F], F]:
    return click.option(
        "--store",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Attestation store directory [env MLSPEC_ATTEST_STORE; default .mlspec/attestations].",
    )


def open_store(path: Path | None) -> AttestationStore:
    return AttestationStore(path or default_store_path())


def passphrase_from_env(var: str | None) -> bytes | None:
    if not var:
        return None
    value = os.environ.get(var)
    if value is None:
        raise UsageError(f"--passphrase-env {var}: environment variable is not set")
    return value.encode()


def split_pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    """Parse repeated ``KEY=VALUE`` options."""
    out: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise UsageError(f"{option} {value!r} is not KEY=VALUE")
        if key in out:
            raise UsageError(f"{option} {key!r} given twice")
        out[key] = rest
    return out
