"""Python API for use inside a pipeline step.

Context manager::

    import mlspec_attest

    with mlspec_attest.stage("train", key="keys/trainer.key") as s:
        s.material("data/split/train.csv", role="train")
        model = fit(...)
        save(model, "model/model.pkl")
        s.product("model/model.pkl", role="model")
        s.param("max_depth", 4)
        s.metric("train_mae", 41.2)
    # signed and stored when the block exits without an exception

Decorator (the active session is reachable with ``mlspec_attest.api.current()``)::

    @mlspec_attest.stage("evaluate", key="keys/evaluator.key")
    def evaluate() -> None:
        s = mlspec_attest.api.current()
        ...

One call::

    mlspec_attest.attest("ingest", key="keys/data.key", products=["data/raw.csv"])

If the block raises, nothing is signed and the exception propagates. A decorated function
returns what the function returns; ``with`` binds the :class:`StageSession`, whose
``result`` is the :class:`SignedStage` once the block has ended.

Every value is checked, and numpy or pandas values converted to plain JSON, at the call
that records it (``mlspec_attest.formats.mlvalues``): a refusal names the parameter
(``param 'lr': ...``) instead of surfacing at signing.
"""

from __future__ import annotations

import contextvars
import functools
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from mlspec_attest.attestation.artifacts import HashingOptions, artifact_ref
from mlspec_attest.attestation.record import StageRecord
from mlspec_attest.attestation.signers import StageSigner, stage_signer
from mlspec_attest.attestation.stage import SignedStage, seen_attestations, sign_stage
from mlspec_attest.errors import UsageError
from mlspec_attest.evidence.metrics import slice_key
from mlspec_attest.evidence.metrics_file import load_metrics_file
from mlspec_attest.formats.mlvalues import count_value, json_scalar, json_value, metric_values
from mlspec_attest.policy.signed import load_signed_policy
from mlspec_attest.store.ledger import open_store

P = ParamSpec("P")
R = TypeVar("R")
PathLike = str | os.PathLike[str]

_current: contextvars.ContextVar[StageSession | None] = contextvars.ContextVar(
    "mlspec_stage", default=None
)


class StageSession:
    """Collects what one stage read, wrote and measured; signs on :meth:`finish`."""

    def __init__(
        self,
        name: str,
        *,
        key: PathLike | StageSigner | None = None,
        kind: str | None = None,
        store: PathLike | None = None,
        run_id: str | None = None,
        base_dir: PathLike | None = None,
        passphrase: bytes | None = None,
        policy: PathLike | None = None,
        policy_digest: str | None = None,
        hashing: HashingOptions | None = None,
    ) -> None:
        policy = policy or (None if policy_digest else os.environ.get("MLSPEC_ATTEST_POLICY"))
        digest = policy_digest
        if policy:
            digest = load_signed_policy(Path(policy)).digest
        self.record = StageRecord(stage=name, kind=kind, policy_digest=digest)
        self._key = key
        self._passphrase = passphrase
        self._store = open_store(Path(store) if store else None)
        self._run_id = run_id or os.environ.get("MLSPEC_RUN_ID")
        self._base = Path(base_dir) if base_dir else None
        # The digest scheme (and opt-in cache) the CLI would use: MLSPEC_ATTEST_DIGEST_*.
        self._hashing = hashing or HashingOptions.from_env()
        # What the run holds now, at the stage's start: the causal evidence for ordering.
        self.record.predecessors = seen_attestations(
            self._store, self._run_id or self._store.current_run()
        )
        self.result: SignedStage | None = None

    def material(self, path: PathLike, *, role: str | None = None) -> StageSession:
        """Record a file or directory the stage read, or an object store URL (hashed when
        the stage is signed)."""
        ref = artifact_ref(path if isinstance(path, str) else Path(path))
        self.record.materials.append(ref)
        if role:
            self.record.roles[role] = ref
        return self

    def product(self, path: PathLike, *, role: str | None = None) -> StageSession:
        """Record a file or directory the stage wrote, or an object store URL."""
        ref = artifact_ref(path if isinstance(path, str) else Path(path))
        self.record.products.append(ref)
        if role:
            self.record.roles[role] = ref
        return self

    def param(self, name: str, value: object) -> StageSession:
        """Record one parameter: a JSON scalar, or a numpy/pandas scalar converted to one."""
        self.record.parameters[name] = json_scalar(value, what=f"param {name!r}")
        return self

    def params(self, values: Mapping[str, object]) -> StageSession:
        """Record several parameters; none is recorded if one is refused."""
        checked = {name: json_scalar(v, what=f"param {name!r}") for name, v in values.items()}
        self.record.parameters.update(checked)
        return self

    def metric(self, name: str, value: object) -> StageSession:
        """Record one overall metric: a finite number (numpy scalars converted)."""
        where = f"stage {self.record.stage}"
        self.record.metrics.update(metric_values({name: value}, what=where))
        return self

    def metrics_file(self, path: PathLike) -> StageSession:
        metrics, slices = load_metrics_file(Path(path))
        self.record.metrics.update(metrics)
        self.record.slices.update(slices)
        return self

    def slice_metrics(
        self, family: str, value: object, *, count: object, metrics: Mapping[str, object]
    ) -> StageSession:
        """Metrics of one slice; ``value`` is keyed like computed documents (1.0 -> "1")."""
        where = f"slice {family}={value}"
        checked = metric_values(metrics, what=where)
        entry = {"count": count_value(count, what=f"{where}: count"), "metrics": checked}
        self.record.slices.setdefault(family, {})[slice_key(value)] = entry
        return self

    def split(self, role: str, path: PathLike) -> StageSession:
        """A data split this stage wrote; all splits get a row-level leakage proof."""
        self.record.splits[role] = Path(path)
        return self

    def conversion(self, fmt: str, path: PathLike) -> StageSession:
        """The model converted to another serving format; recorded with its digest."""
        self.record.conversions[fmt] = Path(path)
        return self

    def search(
        self,
        trials: Iterable[Mapping[str, Any]],
        *,
        method: str,
        metric: str | None = None,
        direction: str | None = None,
        best: Mapping[str, Any] | None = None,
        space: Mapping[str, Any] | None = None,
    ) -> StageSession:
        """Record a hyperparameter search: each trial is ``{"params": {...}, "score": x}``."""
        record: dict[str, Any] = {"method": method, "trials": [dict(t) for t in trials]}
        for name, value in (("metric", metric), ("direction", direction)):
            if value is not None:
                record[name] = value
        if best is not None:
            record["best"] = dict(best)
        if space is not None:
            record["space"] = dict(space)
        self.record.details["search"] = json_value(record, what="search")
        return self

    def infra(self, name: str, value: object) -> StageSession:
        """Record an infrastructure fact (any JSON value; numpy/pandas values converted)."""
        self.record.infrastructure[name] = json_value(value, what=f"infra {name!r}")
        return self

    def detail(self, name: str, value: object) -> StageSession:
        """Record any other JSON value in ``details`` (numpy/pandas values converted)."""
        self.record.details[name] = json_value(value, what=f"detail {name!r}")
        return self

    def finish(self) -> SignedStage:
        """Hash, sign and store now; return the :class:`SignedStage` (also kept as ``result``)."""
        self.result = sign_stage(
            self.record,
            stage_signer(self._key, passphrase=self._passphrase),
            self._store,
            run_id=self._run_id,
            base_dir=self._base,
            hashing=self._hashing,
        )
        return self.result


class stage:
    """Context manager and decorator that signs a stage when its body succeeds.

    ``with stage(...) as s`` binds ``s`` to the :class:`StageSession`; after the block,
    ``s.result`` is the :class:`SignedStage`. A decorated function returns what the
    function itself returns, after its stage was signed; its session is ``current()``
    while it runs.
    """

    def __init__(self, name: str, **options: Any) -> None:
        self.name = name
        self.options = options
        self._session: StageSession | None = None
        self._token: contextvars.Token[StageSession | None] | None = None

    def __enter__(self) -> StageSession:
        self._session = StageSession(self.name, **self.options)
        self._token = _current.set(self._session)
        return self._session

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None and self._token is not None
        _current.reset(self._token)
        if exc_type is None:
            self._session.finish()

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with stage(self.name, **self.options):
                return func(*args, **kwargs)

        return wrapper


def current() -> StageSession:
    """The session of the innermost active ``stage`` block or decorated function."""
    session = _current.get()
    if session is None:
        raise UsageError("no active mlspec_attest.stage() block")
    return session


def attest(
    name: str,
    *,
    key: PathLike | StageSigner | None = None,
    materials: Iterable[PathLike] = (),
    products: Iterable[PathLike] = (),
    parameters: Mapping[str, object] | None = None,
    metrics: Mapping[str, object] | None = None,
    **options: Any,
) -> SignedStage:
    """Sign one stage in a single call; return its :class:`SignedStage`."""
    session = StageSession(name, key=key, **options)
    for m in materials:
        session.material(m)
    for p in products:
        session.product(p)
    session.params(parameters or {})
    for k, v in (metrics or {}).items():
        session.metric(k, v)
    return session.finish()


StageSession.__module__ = __name__
