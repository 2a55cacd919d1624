"""Prefect: ``@mlspec_task(...)``, a Prefect ``@task`` that signs its stage when it succeeds.

::

    from prefect import flow
    from mlspec_attest.integrations.prefect import mlspec_task

    @mlspec_task("train", inputs={"train": "data/train.csv"}, outputs={"model": "model"},
                 key="keys/ml-engineer.key", params={"max_depth": 4})
    def train() -> None:
        ...

    @flow
    def pipeline() -> None:
        train()

The task's body runs, then the stage is signed in the same task run (no state hook or
event handler: those run outside the task's own code path, and a task whose signing
failed must fail). Declared inputs and outputs, run id, parameters, metrics and signer
follow :mod:`mlspec_attest.integrations.task_mapping`; the run id defaults to the root
flow run (``prefect.<flow run id>``), so a flow and its subflows sign into one run.
Tasks default to ``cache_policy=NO_CACHE``: a cached result would skip the body and
leave the run without its stage; pass ``cache_policy`` to choose otherwise.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from mlspec_attest.attestation.signers import KeylessOptions
from mlspec_attest.errors import UsageError
from mlspec_attest.integrations.task_mapping import (
    Declared,
    PathLike,
    TaskStage,
    load_framework,
    run_id_for,
    sign_task,
)

P = ParamSpec("P")
R = TypeVar("R")

_prefect = load_framework("prefect", "prefect")
_flow_run = load_framework("prefect.runtime.flow_run", "prefect")
_NO_CACHE = load_framework("prefect.cache_policies", "prefect").NO_CACHE


def flow_run_id() -> str | None:
    """The attestation run of the current Prefect flow run (its root flow run), if any."""
    root = _flow_run.root_flow_run_id or _flow_run.id
    return run_id_for("prefect", str(root)) if root else None


def mlspec_task(
    stage: str,
    *,
    inputs: Declared = None,
    outputs: Declared = None,
    key: PathLike | None = None,
    sigstore: bool | KeylessOptions = False,
    kind: str | None = None,
    params: Mapping[str, object] | None = None,
    metrics_file: PathLike | None = None,
    store: PathLike | None = None,
    run_id: str | None = None,
    policy: PathLike | None = None,
    base_dir: PathLike | None = None,
    **task_options: Any,
) -> Callable[[Callable[P, R]], Any]:
    """A decorator: the function as a Prefect task (``task_options`` go to ``@task``)
    that signs ``stage`` after its body returned; nothing is signed if it raised."""
    spec = TaskStage.declare(
        stage,
        inputs=inputs,
        outputs=outputs,
        key=key,
        sigstore=sigstore,
        kind=kind,
        params=params,
        metrics_file=metrics_file,
        store=store,
        run_id=run_id,
        policy=policy,
        base_dir=base_dir,
    )
    task_options.setdefault("cache_policy", _NO_CACHE)

    def decorate(func: Callable[P, R]) -> Any:
        if inspect.iscoroutinefunction(func):
            raise UsageError(
                f"stage {stage}: mlspec_task wraps synchronous tasks only",
                remedy="make the task a plain function (Prefect runs it in a worker thread)",
            )

        @functools.wraps(func)
        def signed(*args: P.args, **kwargs: P.kwargs) -> R:
            work = functools.partial(func, *args, **kwargs)
            return sign_task(spec, work, orchestrator_run=flow_run_id()).value

        task_options.setdefault("name", stage)
        return _prefect.task(**task_options)(signed)

    return decorate
