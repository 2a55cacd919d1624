#!/usr/bin/env python3
"""Kubeflow Pipelines v2: ingest -> train -> evaluate, each component signing its stage.

    pip install 'mlspec-attest[kfp]'
    python examples/integrations/kfp_pipeline.py [WORK_DIR]

Compiles the pipeline to KFP's IR YAML (``WORK_DIR/pipeline.yaml``: what a cluster
runs), then runs it with KFP's local SubprocessRunner (no cluster, no container, this
Python environment), signs the policy ``kfp_policy.yaml`` and verifies the run with
``mlspec-attest verify``. Exits 0 only if the verification passes.

Each component's body is shipped by KFP as source, so it imports what it needs itself.
The keys are the INSECURE demo keys of keys-example/; on a cluster a key comes from a
mounted secret (or sign keyless with ``sigstore=True``).
"""

# No `from __future__ import annotations`: KFP reads the components' annotations as types.
import sys
import tempfile
from pathlib import Path

import mini_pipeline as mp
from kfp import compiler, dsl, local
from kfp.dsl import Artifact, Dataset, Input, Model, Output

HERE = Path(__file__).resolve().parent
KEYS = mp.KEYS
POLICY_YAML = HERE / "kfp_policy.yaml"
#: The image a cluster runs each component in; it must have mlspec-attest[kfp] installed.
IMAGE = "python:3.11"


@dsl.component(base_image=IMAGE)
def ingest(raw: Output[Dataset], job: str, root: str, store: str, key: str) -> None:
    from mlspec_attest.integrations.kfp import kfp_stage

    with kfp_stage("ingest", outputs={"raw": raw}, key=key, store=store,
                   pipeline_job=job, pipeline_root=root):  # fmt: skip
        rows = [(i / 4, 3 * (i / 4) + 2 + ((i * 7) % 5 - 2) * 0.1) for i in range(40)]
        with open(raw.path, "w") as f:
            f.write("x,y\n" + "".join(f"{x:.4f},{y:.4f}\n" for x, y in rows))


@dsl.component(base_image=IMAGE)
def train(raw: Input[Dataset], model: Output[Model], job: str, root: str, store: str,
          key: str) -> None:  # fmt: skip
    import csv
    import json

    from mlspec_attest.integrations.kfp import kfp_stage

    with kfp_stage("train", inputs={"train": raw}, outputs={"model": model}, key=key,
                   store=store, pipeline_job=job, pipeline_root=root,
                   params={"fit": "least-squares"}):  # fmt: skip
        with open(raw.path, newline="") as f:
            rows = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f)]
        mx = sum(x for x, _ in rows) / len(rows)
        my = sum(y for _, y in rows) / len(rows)
        slope = sum((x - mx) * (y - my) for x, y in rows) / sum((x - mx) ** 2 for x, _ in rows)
        with open(model.path, "w") as f:
            json.dump({"slope": round(slope, 6), "intercept": round(my - slope * mx, 6)}, f)


@dsl.component(base_image=IMAGE)
def evaluate(raw: Input[Dataset], model: Input[Model], report: Output[Artifact], job: str,
             root: str, store: str, key: str) -> float:  # fmt: skip
    import csv
    import json

    from mlspec_attest.integrations.kfp import kfp_stage

    with kfp_stage("evaluate", inputs={"validation": raw, "model": model},
                   outputs={"report": report}, metrics_file=report.path, key=key,
                   store=store, pipeline_job=job, pipeline_root=root):  # fmt: skip
        with open(model.path) as f:
            fitted = json.load(f)
        with open(raw.path, newline="") as f:
            rows = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f)]
        mae = sum(abs(fitted["slope"] * x + fitted["intercept"] - y) for x, y in rows) / len(rows)
        with open(report.path, "w") as f:
            json.dump({"metrics": {"mae": round(mae, 6)}}, f)
    return mae


@dsl.pipeline(name="mini-pipeline")
def mini_pipeline(store: str, keys: str) -> None:
    placeholders = {"job": dsl.PIPELINE_JOB_ID_PLACEHOLDER, "root": dsl.PIPELINE_ROOT_PLACEHOLDER}
    raw = ingest(store=store, key=f"{keys}/data-engineer.key", **placeholders).outputs["raw"]
    model = train(raw=raw, store=store, key=f"{keys}/ml-engineer.key", **placeholders)
    evaluate(raw=raw, model=model.outputs["model"], store=store, key=f"{keys}/evaluator.key",
             **placeholders)  # fmt: skip


def compile_pipeline(out: Path) -> Path:
    """The pipeline as KFP IR YAML (what a Kubeflow cluster runs)."""
    compiler.Compiler().compile(mini_pipeline, package_path=str(out))
    return out


def run(work: Path) -> str:
    """Run the pipeline locally; return the attestation run id (``kfp.<job id>``)."""
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(work / "outputs"))
    mini_pipeline(store=str(work / "store"), keys=str(KEYS))
    runs = sorted((work / "store" / "runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0].name


def main() -> int:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="kfp-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"compiled: {compile_pipeline(work / 'pipeline.yaml')}")
    run_id = run(work)
    mp.sign_policy(work, POLICY_YAML)
    print(f"work directory: {work}")
    return mp.print_verdict(mp.verify(work, run_id, deploy=False))


if __name__ == "__main__":
    raise SystemExit(main())
