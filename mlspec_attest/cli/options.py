"""Option helpers shared by several commands."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mlspec_attest.digest.scheme import ALGORITHMS, DEFAULT_SHARD_SIZE, SERIALIZATIONS
from mlspec_attest.errors import UsageError
from mlspec_attest.store.ledger import AttestationStore, default_store_path

F = TypeVar("F", bound=Callable[..., Any])


def store_option() -> Callable[[F], F]:
    return click.option(
        "--store",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Attestation store directory [env MLSPEC_ATTEST_STORE; default .mlspec/attestations].",
    )


def policy_key_option() -> Callable[[F], F]:
    """``--policy-key``: the owner keys a signed policy must carry signatures of."""
    return click.option(
        "--policy-key",
        "policy_keys",
        multiple=True,
        required=True,
        type=click.Path(path_type=Path, dir_okay=False),
        help="Owner public key; every one given must have signed the policy (repeatable).",
    )


def run_id_option(verb: str) -> Callable[[F], F]:
    """``--run-id``: which run of the store to ``verb`` (verify, export ...)."""
    return click.option(
        "--run-id",
        envvar="MLSPEC_RUN_ID",
        help=f"Run to {verb}; required when the store holds several runs [env MLSPEC_RUN_ID].",
    )


def open_store(path: Path | None) -> AttestationStore:
    """The attestation store at ``--store``, else the environment's or the default one."""
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


def digest_scheme_options(prefix: str) -> Callable[[F], F]:
    """``--{prefix}algorithm``, ``--{prefix}serialization`` and ``--shard-size``.

    Choices and defaults come from :mod:`mlspec_attest.digest.scheme`, the one registry
    (it imports nothing heavy, so ``--help`` stays fast).
    """

    def decorate(func: F) -> F:
        func = click.option(
            "--shard-size",
            "shard_size",
            envvar="MLSPEC_ATTEST_SHARD_SIZE",
            type=click.IntRange(min=1),
            default=DEFAULT_SHARD_SIZE,
            show_default=True,
            metavar="BYTES",
            help="Shard length for the shards serialization (model-signing's default) "
            "[env MLSPEC_ATTEST_SHARD_SIZE].",
        )(func)
        func = click.option(
            f"--{prefix}serialization",
            "serialization",
            envvar="MLSPEC_ATTEST_DIGEST_SERIALIZATION",
            type=click.Choice(list(SERIALIZATIONS)),
            default="files",
            show_default=True,
            help="files: one digest per file (model-signing 'files'); shards: one per "
            "--shard-size byte range, hashed in parallel (model-signing 'shards') "
            "[env MLSPEC_ATTEST_DIGEST_SERIALIZATION].",
        )(func)
        return click.option(
            f"--{prefix}algorithm",
            "algorithm",
            envvar="MLSPEC_ATTEST_DIGEST_ALGORITHM",
            type=click.Choice(list(ALGORITHMS)),
            default="sha256",
            show_default=True,
            help="Digest algorithm [env MLSPEC_ATTEST_DIGEST_ALGORITHM].",
        )(func)

    return decorate
