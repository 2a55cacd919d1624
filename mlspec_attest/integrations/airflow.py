"""Airflow: ``MlspecStageOperator`` and ``@mlspec_task``, signing inside the task.

::

    from mlspec_attest.integrations.airflow import MlspecStageOperator, mlspec_task

    ingest = MlspecStageOperator(
        task_id="ingest", stage="ingest", python_callable=download,
        outputs={"raw": "data/raw.csv"}, key="/secrets/data-engineer.key",
    )

    @mlspec_task("train", inputs={"train": "data/raw.csv"}, outputs={"model": "model"},
                 key="/secrets/ml-engineer.key")
    def train() -> None:
        ...

The stage is signed in the task's own process, after its work returned and before the
task is reported successful: a signing failure fails the task, and a task that raised
signs nothing. A listener or callback would run after the task's outcome is decided and
outside its code path, so it could neither fail the task nor be sure the outputs it
hashes are the ones this task wrote.

The operator runs a ``python_callable`` (with ``op_args``/``op_kwargs``) or the
``execute`` of another ``operator`` created outside any DAG (its templates are rendered
with this task's context); ``inputs``, ``outputs``, ``op_args`` and ``op_kwargs`` are
templated. The run id is the dag run's (``<dag_id>.<run_id>``, made a valid store run id
by :func:`~mlspec_attest.integrations.task_mapping.run_id_for`) unless ``run_id`` or
``MLSPEC_RUN_ID`` is given; the rest follows
:mod:`~mlspec_attest.integrations.task_mapping`. Needs Airflow 3 (``airflow.sdk``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
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

_sdk = load_framework("airflow.sdk", "airflow")
_BaseOperator: Any = _sdk.BaseOperator

#: The stage options shared by the operator and the decorator (see task_mapping).
_STAGE_OPTIONS = (
    "key",
    "sigstore",
    "kind",
    "params",
    "metrics_file",
    "store",
    "run_id",
    "policy",
    "base_dir",
)


def dag_run_id(context: Mapping[str, Any]) -> str:
    """The attestation run of the dag run in a task's context: ``<dag_id>.<run_id>``."""
    dag_run = context["dag_run"]
    return run_id_for(str(dag_run.dag_id), str(dag_run.run_id))


class MlspecStageOperator(_BaseOperator):  # type: ignore[misc]
    """Runs a python callable or another operator's ``execute``, then signs ``stage``."""

    template_fields: Sequence[str] = ("inputs", "outputs", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        stage: str,
        python_callable: Callable[..., Any] | None = None,
        operator: Any = None,
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        inputs: Declared = None,
        outputs: Declared = None,
        key: PathLike | None = None,
        sigstore: bool | KeylessOptions = False,
        kind: str | None = None,
        stage_params: Mapping[str, object] | None = None,
        metrics_file: PathLike | None = None,
        store: PathLike | None = None,
        run_id: str | None = None,
        policy: PathLike | None = None,
        base_dir: PathLike | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (python_callable is None) == (operator is None):
            raise UsageError(f"stage {stage}: pass python_callable or operator (exactly one)")
        if operator is not None and operator.has_dag():
            raise UsageError(
                f"stage {stage}: the wrapped operator {operator.task_id!r} belongs to a DAG",
                remedy="create it outside the DAG: it runs inside this task, not as its own",
            )
        self.stage = stage
        self.python_callable = python_callable
        self.operator = operator
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.inputs = inputs
        self.outputs = outputs
        self.stage_options: dict[str, Any] = {
            "key": key,
            "sigstore": sigstore,
            "kind": kind,
            "params": stage_params,
            "metrics_file": metrics_file,
            "store": store,
            "run_id": run_id,
            "policy": policy,
            "base_dir": base_dir,
        }
        self._declare()  # a wrong declaration fails when the DAG is parsed

    def _declare(self) -> TaskStage:
        return TaskStage.declare(
            self.stage, inputs=self.inputs, outputs=self.outputs, **self.stage_options
        )

    def execute(self, context: Any) -> Any:
        work = functools.partial(self._work, context)
        return sign_task(self._declare(), work, orchestrator_run=dag_run_id(context)).value

    def _work(self, context: Any) -> Any:
        if self.operator is not None:
            self.operator.render_template_fields(context)
            return self.operator.execute(context)
        assert self.python_callable is not None
        return self.python_callable(*self.op_args, **self.op_kwargs)


def mlspec_task(
    stage: str,
    *,
    inputs: Declared = None,
    outputs: Declared = None,
    **options: Any,
) -> Callable[[Callable[P, R]], Any]:
    """``@task`` (TaskFlow) that signs ``stage`` after the function returned.

    ``options``: the stage options of :class:`MlspecStageOperator` (``key``, ``sigstore``,
    ``kind``, ``params``, ``metrics_file``, ``store``, ``run_id``, ``policy``,
    ``base_dir``); everything else goes to ``@task`` (``task_id`` defaults to ``stage``).
    """
    stage_options = {name: options.pop(name) for name in _STAGE_OPTIONS if name in options}
    spec = TaskStage.declare(stage, inputs=inputs, outputs=outputs, **stage_options)
    options.setdefault("task_id", stage)

    def decorate(func: Callable[P, R]) -> Any:
        @functools.wraps(func)
        def signed(*args: P.args, **kwargs: P.kwargs) -> R:
            context = _sdk.get_current_context()
            work = functools.partial(func, *args, **kwargs)
            return sign_task(spec, work, orchestrator_run=dag_run_id(context)).value

        return _sdk.task(**options)(signed)

    return decorate
