#!/usr/bin/env python3
"""Prefect: ingest -> train -> evaluate, each task signing its own stage, then verify.

    pip install 'mlspec-attest[prefect]'
    python examples/integrations/prefect_flow.py [WORK_DIR]

Runs the flow on Prefect's local engine (an ephemeral API in this process: no server, no
account), signs the policy, then runs ``mlspec-attest verify`` on the flow's run. Exits 0
only if the verification passes. WORK_DIR (default: a new temporary directory) receives
the data, the model, the store and the signed policy.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mini_pipeline as mp
from prefect import flow

from mlspec_attest.integrations.prefect import flow_run_id, mlspec_task


def signed_task(stage: str, work: Path) -> Any:
    """The Prefect task of ``stage``: its body from mini_pipeline, signed with its key."""
    key, inputs, outputs = mp.STAGES[stage]
    body: Callable[[Path], object] = mp.BODIES[stage]
    decorate = mlspec_task(
        stage,
        inputs=inputs,
        outputs=outputs,
        key=key,
        params=mp.PARAMS.get(stage),
        metrics_file=mp.METRICS_FILE.get(stage),
        store=work / "store",
        policy=work / "policy.signed.json",
        base_dir=work,
    )
    return decorate(lambda: body(work))


def build_flow(work: Path) -> Any:
    tasks = {stage: signed_task(stage, work) for stage in mp.STAGES}

    @flow(name="mini-pipeline")
    def pipeline() -> str:
        tasks["ingest"]()
        tasks["train"]()
        tasks["evaluate"]()
        run = flow_run_id()
        assert run is not None
        return run

    return pipeline


def run(work: Path) -> str:
    """Sign the policy, run the flow, return the attestation run id."""
    mp.sign_policy(work)
    run_id: str = build_flow(work)()
    return run_id


def main() -> int:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="prefect-"))
    run_id = run(work)
    print(f"work directory: {work}")
    return mp.print_verdict(mp.verify(work, run_id))


if __name__ == "__main__":
    raise SystemExit(main())
