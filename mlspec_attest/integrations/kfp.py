"""Kubeflow Pipelines v2: a lightweight component signs its own stage where it runs.

A KFP lightweight component ships its function's source into the task's container, so
the signing has to be in that source. :func:`kfp_stage` is the one line it takes::

    from kfp import dsl
    from kfp.dsl import Dataset, Input, Model, Output

    @dsl.component(packages_to_install=["mlspec-attest[kfp]"])
    def train(data: Input[Dataset], model: Output[Model], job: str, root: str) -> None:
        from mlspec_attest.integrations.kfp import kfp_stage

        with kfp_stage("train", inputs={"train": data}, outputs={"model": model},
                       key="/secrets/ml-engineer.key", pipeline_job=job, pipeline_root=root):
            ...  # write model.path

    @dsl.pipeline
    def pipeline() -> None:
        train(..., job=dsl.PIPELINE_JOB_ID_PLACEHOLDER, root=dsl.PIPELINE_ROOT_PLACEHOLDER)

Input and Output artifacts become materials and products by their ``.path`` (the local
file KFP mounts or downloads for the task), attested by name relative to the pipeline
root (``pipeline_root``, a URI mapped to its local mount by KFP's own rule), so names
read ``<job>/<task>/<output>`` in every component of a run and a policy matches them
with patterns (``*/ingest/raw``). The run id is ``kfp.<pipeline job id>`` unless
``run_id`` or ``MLSPEC_RUN_ID`` is given (:mod:`~mlspec_attest.integrations.task_mapping`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from mlspec_attest.api import StageSession
from mlspec_attest.attestation.signers import KeylessOptions
from mlspec_attest.errors import UsageError
from mlspec_attest.integrations.task_mapping import (
    PathLike,
    TaskStage,
    load_framework,
    run_id_for,
    task_session,
)

_dsl = load_framework("kfp.dsl", "kfp")

#: A declared KFP input or output: an ``Input[...]``/``Output[...]`` artifact or a path.
KfpArtifacts = Mapping[str, Any] | list[Any] | tuple[Any, ...] | None


def artifact_paths(declared: KfpArtifacts, *, what: str) -> Mapping[str, str] | list[str]:
    """KFP artifacts (anything with a ``.path``) or paths as paths, roles kept."""
    if declared is None:
        return []
    if isinstance(declared, Mapping):
        return {role: _path_of(value, what) for role, value in declared.items()}
    return [_path_of(value, what) for value in declared]


def local_root(pipeline_root: str) -> str:
    """The local directory of a pipeline root URI (``gs://``, ``minio://``, ``s3://`` are
    mounted by KFP at ``/gcs/``, ``/minio/``, ``/s3/``); a local path as it is."""
    mapped: str = _dsl.Artifact(uri=pipeline_root).path
    return mapped


@contextmanager
def kfp_stage(
    stage: str,
    *,
    inputs: KfpArtifacts = None,
    outputs: KfpArtifacts = None,
    pipeline_job: str | None = None,
    pipeline_root: str | None = None,
    key: PathLike | None = None,
    sigstore: bool | KeylessOptions = False,
    kind: str | None = None,
    params: Mapping[str, object] | None = None,
    metrics_file: PathLike | None = None,
    store: PathLike | None = None,
    run_id: str | None = None,
    policy: PathLike | None = None,
) -> Iterator[StageSession]:
    """Sign ``stage`` when the block inside a KFP component ends without an exception.

    ``pipeline_job``: the value of ``dsl.PIPELINE_JOB_ID_PLACEHOLDER``; ``pipeline_root``:
    of ``dsl.PIPELINE_ROOT_PLACEHOLDER`` (the base of attested names; default: the
    working directory). The block's value is the stage's session, for metrics.
    """
    spec = TaskStage.declare(
        stage,
        inputs=artifact_paths(inputs, what="inputs"),
        outputs=artifact_paths(outputs, what="outputs"),
        key=key,
        sigstore=sigstore,
        kind=kind,
        params=params,
        metrics_file=metrics_file,
        store=store,
        run_id=run_id,
        policy=policy,
        base_dir=local_root(pipeline_root) if pipeline_root else None,
    )
    job = run_id_for("kfp", pipeline_job) if pipeline_job else None
    with task_session(spec, orchestrator_run=job) as session:
        yield session


def _path_of(value: Any, what: str) -> str:
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    path = getattr(value, "path", None)
    if not isinstance(path, str) or not path:
        raise UsageError(
            f"{what}: {value!r} is neither a path nor a KFP artifact with a local path",
            remedy="declare Input[...]/Output[...] artifacts or file paths",
        )
    return path
