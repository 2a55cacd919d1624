"""Shared helpers for the example pipeline's stage scripts.

Every stage script runs with the pipeline's work directory as its current
directory, so artifact paths (``data/raw/diabetes.csv`` ...) are relative to it,
exactly as the policy names them. The orchestrator (``run_demo.py``) sets:

* ``MLSPEC_RUN_ID``        one run id shared by every stage of the run
* ``MLSPEC_ATTEST_STORE``  where signed attestations are stored
* ``MLSPEC_DEMO_KEYS``     the directory of functionary keys (default: keys-example/)
* ``MLSPEC_DEMO_POLICY``   the signed policy every attestation is bound to
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[3]
SEED = 20240601
TARGET = "target"
ID_COLUMN = "row_id"
FloatArray = npt.NDArray[np.float64]
JSONScalar = str | int | float | bool | None


def key(functionary: str) -> Path:
    """Private key of a policy functionary (product-owner, data-engineer, ...)."""
    keys = Path(os.environ.get("MLSPEC_DEMO_KEYS", REPO / "keys-example"))
    return keys / f"{functionary}.key"


def policy_path() -> Path:
    return Path(os.environ.get("MLSPEC_DEMO_POLICY", "policy/lifecycle.signed.json"))


def policy_digest() -> str:
    """``sha256:...`` of the signed policy payload: what each attestation binds to."""
    from mlspec_attest.policy.signed import load_signed_policy

    return load_signed_policy(policy_path()).digest


def run_id() -> str:
    return os.environ.get("MLSPEC_RUN_ID", "")


def infrastructure() -> dict[str, JSONScalar]:
    """Facts about where a stage ran (recorded with ``--infra`` / ``s.infra``)."""
    return {
        "accelerator": "none",
        "cpus": os.cpu_count() or 1,
        "python": platform.python_version(),
        "platform": f"{sys.platform}-{platform.machine()}",
    }


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- CSV ---------------------------------------------------------------------
def fmt(value: float) -> str:
    """Shortest exact text for a number (integers without a trailing .0)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def write_csv(path: Path, header: Sequence[str], rows: npt.ArrayLike) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for row in np.asarray(rows, dtype=np.float64):
            writer.writerow([fmt(v) for v in row])


def read_csv(path: Path) -> tuple[list[str], FloatArray]:
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        data = np.array([[float(v) for v in row] for row in reader], dtype=np.float64)
    return header, data


def columns(header: Sequence[str], data: FloatArray) -> dict[str, FloatArray]:
    return {name: data[:, i] for i, name in enumerate(header)}


def features_target(
    header: Sequence[str], data: FloatArray
) -> tuple[list[str], FloatArray, FloatArray]:
    """(feature names, X, y): every column except the row id and the target."""
    names = [h for h in header if h not in (ID_COLUMN, TARGET)]
    idx = [header.index(n) for n in names]
    return names, data[:, idx], data[:, header.index(TARGET)]


# -- JSON --------------------------------------------------------------------
def write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def metrics_file(stage: str, metrics: Mapping[str, float], slices: Mapping[str, Any]) -> Path:
    """Write a ``--metrics`` file (outside every attested path) and return its path."""
    path = Path(".metrics") / f"{stage}.json"
    write_json(path, {"metrics": dict(metrics), "slices": dict(slices)})
    return path


# -- metrics -----------------------------------------------------------------
def regression_metrics(y: FloatArray, pred: FloatArray) -> dict[str, float]:
    err = pred - y
    ss_res = float(np.sum(err**2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return {
        "mae": round(float(np.mean(np.abs(err))), 4),
        "rmse": round(float(np.sqrt(np.mean(err**2))), 4),
        "r2": round(1.0 - ss_res / ss_tot, 4) if ss_tot > 0 else 0.0,
        "bias": round(float(np.mean(err)), 4),
    }


def sex_slices(sex: FloatArray, y: FloatArray, pred: FloatArray) -> dict[str, Any]:
    """Per-sex metrics in the ``slices`` format: {"sex": {"1": {count, metrics}, ...}}."""
    out: dict[str, Any] = {}
    for value in sorted({int(v) for v in sex}):
        mask = sex == value
        out[str(value)] = {
            "count": int(mask.sum()),
            "metrics": regression_metrics(y[mask], pred[mask]),
        }
    return {"sex": out}


# -- signing with the CLI ----------------------------------------------------
def cli_sign(
    stage: str,
    functionary: str,
    *,
    materials: Sequence[str] = (),
    products: Sequence[str] = (),
    roles: Mapping[str, str] | None = None,
    params: Mapping[str, JSONScalar] | None = None,
    infra: Mapping[str, JSONScalar] | None = None,
    metrics: Path | None = None,
    command: Sequence[str] = (),
) -> None:
    """``mlspec-attest sign ...`` (``-- COMMAND`` when given), through this interpreter.

    The CLI's own output is shown only when signing (or the wrapped command) fails.
    """
    argv = [sys.executable, "-m", "mlspec_attest", "sign", "--stage", stage]
    argv += ["--key", str(key(functionary)), "--policy", str(policy_path())]
    argv += [a for m in materials for a in ("--material", m)]
    argv += [a for p in products for a in ("--product", p)]
    argv += [a for r, p in (roles or {}).items() for a in ("--role", f"{r}={p}")]
    argv += [a for k, v in (params or {}).items() for a in ("--param", f"{k}={_text(v)}")]
    argv += [a for k, v in (infra or {}).items() for a in ("--infra", f"{k}={_text(v)}")]
    if metrics is not None:
        argv += ["--metrics", str(metrics)]
    if command:
        argv += ["--", *command]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(proc.returncode)


def _text(value: JSONScalar) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def work_mode() -> bool:
    """True when the script is the command wrapped by ``mlspec-attest sign -- ...``."""
    return "--work" in sys.argv[1:]


def wrapped_self(script: str) -> list[str]:
    """The command line that re-runs ``script`` in work mode under ``mlspec-attest sign``."""
    return [sys.executable, script, "--work"]


# -- evaluation shared by the evaluate and test stages ---------------------------
def load_objectives(path: Path = Path("objectives.yaml")) -> dict[str, Any]:
    from ruamel.yaml import YAML

    doc = YAML(typ="safe").load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def _compare(value: float, op: str, limit: float) -> bool:
    return {"<=": value <= limit, ">=": value >= limit, "<": value < limit, ">": value > limit}[op]


def check_criteria(
    split: str, metrics: Mapping[str, float], slices: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Evaluate the launch criteria of objectives.yaml that apply to ``split``."""
    results: list[dict[str, Any]] = []
    for c in load_objectives()["launch_criteria"]:
        if c["split"] != split:
            continue
        family = c.get("slice")
        metric, op, limit = str(c["metric"]), str(c["op"]), float(c["value"])
        if family and metric.endswith("_gap"):
            values = [m["metrics"][metric[:-4]] for m in slices[family].values()]
            observed = round(max(values) - min(values), 4)
        elif family:
            observed = max(m["metrics"][metric] for m in slices[family].values())
        else:
            observed = float(metrics[metric])
        results.append(
            {
                "id": c["id"],
                "criterion": f"{metric}{'[' + family + ']' if family else ''} {op} {limit}",
                "observed": observed,
                "passed": _compare(observed, op, limit),
            }
        )
    return results


def assess(split: str, data_path: Path, model_dir: Path = Path("model")) -> dict[str, Any]:
    """Score the model on one split: metrics, per-sex slices, launch criteria."""
    import pickle

    model = pickle.loads((model_dir / "model.pkl").read_bytes())
    meta = read_json(model_dir / "metadata.json")
    header, data = read_csv(data_path)
    names, x, y = features_target(header, data)
    if names != meta["features"]:
        raise SystemExit(
            f"{data_path}: features {names} differ from the model's {meta['features']}"
        )
    pred = np.asarray(model.predict(x), dtype=np.float64)
    metrics: dict[str, float] = regression_metrics(y, pred)
    baseline = regression_metrics(y, np.full_like(y, meta["train_target_mean"]))
    metrics["baseline_mae"] = baseline["mae"]
    metrics["mae_vs_baseline"] = round(metrics["mae"] / baseline["mae"], 4)
    metrics["rows"] = int(y.shape[0])
    slices = sex_slices(data[:, header.index("sex")], y, pred)
    criteria = check_criteria(split, metrics, slices)
    metrics["criteria_passed"] = sum(c["passed"] for c in criteria)
    metrics["criteria_total"] = len(criteria)
    return {
        "split": split,
        "data": {"path": str(data_path), "sha256": sha256_file(data_path)},
        "model": {"path": str(model_dir), "pickle_sha256": sha256_file(model_dir / "model.pkl")},
        "metrics": metrics,
        "slices": slices,
        "criteria": criteria,
        "passed": all(c["passed"] for c in criteria),
    }
