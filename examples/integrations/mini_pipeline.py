"""The three-stage pipeline every orchestrator example runs: ingest -> train -> evaluate.

The stage bodies are plain functions over a work directory (tiny data, no download, no
ML library): ingest writes ``data/raw.csv``, train fits a line to it by least squares and
writes ``model/model.json``, evaluate writes ``reports/metrics.json`` (a metrics
document: ``{"metrics": {"mae": ...}}``). The orchestrator examples wrap each body in
their framework's task and sign it there; this module also signs the policy
(``policy.yaml`` beside it, with the INSECURE keys of ``keys-example/``) and verifies a
run, both through the ``mlspec-attest`` command line, as a deploy job would.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
KEYS = REPO / "keys-example"
POLICY_YAML = HERE / "policy.yaml"

#: stage -> (signing key, inputs by role, outputs by role), relative to the work directory.
STAGES: dict[str, tuple[Path, dict[str, str], dict[str, str]]] = {
    "ingest": (KEYS / "data-engineer.key", {}, {"raw": "data/raw.csv"}),
    "train": (KEYS / "ml-engineer.key", {"train": "data/raw.csv"}, {"model": "model/model.json"}),
    "evaluate": (
        KEYS / "evaluator.key",
        {"validation": "data/raw.csv", "model": "model/model.json"},
        {"report": "reports/metrics.json"},
    ),
}
PARAMS = {"train": {"fit": "least-squares"}}
METRICS_FILE = {"evaluate": "reports/metrics.json"}


def ingest(work: Path) -> None:
    """Write 40 rows of ``x,y`` with y close to 3x + 2 (deterministic)."""
    raw = work / "data" / "raw.csv"
    raw.parent.mkdir(parents=True, exist_ok=True)
    rows = [(i / 4, 3 * (i / 4) + 2 + ((i * 7) % 5 - 2) * 0.1) for i in range(40)]
    raw.write_text("x,y\n" + "".join(f"{x:.4f},{y:.4f}\n" for x, y in rows))


def _rows(work: Path) -> list[tuple[float, float]]:
    with (work / "data" / "raw.csv").open(newline="") as f:
        return [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f)]


def train(work: Path) -> dict[str, float]:
    """Fit y = a*x + b and write the model; return its coefficients."""
    rows = _rows(work)
    n = len(rows)
    mx = sum(x for x, _ in rows) / n
    my = sum(y for _, y in rows) / n
    slope = sum((x - mx) * (y - my) for x, y in rows) / sum((x - mx) ** 2 for x, _ in rows)
    model = {"slope": round(slope, 6), "intercept": round(my - slope * mx, 6)}
    out = work / "model" / "model.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(model, sort_keys=True) + "\n")
    return model


def evaluate(work: Path) -> float:
    """Mean absolute error of the model on the data, written as a metrics document."""
    model = json.loads((work / "model" / "model.json").read_text())
    rows = _rows(work)
    mae = sum(abs(model["slope"] * x + model["intercept"] - y) for x, y in rows) / len(rows)
    out = work / "reports" / "metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"metrics": {"mae": round(mae, 6)}}) + "\n")
    return mae


BODIES = {"ingest": ingest, "train": train, "evaluate": evaluate}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlspec_attest", *args], capture_output=True, text=True, check=False
    )


def sign_policy(work: Path, policy_yaml: Path = POLICY_YAML) -> Path:
    """Sign ``policy_yaml`` with the owner key into ``work/policy.signed.json``."""
    work.mkdir(parents=True, exist_ok=True)
    out = work / "policy.signed.json"
    done = _cli(
        "policy", "sign", str(policy_yaml), "--key", str(KEYS / "owner.key"), "--out", str(out)
    )
    if done.returncode != 0:
        raise SystemExit(f"policy sign failed ({done.returncode}): {done.stderr}")
    return out


def verify(work: Path, run_id: str, *, deploy: bool = True) -> dict[str, object]:
    """``mlspec-attest verify --json`` of one run (deploying ``model/model.json``)."""
    artifact = ["--artifact", f"model={work / 'model' / 'model.json'}"] if deploy else []
    done = _cli(
        "verify",
        "--policy", str(work / "policy.signed.json"),
        "--policy-key", str(KEYS / "owner.pub"),
        "--store", str(work / "store"),
        "--run-id", run_id,
        *artifact,
        "--json",
    )  # fmt: skip
    report: dict[str, object] = json.loads(done.stdout)
    report["exitCode"] = done.returncode
    return report


def print_verdict(report: dict[str, object]) -> int:
    """Print the verdict of :func:`verify`; return the process exit status for it."""
    passed = report.get("exitCode") == 0
    print(f"run {report.get('runId')}: {'PASSED' if passed else 'DENIED'}")
    for failure in report.get("failures") or []:  # type: ignore[attr-defined]
        print(f"  {failure}")
    return 0 if passed else 1
