#!/usr/bin/env python3
"""Airflow: ingest -> train -> evaluate, each task signing its own stage, then verify.

    pip install 'mlspec-attest[airflow]'
    python examples/integrations/airflow_dag.py [WORK_DIR]

As a script it runs the DAG as Airflow would test it, in WORK_DIR (default: a new
temporary directory): AIRFLOW_HOME is WORK_DIR/airflow (a SQLite metadata database made
by ``airflow db migrate``), the dags folder WORK_DIR/dags links to this file, and
``airflow dags test mini_pipeline`` runs every task (no scheduler, no worker). It then
signs the policy and verifies the dag run's attestations with ``mlspec-attest verify``;
it exits 0 only if that passes.

Parsed by Airflow as a DAG file, it defines the DAG ``mini_pipeline`` over the work
directory MLSPEC_EXAMPLE_WORK (mini_pipeline.py must be beside it).

It shows the three forms: ``ingest`` is an ``MlspecStageOperator`` over a python
callable, ``train`` a TaskFlow task decorated with ``@mlspec_task``, and ``evaluate`` an
``MlspecStageOperator`` that wraps another operator (a ``PythonOperator``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import mini_pipeline as mp

DAG_ID = "mini_pipeline"


def _stage_options(stage: str, work: Path) -> dict[str, Any]:
    key, inputs, outputs = mp.STAGES[stage]
    return {
        "inputs": inputs,
        "outputs": outputs,
        "key": key,
        "metrics_file": mp.METRICS_FILE.get(stage),
        "store": work / "store",
        "policy": work / "policy.signed.json",
        "base_dir": work,
    }


def build_dag(work: Path) -> Any:
    """The DAG over ``work``. Airflow is imported here, not when the file runs as a script:
    importing it sets up AIRFLOW_HOME, which the script points at ``work`` for the
    ``airflow`` commands only."""
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    from mlspec_attest.integrations.airflow import MlspecStageOperator, mlspec_task

    # Created outside the DAG: it runs inside the signing task, not as a task of its own.
    scorer = PythonOperator(task_id="score", python_callable=mp.evaluate, op_args=[work])
    with DAG(DAG_ID, schedule=None, catchup=False) as dag:
        ingest = MlspecStageOperator(
            task_id="ingest", stage="ingest", python_callable=mp.ingest, op_args=[work],
            **_stage_options("ingest", work),
        )  # fmt: skip

        @mlspec_task("train", params=mp.PARAMS["train"], **_stage_options("train", work))
        def train() -> None:
            mp.train(work)

        evaluate = MlspecStageOperator(
            task_id="evaluate", stage="evaluate", operator=scorer,
            **_stage_options("evaluate", work),
        )  # fmt: skip
        ingest >> train() >> evaluate
    return dag


def airflow_env(work: Path) -> dict[str, str]:
    """The environment of the ``airflow`` commands: everything under ``work``."""
    dags = work / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    for name in ("airflow_dag.py", "mini_pipeline.py"):
        if not (dags / name).exists():
            (dags / name).symlink_to(mp.HERE / name)
    return {
        **os.environ,
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "MLSPEC_EXAMPLE_WORK": str(work),
    }


def run(work: Path) -> str:
    """Sign the policy, run ``airflow dags test``; return the attestation run id."""
    mp.sign_policy(work)
    env = airflow_env(work)
    airflow = [sys.executable, "-m", "airflow"]
    for command in (["db", "migrate"], ["dags", "test", DAG_ID]):
        done = subprocess.run([*airflow, *command], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"airflow {' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    runs = [p.name for p in (work / "store" / "runs").iterdir()]
    if len(runs) != 1 or not runs[0].startswith(f"{DAG_ID}."):
        raise SystemExit(f"expected the attestations of one dag run, found runs {runs}")
    return runs[0]


def main(argv: list[str]) -> int:
    work = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="airflow-"))
    run_id = run(work.resolve())
    print(f"work directory: {work}")
    return mp.print_verdict(mp.verify(work, run_id))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

# Parsed by Airflow as a DAG file (not when run as a script).
if __name__ != "__main__" and "MLSPEC_EXAMPLE_WORK" in os.environ:
    dag = build_dag(Path(os.environ["MLSPEC_EXAMPLE_WORK"]))
