"""MLflow: a run's params and metrics into a stage attestation, attestations and the
verification summary as run artifacts, and a registry alias set only for verified bytes.

* :func:`values_from_run` reads an MLflow run's params and (latest) metrics, bounded in
  count and size; :func:`record_run` feeds them to a
  :class:`~mlspec_attest.api.StageSession` (``param``/``metric``, the run named in
  ``infrastructure.mlflow``); :func:`attest_mlflow_run` signs a stage in one call
  through :func:`mlspec_attest.api.attest`. Signing is the library's, nothing else.
* :func:`log_attestations` logs a store run's attestation bundles and, if given, the
  signed verification summary (VSA) as artifacts of an MLflow run.
* :func:`promote_if_verified` sets a registered model alias (``verified``) on a model
  version only when the serving gate's own checks pass: the summary is checked by
  :func:`~mlspec_attest.serve.vsa_check.check_summary` (signature by a trusted verifier,
  PASSED, policy, age, model subject) and the version's files, downloaded from the
  registry, are hashed by :func:`~mlspec_attest.serve.gate.read_verified` and must be
  the deploy artifact the summary covers. Any failure raises
  :class:`~mlspec_attest.errors.GateDeniedError` (exit 1) and no alias is set.

MLflow is imported on first use; without it every function raises
:class:`~mlspec_attest.errors.BackendError` naming the ``mlflow`` extra (exit 4).
docs/mlflow.md shows the whole loop.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from msgspec import Struct

from mlspec_attest.api import StageSession, attest
from mlspec_attest.attestation.stage import SignedStage
from mlspec_attest.errors import BackendError, BadInputError, UsageError, require
from mlspec_attest.serve.gate import read_verified
from mlspec_attest.serve.vsa_check import GateExpectations, VerifierTrust, check_summary
from mlspec_attest.store.ledger import AttestationStore

EXTRA = "mlflow"
DEFAULT_ALIAS = "verified"
ARTIFACT_DIR = "mlspec-attest"
#: Bounds on what is read from a run (MLflow's own limits: 6000-character param values,
#: 250-character keys; a run may hold many more entries than a stage should sign).
MAX_PARAMS = 1000
MAX_METRICS = 1000
MAX_KEY_CHARS = 250
MAX_VALUE_CHARS = 6000
#: Model version tags written with the alias: what the alias was granted on.
TAG_PREFIX = "mlspec."


class RunValues(Struct, frozen=True):
    """What an MLflow run recorded: params (numbers where the text is one) and metrics."""

    run_id: str
    experiment_id: str
    params: dict[str, str | int | float]
    metrics: dict[str, float]


class Promotion(Struct, frozen=True):
    """An alias set on a model version, and the verified facts it was set for."""

    name: str
    version: str
    alias: str
    vsa_digest: str
    model_digest: str
    policy_digest: str
    run_id: str | None


def mlflow_client(tracking_uri: str | None = None, registry_uri: str | None = None) -> Any:
    """An ``MlflowClient`` (MLflow's own defaults when no URI is given)."""
    return _mlflow().MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)


# ------------------------------------------------------------------ run -> stage
def values_from_run(run_id: str, *, client: Any = None) -> RunValues:
    """The params and latest metrics of MLflow run ``run_id``, bounded and checked."""
    client = client or mlflow_client()
    run = _call(lambda: client.get_run(run_id), f"read MLflow run {run_id!r}")
    params = dict(run.data.params)
    metrics = dict(run.data.metrics)
    what = f"MLflow run {run_id}"
    _bound(params, MAX_PARAMS, f"{what}: params")
    _bound(metrics, MAX_METRICS, f"{what}: metrics")
    for name, value in params.items():
        if len(str(value)) > MAX_VALUE_CHARS:
            raise BadInputError(
                f"{what}: param {name!r} is {len(str(value))} characters, "
                f"more than {MAX_VALUE_CHARS}"
            )
    for name, number in metrics.items():
        if not isinstance(number, int | float) or not math.isfinite(number):
            raise BadInputError(f"{what}: metric {name!r} is {number!r}, not a finite number")
    return RunValues(
        run_id=run.info.run_id,
        experiment_id=str(run.info.experiment_id),
        params={k: _param(v) for k, v in sorted(params.items())},
        metrics={k: float(v) for k, v in sorted(metrics.items())},
    )


def record_run(
    session: StageSession, run_id: str, *, client: Any = None, metrics: bool = True
) -> RunValues:
    """Record run ``run_id``'s params (and metrics) in ``session``; return what was read."""
    values = values_from_run(run_id, client=client)
    session.params(values.params)
    if metrics:
        for name, value in values.metrics.items():
            session.metric(name, value)
    session.infra("mlflow", {"runId": values.run_id, "experimentId": values.experiment_id})
    return values


def attest_mlflow_run(
    name: str,
    run_id: str,
    *,
    client: Any = None,
    materials: Iterable[str | os.PathLike[str]] = (),
    products: Iterable[str | os.PathLike[str]] = (),
    **options: Any,
) -> SignedStage:
    """Sign stage ``name`` with run ``run_id``'s params and metrics, in one call.

    ``options`` are :func:`mlspec_attest.api.attest`'s (``key``, ``store``, ``run_id``
    of the attestation run as ``attestation_run``, ``base_dir``, ``policy`` ...).
    """
    values = values_from_run(run_id, client=client)
    attestation_run = options.pop("attestation_run", None)
    if attestation_run is not None:
        options["run_id"] = attestation_run
    signed = attest(
        name,
        materials=materials,
        products=products,
        parameters=values.params,
        metrics=values.metrics,
        **options,
    )
    return signed


# ------------------------------------------------------------------ evidence -> run
def log_attestations(
    run_id: str,
    store: AttestationStore,
    attestation_run: str,
    *,
    vsa: Path | None = None,
    client: Any = None,
    artifact_path: str = ARTIFACT_DIR,
) -> list[str]:
    """Log every attestation bundle of store run ``attestation_run`` (and the ``vsa``
    bundle) as artifacts of MLflow run ``run_id``; return the artifact paths logged."""
    client = client or mlflow_client()
    logged: list[str] = []
    for stored in store.attestations(attestation_run):
        _call(
            lambda p=stored.path: client.log_artifact(
                run_id, str(p), f"{artifact_path}/attestations"
            ),
            f"log {stored.path.name} to MLflow run {run_id!r}",
        )
        logged.append(f"{artifact_path}/attestations/{stored.path.name}")
    if vsa is not None:
        _call(
            lambda: client.log_artifact(run_id, str(vsa), f"{artifact_path}/vsa"),
            f"log {vsa.name} to MLflow run {run_id!r}",
        )
        logged.append(f"{artifact_path}/vsa/{vsa.name}")
    return logged


# ------------------------------------------------------------------ registry alias
def promote_if_verified(
    name: str,
    version: str | int,
    vsa: Path | bytes,
    trust: VerifierTrust,
    expect: GateExpectations | None = None,
    *,
    alias: str = DEFAULT_ALIAS,
    client: Any = None,
    max_bytes: int | None = None,
) -> Promotion:
    """Set ``alias`` on model version ``name``/``version`` if the gate's checks pass.

    The summary is checked first (nothing is downloaded for a summary that is refused);
    then the version's files are downloaded into a private temporary directory and
    hashed against the summary's model subject. Raises ``GateDeniedError`` (no alias
    set) when either fails.
    """
    if not alias:
        raise UsageError("the alias to set must not be empty")
    client = client or mlflow_client()
    checked = check_summary(vsa, trust, expect)
    version = str(version)
    _check_version_files(client, name, version, checked.subject.digest, max_bytes)
    summary = checked.summary
    _tag(
        client,
        name,
        version,
        {
            "vsa_digest": f"sha256:{checked.digest}",
            "model_digest": f"sha256:{checked.model_digest}",
            "policy_digest": f"sha256:{summary.policy_digest}",
            "run_id": summary.run_id or "",
        },
    )
    _call(
        lambda: client.set_registered_model_alias(name, alias, version),
        f"set alias {alias!r} on {name}/{version}",
    )
    return Promotion(
        name,
        version,
        alias,
        checked.digest,
        checked.model_digest,
        summary.policy_digest,
        summary.run_id,
    )


# ------------------------------------------------------------------ helpers
def _check_version_files(
    client: Any, name: str, version: str, subject: Mapping[str, str], max_bytes: int | None
) -> None:
    """Download the version's files into a private directory and hash them against the
    summary's model subject (the gate's own reader; a mismatch is a gate denial)."""
    uri = _call(
        lambda: client.get_model_version_download_uri(name, version),
        f"find model version {name}/{version}",
    )
    with tempfile.TemporaryDirectory(prefix="mlspec-mlflow-") as tmp:
        local = _call(
            lambda: _mlflow().artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp),
            f"download model version {name}/{version}",
        )
        read_verified(_model_files(Path(local), subject), subject, keep=False, max_bytes=max_bytes)


def _tag(client: Any, name: str, version: str, tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        _call(
            lambda k=key, v=value: client.set_model_version_tag(name, version, TAG_PREFIX + k, v),
            f"tag model version {name}/{version}",
        )


def _model_files(local: Path, subject: Mapping[str, str]) -> Path:
    """What to hash: the downloaded directory, or its one file when the summary's model
    is a single file (a file's digest has no ``manifest-sha256``)."""
    if "manifest-sha256" in subject or not local.is_dir():
        return local
    files = [p for p in local.rglob("*") if p.is_file() or p.is_symlink()]
    if len(files) == 1:
        return files[0]
    return local


def _param(value: str) -> str | int | float:
    """An MLflow param (always text) as the number it spells exactly, else the text."""
    text = str(value)
    try:
        number = int(text)
    except ValueError:
        pass
    else:
        if str(number) == text:
            return number
    try:
        real = float(text)
    except ValueError:
        return text
    return real if math.isfinite(real) and repr(real) == text else text


def _bound(values: Mapping[str, object], limit: int, what: str) -> None:
    if len(values) > limit:
        raise BadInputError(f"{what}: {len(values)} entries, more than {limit}")
    long = [k for k in values if len(k) > MAX_KEY_CHARS]
    if long:
        raise BadInputError(f"{what}: key {long[0][:40]!r}... longer than {MAX_KEY_CHARS}")


def _call(action: Any, what: str) -> Any:
    """Run one MLflow call; MLflow's own errors become a BackendError saying what failed."""
    mlflow = _mlflow()
    try:
        return action()
    except mlflow.exceptions.MlflowException as exc:
        raise BackendError(f"MLflow: cannot {what}: {exc.message}") from exc
    except OSError as exc:
        raise BackendError(f"MLflow: cannot {what}: {exc}") from exc


def _mlflow() -> ModuleType:
    """The ``mlflow`` package with the modules used here, or the extra that installs it."""
    mlflow = require("mlflow", "the MLflow integration")
    require("mlflow.artifacts", "the MLflow integration")
    require("mlflow.exceptions", "the MLflow integration")
    return mlflow
