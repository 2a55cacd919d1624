"""How one orchestrator task becomes one signed stage; no orchestrator is imported here.

Airflow, Prefect and Kubeflow Pipelines each call :func:`sign_task` from inside the task's
own process, so the same rules hold for all three:

* **Materials and products.** A task's declared inputs are the stage's materials, its
  declared outputs its products. Declared as a mapping, each key is the artifact's role
  (``{"train": "data/train.csv"}`` -> a material with role ``train``); as a list, the
  artifacts have no role. Inputs are recorded when the task starts, outputs after its work
  returned. A relative path is taken under ``base_dir`` when one is given (workers seldom
  start in the pipeline's directory), else under the task's working directory; every
  path is hashed at signing and attested by its name relative to that same directory,
  exactly as :class:`mlspec_attest.api.StageSession` does.
* **Run id.** ``run_id=`` if given, else ``MLSPEC_RUN_ID`` (as for ``sign --run-id`` and
  the Python API), else the orchestrator's own run (an Airflow dag run, a Prefect flow
  run, a KFP pipeline job) turned into a store run id by :func:`run_id_for`, so every
  task of one orchestrator run signs into one attestation run and two runs never share
  one. Without any of these the store's current run is joined (the library's rule).
* **Parameters and metrics.** ``params=`` are recorded as the stage's parameters;
  ``metrics_file=`` (a metrics document the task wrote) is read after the work, bounded
  like ``sign --metrics``. Inside the task, ``mlspec_attest.api.current()`` is the
  stage's session for anything else (``.metric()``, ``.slice_metrics()``, ``.split()``).
* **Signer.** ``key=`` (a PEM private key; default ``MLSPEC_ATTEST_KEY``) or
  ``sigstore=True`` / :class:`~mlspec_attest.attestation.signers.KeylessOptions`
  (keyless), never both. The signer is built before the task's work starts, so a
  missing key or identity token fails the task before it does anything.

Nothing is signed when the work raises: the exception propagates and the orchestrator
sees the task fail as it would without mlspec-attest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Generic, TypeVar

from msgspec import Struct, field

from mlspec_attest import api
from mlspec_attest.api import StageSession
from mlspec_attest.attestation.signers import KeylessOptions, StageSigner, stage_signer
from mlspec_attest.attestation.stage import SignedStage
from mlspec_attest.errors import UsageError, require
from mlspec_attest.formats.stages import check_stage_name
from mlspec_attest.store.ledger import MAX_RUN_ID, RUN_ID_CHARS, RUN_ID_RE

R = TypeVar("R")
PathLike = str | os.PathLike[str]
#: Declared inputs or outputs: ``{role: path}``, or paths without roles.
Declared = Mapping[str, PathLike] | Iterable[PathLike] | PathLike | None

RUN_ENV = "MLSPEC_RUN_ID"
#: Longest orchestrator run name read; longer ones are refused, not truncated silently.
MAX_RUN_NAME = 4096
_UNSAFE = re.compile(rf"[^{RUN_ID_CHARS}]+")
_TAG_LEN = 12


class Artifact(Struct, frozen=True):
    """One declared input or output: a path (or object store URL) and its role, if any."""

    path: str
    role: str | None = None


def declared_artifacts(declared: Declared, *, what: str) -> tuple[Artifact, ...]:
    """``{role: path}`` or a list of paths as :class:`Artifact` values (one path alone too)."""
    if declared is None:
        return ()
    if isinstance(declared, str | os.PathLike):
        return (Artifact(os.fspath(declared)),)
    if isinstance(declared, Mapping):
        out = []
        for role, path in declared.items():
            if not isinstance(role, str) or not isinstance(path, str | os.PathLike):
                raise UsageError(
                    f"{what}: {role!r} -> {path!r} is not a role name and a path",
                    remedy=f"declare {what} as {{'role': 'path'}} or a list of paths",
                )
            out.append(Artifact(os.fspath(path), role))
        return tuple(out)
    paths = list(declared)
    for path in paths:
        if not isinstance(path, str | os.PathLike):
            raise UsageError(f"{what}: {path!r} is not a path", remedy="pass str or Path values")
    return tuple(Artifact(os.fspath(p)) for p in paths)


def run_id_for(*parts: str) -> str:
    """A store run id for an orchestrator run named by ``parts`` (e.g. dag id, run id).

    Parts that are already valid run ids and hold no ``.`` are joined with ``.``
    unchanged; otherwise unsafe characters become ``-`` and a digest of the exact
    parts is appended, so two different runs never map to one run id.
    """
    if not parts or not all(isinstance(p, str) and p for p in parts):
        raise UsageError("an orchestrator run is named by non-empty strings", remedy="pass run_id")
    if sum(len(p) for p in parts) > MAX_RUN_NAME:
        raise UsageError(
            f"orchestrator run name longer than {MAX_RUN_NAME} characters", remedy="pass run_id"
        )
    plain = ".".join(parts)
    unambiguous = len(parts) == 1 or not any("." in p for p in parts)
    if unambiguous and RUN_ID_RE.fullmatch(plain):
        return plain
    tag = hashlib.sha256(json.dumps(list(parts)).encode()).hexdigest()[:_TAG_LEN]
    safe = _UNSAFE.sub("-", plain).lstrip("_.:-")[: MAX_RUN_ID - _TAG_LEN - 1]
    return f"{safe}-{tag}" if safe else tag


class TaskStage(Struct, frozen=True):
    """What one task signs: built once (at DAG/flow/pipeline definition), signed per run."""

    stage: str
    kind: str | None = None
    inputs: tuple[Artifact, ...] = ()
    outputs: tuple[Artifact, ...] = ()
    params: Mapping[str, object] = field(default_factory=dict)
    metrics_file: str | None = None
    key: str | None = None
    keyless: KeylessOptions | None = None
    store: str | None = None
    run_id: str | None = None
    policy: str | None = None
    base_dir: str | None = None

    @classmethod
    def declare(
        cls,
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
    ) -> TaskStage:
        """Check and normalize a task's declaration; errors surface at definition time."""
        check_stage_name(stage)
        if key is not None and sigstore:
            raise UsageError(f"stage {stage}: both key and sigstore given", remedy="pass one")
        keyless = KeylessOptions() if sigstore is True else (sigstore or None)
        return cls(
            stage=stage,
            kind=kind,
            inputs=declared_artifacts(inputs, what="inputs"),
            outputs=declared_artifacts(outputs, what="outputs"),
            params=dict(params or {}),
            metrics_file=_path(metrics_file),
            key=_path(key),
            keyless=keyless,
            store=_path(store),
            run_id=run_id,
            policy=_path(policy),
            base_dir=_path(base_dir),
        )

    def signer(self) -> StageSigner:
        """The one signer builder's answer for this task (key file, env key or keyless)."""
        return stage_signer(self.key, keyless=self.keyless)

    def located(self, path: str) -> str:
        """``path`` under ``base_dir`` if it is relative (object store URLs as they are)."""
        if self.base_dir is None or "://" in path or os.path.isabs(path):
            return path
        return os.path.join(self.base_dir, path)

    def resolve_run_id(self, orchestrator_run: str | None) -> str | None:
        """``run_id``, else ``MLSPEC_RUN_ID``, else the orchestrator's run (see module doc)."""
        return self.run_id or os.environ.get(RUN_ENV) or orchestrator_run


class SignedTask(Struct, Generic[R], frozen=True):
    """What the task's work returned, and the stage it signed."""

    value: R
    signed: SignedStage


@contextmanager
def task_session(spec: TaskStage, *, orchestrator_run: str | None = None) -> Iterator[StageSession]:
    """The stage's session around a task body: inputs recorded on entry, outputs,
    parameters and metrics after the body, signed when the block exits normally.

    If the body raises, nothing is signed and the exception propagates unchanged.
    """
    signer = spec.signer()
    options = {
        "key": signer,
        "kind": spec.kind,
        "store": spec.store,
        "run_id": spec.resolve_run_id(orchestrator_run),
        "base_dir": spec.base_dir,
        "policy": spec.policy,
    }
    with api.stage(spec.stage, **options) as session:
        for artifact in spec.inputs:
            session.material(spec.located(artifact.path), role=artifact.role)
        yield session
        for artifact in spec.outputs:
            session.product(spec.located(artifact.path), role=artifact.role)
        session.params(spec.params)
        if spec.metrics_file:
            session.metrics_file(spec.located(spec.metrics_file))


def sign_task(
    spec: TaskStage, work: Callable[[], R], *, orchestrator_run: str | None = None
) -> SignedTask[R]:
    """Run ``work`` as the stage ``spec`` describes and sign it once it has returned.

    The stage's session is :func:`mlspec_attest.api.current` while ``work`` runs. If
    ``work`` raises, nothing is signed and the exception propagates unchanged.
    """
    with task_session(spec, orchestrator_run=orchestrator_run) as session:
        value = work()
    assert session.result is not None
    return SignedTask(value, session.result)


def load_framework(module: str, extra: str) -> ModuleType:
    """Import an orchestrator's ``module``; a missing one is a BackendError (exit 4)
    naming ``mlspec-attest[extra]`` (:func:`mlspec_attest.errors.require`)."""
    return require(module, f"the {extra} integration")


def _path(value: PathLike | None) -> str | None:
    return None if value is None else os.fspath(value)
