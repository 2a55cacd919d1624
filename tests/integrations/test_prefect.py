"""Prefect: tasks sign their stage inside the task run, on Prefect's local engine.

Flows run against Prefect's test harness (a temporary SQLite database and a local API
server on 127.0.0.1, no network) with PREFECT_HOME in a temporary directory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Prefect fixes its home (profiles, result storage, memo store) when imported: never $HOME
# here. Its result storage does not follow PREFECT_HOME (prefect 3.7), so it is named too.
_HOME = os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="mlspec-prefect-home-"))
os.environ.setdefault("PREFECT_RESULTS_LOCAL_STORAGE_PATH", os.path.join(_HOME, "storage"))
os.environ.setdefault("PREFECT_MEMO_STORE_PATH", os.path.join(_HOME, "memo_store.toml"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
prefect = pytest.importorskip("prefect")

from prefect.settings import (  # noqa: E402
    PREFECT_HOME,
    PREFECT_SERVER_ANALYTICS_ENABLED,
    temporary_settings,
)
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from mlspec_attest.errors import UsageError  # noqa: E402
from mlspec_attest.integrations.prefect import flow_run_id, mlspec_task  # noqa: E402
from tests.integrations.orchestrated import (  # noqa: E402
    assert_signed_as_declared,
    example,
    sha256,
    statements,
    verify_run,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    home = tmp_path_factory.mktemp("prefect-home")
    updates = {PREFECT_HOME: str(home), PREFECT_SERVER_ANALYTICS_ENABLED: False}
    with temporary_settings(updates=updates), prefect_test_harness():
        yield


def test_flow_signs_each_stage_and_verifies(engine: None, tmp_path: Path) -> None:
    run_id = example("prefect_flow").run(tmp_path)
    assert run_id.startswith("prefect.")
    assert_signed_as_declared(tmp_path, run_id)
    evaluate = statements(tmp_path / "store", run_id)["evaluate"]["predicate"]
    assert evaluate["byproducts"]["mlspec"]["metrics"]["mae"] > 0
    train = statements(tmp_path / "store", run_id)["train"]["predicate"]
    assert train["byproducts"]["mlspec"]["parameters"] == {"fit": "least-squares"}


def test_a_model_changed_after_signing_is_denied(engine: None, tmp_path: Path) -> None:
    run_id = example("prefect_flow").run(tmp_path)
    (tmp_path / "model" / "model.json").write_text('{"slope": 0, "intercept": 0}\n')
    assert not verify_run(tmp_path, run_id).passed


def test_two_flow_runs_sign_into_two_runs(engine: None, tmp_path: Path) -> None:
    flow_module = example("prefect_flow")
    first = flow_module.run(tmp_path)
    second = flow_module.build_flow(tmp_path)()
    assert first != second
    assert sorted(statements(tmp_path / "store", second)) == ["evaluate", "ingest", "train"]


def test_a_failing_task_signs_nothing(engine: None, tmp_path: Path) -> None:
    key = example("mini_pipeline").KEYS / "ml-engineer.key"
    out = tmp_path / "model.json"

    @mlspec_task("train", outputs={"model": "model.json"}, key=key, store=tmp_path / "store",
                 base_dir=tmp_path, retries=0)  # fmt: skip
    def train() -> None:
        out.write_text("half a model")
        raise RuntimeError("training diverged")

    @mlspec_task("ingest", outputs=["model.json"], key=key, store=tmp_path / "store",
                 base_dir=tmp_path)  # fmt: skip
    def after() -> None:
        pass

    @prefect.flow
    def pipeline() -> str | None:
        train()
        return flow_run_id()

    with pytest.raises(RuntimeError, match="training diverged"):
        pipeline()
    assert not (tmp_path / "store" / "runs").exists()

    @prefect.flow
    def healthy() -> str | None:
        after()
        return flow_run_id()

    run_id = healthy()
    assert run_id is not None
    signed = statements(tmp_path / "store", run_id)
    assert signed["ingest"]["subject"][0]["digest"]["sha256"] == sha256(out)


def test_async_tasks_are_refused_at_definition() -> None:
    async def fetch() -> None:
        pass

    with pytest.raises(UsageError, match="synchronous"):
        mlspec_task("ingest", key="k.key")(fetch)


def test_a_subflow_signs_into_its_parents_run(engine: None, tmp_path: Path) -> None:
    key = example("mini_pipeline").KEYS / "ml-engineer.key"
    options = {"key": key, "store": tmp_path / "store", "base_dir": tmp_path}
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")

    @mlspec_task("first", outputs=["a"], **options)
    def first() -> None:
        pass

    @mlspec_task("second", outputs=["b"], **options)
    def second() -> None:
        pass

    @prefect.flow
    def child() -> None:
        second()

    @prefect.flow
    def parent() -> str | None:
        first()
        child()
        return flow_run_id()

    run_id = parent()
    assert run_id is not None
    assert sorted(statements(tmp_path / "store", run_id)) == ["first", "second"]
