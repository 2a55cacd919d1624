"""Option helpers shared by several commands."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from mlspec_attest.digest.scheme import ALGORITHMS, DEFAULT_SHARD_SIZE, SERIALIZATIONS
from mlspec_attest.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

FILE = click.Path(path_type=Path, dir_okay=False)
DIRECTORY = click.Path(path_type=Path, file_okay=False)
PATH = click.Path(path_type=Path)


def compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several option decorators as one, listed in the order ``--help`` shows them."""

    def decorate(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return decorate


def file_option(*decls: str, **attrs: Any) -> Callable[[F], F]:
    """An option naming a file (not a directory), as a :class:`~pathlib.Path`."""
    return click.option(*decls, type=FILE, **attrs)


def directory_option(*decls: str, **attrs: Any) -> Callable[[F], F]:
    """An option naming a directory (not a file), as a :class:`~pathlib.Path`."""
    return click.option(*decls, type=DIRECTORY, **attrs)


def choice_option(*decls: str, choices: Sequence[str], **attrs: Any) -> Callable[[F], F]:
    """An option taking one of ``choices``; its default is shown in ``--help``."""
    return click.option(*decls, type=click.Choice(choices), show_default=True, **attrs)


def count_option(*decls: str, minimum: int, default: int, **attrs: Any) -> Callable[[F], F]:
    """A whole number of at least ``minimum``; its default is shown in ``--help``."""
    return click.option(
        *decls, type=click.IntRange(min=minimum), default=default, show_default=True, **attrs
    )


def repeatable_option(*decls: str, metavar: str, **attrs: Any) -> Callable[[F], F]:
    """An option given any number of times (``KEY=VALUE`` pairs, columns ...)."""
    return click.option(*decls, multiple=True, metavar=metavar, **attrs)


def json_option(help: str) -> Callable[[F], F]:
    """``--json``: the machine-readable result on stdout, as ``as_json``."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def quiet_option(help: str) -> Callable[[F], F]:
    """``-q``/``--quiet``: no progress bar."""
    return click.option("-q", "--quiet", is_flag=True, help=help)


def workers_option(help: str = "Hashing threads.") -> Callable[[F], F]:
    return click.option("--workers", type=click.IntRange(min=1), help=help)


def passphrase_env_option(help: str = "Env var holding the key's passphrase.") -> Callable[[F], F]:
    return click.option("--passphrase-env", metavar="VAR", help=help)


def policy_path_option(help: str) -> Callable[[F], F]:
    """``--policy``: the signed policy a command reads (``policy_path``)."""
    return file_option("--policy", "policy_path", required=True, help=help)


def sigstore_signing_options(
    *,
    sigstore_help: str,
    oidc_help: str,
    trust_config_help: str,
    staging_help: str,
    oidc_metavar: str | None = None,
    trust_config_envvar: str | None = None,
) -> Callable[[F], F]:
    """``--sigstore``, ``--identity-token``, ``--trust-config``, ``--staging``: keyless signing."""
    return compose(
        click.option("--sigstore", "use_sigstore", is_flag=True, help=sigstore_help),
        click.option(
            "--identity-token",
            metavar=oidc_metavar,
            envvar="SIGSTORE_ID_TOKEN",
            help=oidc_help,
        ),
        file_option("--trust-config", envvar=trust_config_envvar, help=trust_config_help),
        click.option("--staging", is_flag=True, help=staging_help),
    )


def store_option() -> Callable[[F], F]:
    return directory_option(
        "--store",
        default=None,
        help="Attestation store directory [env MLSPEC_ATTEST_STORE; default .mlspec/attestations].",
    )


def store_url_option() -> Callable[[F], F]:
    """``--store-url``: where the query index lives (``store_url``)."""
    return click.option(
        "--store-url",
        envvar="MLSPEC_ATTEST_STORE_URL",
        metavar="URL",
        default=None,
        help="Keep the query index in PostgreSQL: postgresql://USER@HOST[:PORT]/DB "
        "(needs the 'postgres' extra) [env MLSPEC_ATTEST_STORE_URL; default "
        "STORE/index.sqlite3].",
    )


def policy_key_option() -> Callable[[F], F]:
    """``--policy-key``: the owner keys a signed policy must carry signatures of."""
    return file_option(
        "--policy-key",
        "policy_keys",
        multiple=True,
        required=True,
        help="Owner public key; every one given must have signed the policy (repeatable).",
    )


def run_id_option(verb: str) -> Callable[[F], F]:
    """``--run-id``: which run of the store to ``verb`` (verify, export ...)."""
    return click.option(
        "--run-id",
        envvar="MLSPEC_RUN_ID",
        help=f"Run to {verb}; required when the store holds several runs [env MLSPEC_RUN_ID].",
    )


def run_options(verb: str, policy_help: str | None = None) -> Callable[[F], F]:
    """The run a command reads: ``--policy`` and ``--policy-key`` when ``policy_help`` is
    given, then ``--store`` and ``--run-id``."""
    store = (store_option(), run_id_option(verb))
    if policy_help is None:
        return compose(*store)
    return compose(policy_path_option(policy_help), policy_key_option(), *store)


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

    return compose(
        choice_option(
            f"--{prefix}algorithm",
            "algorithm",
            choices=list(ALGORITHMS),
            envvar="MLSPEC_ATTEST_DIGEST_ALGORITHM",
            default="sha256",
            help="Digest algorithm [env MLSPEC_ATTEST_DIGEST_ALGORITHM].",
        ),
        choice_option(
            f"--{prefix}serialization",
            "serialization",
            choices=list(SERIALIZATIONS),
            envvar="MLSPEC_ATTEST_DIGEST_SERIALIZATION",
            default="files",
            help="files: one digest per file (model-signing 'files'); shards: one per "
            "--shard-size byte range, hashed in parallel (model-signing 'shards') "
            "[env MLSPEC_ATTEST_DIGEST_SERIALIZATION].",
        ),
        shard_size_option(
            envvar="MLSPEC_ATTEST_SHARD_SIZE",
            help="Shard length for the shards serialization (model-signing's default) "
            "[env MLSPEC_ATTEST_SHARD_SIZE].",
        ),
    )


def shard_size_option(**attrs: Any) -> Callable[[F], F]:
    """``--shard-size BYTES``, defaulting to model-signing's shard length."""
    return count_option(
        "--shard-size",
        minimum=1,
        default=DEFAULT_SHARD_SIZE,
        metavar="BYTES",
        **attrs,
    )
