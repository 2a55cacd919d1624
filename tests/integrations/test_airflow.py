"""Airflow: the operator and ``@mlspec_task`` sign inside the task, under ``airflow dags test``.

Each DAG runs through the real ``airflow`` command line in a subprocess, with
AIRFLOW_HOME (its SQLite metadata database) and the dags folder in a temporary
directory: ``airflow db migrate`` then ``airflow dags test``. This process only builds
operators, with AIRFLOW_HOME pointed at a temporary directory before Airflow is imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

# Airflow writes its configuration under AIRFLOW_HOME when imported: never in $HOME here.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="mlspec-airflow-home-"))
pytest.importorskip("airflow.sdk")

from airflow.sdk import DAG

from mlspec_attest.errors import UsageError
from mlspec_attest.integrations.airflow import MlspecStageOperator
from tests.integrations.orchestrated import (
    assert_signed_as_declared,
    example,
    statements,
    verify_run,
)

pytestmark = pytest.mark.slow

FAILING_DAG = """
from pathlib import Path

from airflow.sdk import DAG

from mlspec_attest.integrations.airflow import MlspecStageOperator, mlspec_task

WORK = Path({work!r})
KEY = {key!r}


def diverge() -> None:
    (WORK / "model.json").write_text("half a model")
    raise RuntimeError("training diverged")


with DAG("failing", schedule=None) as dag:
    MlspecStageOperator(task_id="train", stage="train", python_callable=diverge,
                        outputs={{"model": "model.json"}}, key=KEY,
                        store=WORK / "store", base_dir=WORK, retries=0)

    @mlspec_task("evaluate", outputs=["model.json"], key=KEY, store=WORK / "store",
                 base_dir=WORK, retries=0)
    def evaluate() -> None:
        raise ValueError("no model to evaluate")

    evaluate()
"""


def _dags_test(work: Path, dag_id: str, dags: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    airflow = [sys.executable, "-m", "airflow"]
    migrate = subprocess.run([*airflow, "db", "migrate"], env=env, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr
    return subprocess.run(
        [*airflow, "dags", "test", dag_id], env=env, capture_output=True, text=True
    )


def test_dag_run_signs_each_task_and_verifies(tmp_path: Path) -> None:
    run_id = example("airflow_dag").run(tmp_path)
    # <dag_id>.<dag run id>: '+' of the run id's time zone replaced, a digest appended
    assert run_id.startswith("mini_pipeline.manual__")
    assert_signed_as_declared(tmp_path, run_id)
    signed = statements(tmp_path / "store", run_id)
    assert signed["train"]["predicate"]["byproducts"]["mlspec"]["parameters"] == {
        "fit": "least-squares"
    }
    assert signed["evaluate"]["predicate"]["byproducts"]["mlspec"]["metrics"]["mae"] > 0

    (tmp_path / "model" / "model.json").write_text('{"slope": 0, "intercept": 0}\n')
    assert not verify_run(tmp_path, run_id).passed


def test_tasks_that_raise_sign_nothing(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    key = str(example("mini_pipeline").KEYS / "ml-engineer.key")
    (dags / "failing_dag.py").write_text(
        textwrap.dedent(FAILING_DAG.format(work=str(tmp_path), key=key))
    )
    done = _dags_test(tmp_path, "failing", dags)
    output = done.stdout + done.stderr
    assert "training diverged" in output
    assert "no model to evaluate" in output
    assert (tmp_path / "model.json").read_text() == "half a model"
    assert not (tmp_path / "store" / "runs").exists()


def test_operator_needs_exactly_one_kind_of_work() -> None:
    with pytest.raises(UsageError, match="exactly one"):
        MlspecStageOperator(task_id="t", stage="train", key="k.key")


def test_a_wrapped_operator_must_not_be_a_task_of_the_dag() -> None:
    with DAG("wrapping", schedule=None):
        inner = MlspecStageOperator(task_id="inner", stage="train", python_callable=print,
                                    key="k.key")  # fmt: skip
        with pytest.raises(UsageError, match="belongs to a DAG"):
            MlspecStageOperator(task_id="outer", stage="train", operator=inner, key="k.key")


def test_a_bad_declaration_fails_when_the_dag_is_parsed() -> None:
    with pytest.raises(UsageError, match="both key and sigstore"):
        MlspecStageOperator(task_id="t", stage="train", python_callable=print, key="k.key",
                            sigstore=True)  # fmt: skip
    with pytest.raises(UsageError, match="stage name"):
        MlspecStageOperator(task_id="t", stage="Train!", python_callable=print, key="k.key")
