"""The Python API used inside pipeline steps: context manager, decorator, one call."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest

import mlspec_attest
from mlspec_attest import api
from mlspec_attest.errors import MalformedDocumentError, UsageError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.signing.keys import write_key_pair
from mlspec_attest.store.ledger import AttestationStore

from .support import KeyPair, Pipeline


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "ws/data").mkdir(parents=True)
    (tmp_path / "ws/data/train.csv").write_text("x,y\n1,2\n")
    return tmp_path / "ws"


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


def stored(store_dir: Path, run_id: str = "r1") -> list[StageStatement]:
    store = AttestationStore(store_dir)
    if not store.run_dir(run_id).exists():
        return []
    out = []
    for att in store.attestations(run_id):
        assert att.bundle is not None
        out.append(StageStatement.from_payload(att.bundle.envelope.payload))
    return out


def test_context_manager_signs_on_success(
    ws: Path, store_dir: Path, keys: dict[str, KeyPair]
) -> None:
    with mlspec_attest.stage(
        "train", key=keys["ml-engineer"].signer, store=store_dir, run_id="r1", base_dir=ws
    ) as s:
        assert stored(store_dir) == []  # nothing before the block ends
        s.material(ws / "data/train.csv", role="train")
        (ws / "model.pkl").write_bytes(b"model")
        s.product(ws / "model.pkl", role="model")
        s.param("max_depth", 4).params({"lr": 0.1})
        s.metric("mae", 41.2)
        s.slice_metrics("sex", "f", count=3, metrics={"mae": 40.0})
        s.infra("accelerator", "none")
        s.detail("notes", {"trials": 3})
    assert s.result is not None
    [statement] = stored(store_dir)
    assert statement == s.result.statement
    meta = statement.metadata
    assert meta.stage == "train" and meta.kind == "train" and meta.run_id == "r1"
    assert meta.parameters == {"max_depth": 4, "lr": 0.1}
    assert meta.metrics == {"mae": 41.2}
    assert meta.slices == {"sex": {"f": {"count": 3, "metrics": {"mae": 40.0}}}}
    assert meta.roles == {"train": "data/train.csv", "model": "model.pkl"}
    assert meta.infrastructure == {"accelerator": "none"}
    rows = meta.details.pop("materialRows")  # computed by sign (docs/leakage.md)
    assert list(rows["materials"]) == ["data/train.csv"]
    assert meta.details == {"notes": {"trials": 3}, "predecessors": {}}
    bundle = Bundle.from_json(load_file(s.result.path))
    assert bundle.envelope.verified_by(keys["ml-engineer"].public)


def test_context_manager_does_not_sign_when_the_body_raises(
    ws: Path, store_dir: Path, keys: dict[str, KeyPair]
) -> None:
    class TrainingDiverged(RuntimeError):
        pass

    with (
        pytest.raises(TrainingDiverged),
        mlspec_attest.stage(
            "train", key=keys["ml-engineer"].signer, store=store_dir, run_id="r1", base_dir=ws
        ) as s,
    ):
        s.product(ws / "data/train.csv")
        raise TrainingDiverged("loss is nan")
    assert s.result is None
    assert stored(store_dir) == []
    assert not (store_dir / "runs").exists()
    with pytest.raises(UsageError):
        api.current()  # the session was deactivated


def test_decorator_and_current(ws: Path, store_dir: Path, keys: dict[str, KeyPair]) -> None:
    calls = []

    @mlspec_attest.stage(
        "evaluate", key=keys["ml-reviewer"].signer, store=store_dir, run_id="r1", base_dir=ws
    )
    def evaluate(threshold: float) -> str:
        session = api.current()
        session.material(ws / "data/train.csv", role="validation")
        (ws / "report.json").write_text('{"ok": true}')
        session.product(ws / "report.json")
        session.metric("threshold", threshold)
        calls.append(session)
        return "done"

    assert evaluate.__name__ == "evaluate"
    assert evaluate(0.5) == "done"
    [statement] = stored(store_dir)
    assert statement.metadata.kind == "evaluate"
    assert statement.metadata.metrics == {"threshold": 0.5}
    assert calls[0].result is not None
    with pytest.raises(UsageError, match="no active"):
        api.current()


def test_decorated_function_that_raises_signs_nothing(
    ws: Path, store_dir: Path, keys: dict[str, KeyPair]
) -> None:
    @mlspec_attest.stage("train", key=keys["ml-engineer"].signer, store=store_dir, run_id="r1")
    def train() -> None:
        api.current().product(ws / "data/train.csv")
        raise ValueError("bad data")

    with pytest.raises(ValueError, match="bad data"):
        train()
    assert stored(store_dir) == []


def test_current_is_the_innermost_session(
    ws: Path, store_dir: Path, keys: dict[str, KeyPair]
) -> None:
    opts = {"key": keys["ml-engineer"].signer, "store": store_dir, "run_id": "r1", "base_dir": ws}
    with mlspec_attest.stage("outer", **opts) as outer:
        outer.product(ws / "data/train.csv")
        assert api.current() is outer
        with mlspec_attest.stage("inner", **opts) as inner:
            inner.product(ws / "data/train.csv")
            assert api.current() is inner
        assert api.current() is outer
    assert sorted(s.name for s in stored(store_dir)) == ["inner", "outer"]


def test_attest_one_call(ws: Path, store_dir: Path, keys: dict[str, KeyPair]) -> None:
    (ws / "raw.csv").write_text("raw")
    result = api.attest(
        "ingest",
        key=keys["data-engineer"].signer,
        products=[ws / "raw.csv"],
        parameters={"query": "select *"},
        metrics={"rows": 1},
        store=store_dir,
        run_id="r1",
        base_dir=ws,
    )
    assert result.statement.metadata.parameters == {"query": "select *"}
    assert [p.name for p in result.statement.products] == ["raw.csv"]
    assert stored(store_dir) == [result.statement]


def test_key_from_path_with_passphrase(
    tmp_path: Path, ws: Path, store_dir: Path, keys: dict[str, KeyPair]
) -> None:
    key_path, _ = write_key_pair(keys["ml-engineer"].signer, tmp_path / "enc", passphrase=b"pw")
    result = api.attest(
        "train",
        key=str(key_path),
        passphrase=b"pw",
        products=[ws / "data/train.csv"],
        store=store_dir,
        run_id="r1",
        base_dir=ws,
    )
    assert result.bundle.key_hint == keys["ml-engineer"].keyid


def test_key_and_run_id_from_the_environment(
    ws: Path, store_dir: Path, keys: dict[str, KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSPEC_ATTEST_KEY", str(keys["ml-engineer"].key_path))
    monkeypatch.setenv("MLSPEC_RUN_ID", "from-env")
    result = api.attest("train", products=[ws / "data/train.csv"], store=store_dir, base_dir=ws)
    assert result.run_id == "from-env"
    assert result.bundle.key_hint == keys["ml-engineer"].keyid


def test_policy_binding(ws: Path, store_dir: Path, pipeline: Pipeline) -> None:
    with mlspec_attest.stage(
        "train",
        key=pipeline.keys["ml-engineer"].signer,
        store=store_dir,
        run_id="r1",
        base_dir=ws,
        policy=pipeline.signed_policy_path,
    ) as s:
        s.product(ws / "data/train.csv")
    assert s.result is not None
    assert s.result.statement.metadata.policy_digest == pipeline.signed.digest


def test_no_key_is_a_usage_error(
    ws: Path, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLSPEC_ATTEST_KEY", raising=False)
    with pytest.raises(UsageError, match="no signing key"):
        api.attest("train", products=[ws / "data/train.csv"], store=store_dir)
    assert not store_dir.exists()


def test_nan_metric_is_rejected_immediately(keys: dict[str, KeyPair], store_dir: Path) -> None:
    session = api.StageSession("train", key=keys["owner"].signer, store=store_dir)
    with pytest.raises(MalformedDocumentError, match="not finite"):
        session.metric("mae", math.nan)
    with pytest.raises(MalformedDocumentError, match="not finite"):
        session.slice_metrics("sex", "f", count=1, metrics={"mae": math.inf})
    assert session.record.metrics == {}


def test_metrics_file(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    path = tmp_path / "m.json"
    path.write_text(
        '{"metrics": {"mae": 2.0}, "slices": {"age": {"old": {"count": 1, "metrics": {}}}}}'
    )
    session = api.StageSession("train", key=keys["owner"].signer, store=tmp_path / "s")
    session.metrics_file(path)
    assert session.record.metrics == {"mae": 2.0}
    assert session.record.slices == {"age": {"old": {"count": 1, "metrics": {}}}}


def test_lazy_package_attributes() -> None:
    assert mlspec_attest.stage is api.stage
    assert mlspec_attest.StageSession is api.StageSession
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mlspec_attest.nope  # noqa: B018


def test_package_attest_is_the_one_call_function() -> None:
    # The documented one-call API is ``mlspec_attest.attest(...)``; the internal module
    # ``mlspec_attest/attestation/stage.py`` must not shadow it once it has been imported.
    importlib.import_module("mlspec_attest.attestation.stage")  # what importing the API does anyway
    assert mlspec_attest.attest is api.attest
    from mlspec_attest import attest

    assert callable(attest)
