"""Options for data beyond one disk or one machine: object store URLs and a Dask cluster.

``ARTIFACT`` reads a material, product or ``digest`` argument as a local path or an
object store URL (``s3://bucket/prefix``); :func:`dask_options` adds
``--dask-scheduler ADDR`` and ``--dask-workers N`` (a local cluster), and
:func:`dask_session` makes the cluster they name do the hashing of the command.
``--dask-workers`` is spelt apart from ``digest --workers``, which stays the
number of local hashing threads (docs/scale.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

import click

from mlspec_attest import digest
from mlspec_attest.attestation.artifacts import ArtifactRef, artifact_ref
from mlspec_attest.cli.options import compose
from mlspec_attest.digest.dask_options import DaskOptions
from mlspec_attest.errors import MlspecError

F = TypeVar("F", bound=Callable[..., Any])


class ArtifactParam(click.ParamType[Any, Any]):
    """A local path, or an object store URL kept as text (its one spelling)."""

    name = "path|url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Path):
            return value
        try:
            return artifact_ref(str(value))
        except MlspecError as exc:
            self.fail(exc.message, param, ctx)


ARTIFACT = ArtifactParam()


def artifact_value(text: str) -> ArtifactRef:
    """The same reading for the PATH half of ``ROLE=PATH`` pairs."""
    return artifact_ref(text)


def dask_options() -> Callable[[F], F]:
    """``--dask-scheduler ADDR`` and ``--dask-workers N``, as ``dask_scheduler``/``dask_workers``."""
    return compose(
        click.option(
            "--dask-scheduler",
            envvar="MLSPEC_ATTEST_DASK_SCHEDULER",
            metavar="ADDR",
            help="Hash on this Dask cluster (tcp://host:8786); the workers need "
            "mlspec-attest and read access to the data [env MLSPEC_ATTEST_DASK_SCHEDULER].",
        ),
        click.option(
            "--dask-workers",
            type=click.IntRange(min=1),
            metavar="N",
            help="Hash on a local Dask cluster of N worker processes (needs the 'dask' extra).",
        ),
    )


def dask_session(scheduler: str | None, workers: int | None) -> AbstractContextManager[Any]:
    """The cluster the options name, active for the block (nothing when neither is given:
    the cluster's code is not even loaded)."""
    options = DaskOptions(scheduler=scheduler or None, workers=workers)
    if not options.enabled:
        return contextlib.nullcontext()
    session: AbstractContextManager[Any] = digest.session(options)
    return session
