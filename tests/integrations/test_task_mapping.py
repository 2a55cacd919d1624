"""The framework-free mapping every orchestrator integration shares (no framework needed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mlspec_attest import api
from mlspec_attest.errors import BackendError, MlspecError, UsageError
from mlspec_attest.integrations.task_mapping import (
    Artifact,
    TaskStage,
    declared_artifacts,
    load_framework,
    run_id_for,
    sign_task,
)
from mlspec_attest.store.ledger import RUN_ID_RE
from tests.integrations.orchestrated import statements
from tests.support import PROJECT_ROOT

KEY = PROJECT_ROOT / "keys-example" / "ml-engineer.key"


def test_valid_run_names_are_kept_as_they_are() -> None:
    assert run_id_for("prefect", "0b7c1e2a-9f4d-4c1e-8a55-6f0f2e4b9d10") == (
        "prefect.0b7c1e2a-9f4d-4c1e-8a55-6f0f2e4b9d10"
    )
    assert run_id_for("kfp", "42971133") == "kfp.42971133"


def test_unsafe_run_names_become_valid_and_stay_distinct() -> None:
    airflow = run_id_for("etl", "manual__2026-12-07T08:26:02.387775+00:00")
    assert RUN_ID_RE.fullmatch(airflow)
    assert airflow.startswith("etl.manual__2026-12-07T08:26:02.387775-00:00-")
    # '+' and '-' runs of one dag, and dots that could shift between the parts
    assert airflow != run_id_for("etl", "manual__2026-12-07T08:26:02.387775-00:00")
    assert run_id_for("a.b", "c") != run_id_for("a", "b.c")
    long = run_id_for("d" * 300, "r")
    assert RUN_ID_RE.fullmatch(long) and len(long) <= 128


def test_run_names_are_bounded() -> None:
    with pytest.raises(UsageError, match="longer than"):
        run_id_for("x" * 5000)
    with pytest.raises(UsageError):
        run_id_for("dag", "")


def test_declared_artifacts_keep_roles() -> None:
    assert declared_artifacts({"train": Path("d/t.csv")}, what="inputs") == (
        Artifact("d/t.csv", "train"),
    )
    assert declared_artifacts("model", what="outputs") == (Artifact("model"),)
    assert declared_artifacts(["a", Path("b")], what="outputs") == (Artifact("a"), Artifact("b"))
    with pytest.raises(UsageError, match="not a role name and a path"):
        declared_artifacts({"model": 3}, what="outputs")  # type: ignore[dict-item]


def test_run_id_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLSPEC_RUN_ID", raising=False)
    spec = TaskStage.declare("train", key=KEY)
    assert spec.resolve_run_id("orch.1") == "orch.1"
    monkeypatch.setenv("MLSPEC_RUN_ID", "from-env")
    assert spec.resolve_run_id("orch.1") == "from-env"
    assert TaskStage.declare("train", key=KEY, run_id="given").resolve_run_id("orch.1") == "given"


def test_relative_paths_are_under_base_dir(tmp_path: Path) -> None:
    spec = TaskStage.declare("train", key=KEY, base_dir=tmp_path)
    assert spec.located("model") == str(tmp_path / "model")
    assert spec.located("/abs/model") == "/abs/model"
    assert spec.located("s3://bucket/model") == "s3://bucket/model"


def test_sign_task_signs_after_the_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLSPEC_RUN_ID", raising=False)
    (tmp_path / "data.csv").write_text("x\n1\n")
    spec = TaskStage.declare(
        "train", inputs={"train": "data.csv"}, outputs={"model": "model.json"}, key=KEY,
        store=tmp_path / "store", base_dir=tmp_path, params={"depth": 3},
    )  # fmt: skip

    def work() -> str:
        (tmp_path / "model.json").write_text("{}")
        api.current().metric("loss", 0.5)
        return "done"

    result = sign_task(spec, work, orchestrator_run="orch.7")
    assert result.value == "done" and result.signed.run_id == "orch.7"
    statement = statements(tmp_path / "store", "orch.7")["train"]
    assert statement["subject"][0]["name"] == "model.json"
    assert statement["subject"][0]["digest"]["sha256"] == hashlib.sha256(b"{}").hexdigest()
    mlspec = statement["predicate"]["byproducts"]["mlspec"]
    assert mlspec["parameters"] == {"depth": 3} and mlspec["metrics"] == {"loss": 0.5}
    assert mlspec["roles"] == {"train": "data.csv", "model": "model.json"}


def test_nothing_is_signed_when_the_work_raises(tmp_path: Path) -> None:
    spec = TaskStage.declare("train", outputs=["m"], key=KEY, store=tmp_path / "store",
                             base_dir=tmp_path)  # fmt: skip

    def work() -> None:
        (tmp_path / "m").write_text("partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        sign_task(spec, work, orchestrator_run="orch.8")
    assert not (tmp_path / "store" / "runs").exists()


def test_a_missing_key_fails_before_the_work(tmp_path: Path) -> None:
    ran: list[bool] = []
    spec = TaskStage.declare("train", key=tmp_path / "absent.key", store=tmp_path / "store")
    with pytest.raises(MlspecError, match=r"absent\.key"):
        sign_task(spec, lambda: ran.append(True), orchestrator_run="orch.9")
    assert ran == []


def test_key_and_sigstore_are_exclusive() -> None:
    with pytest.raises(UsageError, match="both key and sigstore"):
        TaskStage.declare("train", key=KEY, sigstore=True)


def test_a_missing_framework_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    for name in ("airflow", "airflow.sdk"):  # as if apache-airflow were absent
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(BackendError) as caught:
        load_framework("airflow.sdk", "airflow")
    assert caught.value.remedy == "pip install 'mlspec-attest[airflow]'"
    assert "the airflow integration needs apache-airflow" in caught.value.message
