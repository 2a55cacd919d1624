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
BOOTSTRAP = 50  # resamples for the confidence intervals of evaluate and test
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
    details: Mapping[str, Path] | None = None,
    splits: Mapping[str, Path] | None = None,
    exclude_columns: Sequence[str] = (),
    command: Sequence[str] = (),
) -> None:
    """``mlspec-attest sign ...`` (``-- COMMAND`` when given), through this interpreter.

    ``details`` embeds JSON records as ``details.NAME`` (``--detail NAME=FILE``; read
    after the wrapped command, so the command may write them). ``splits`` are data
    splits (``--split ROLE=PATH``): products with that role plus the row-level leakage
    proof, with ``exclude_columns`` left out of the row digests. The CLI's own output
    is shown only when signing (or the wrapped command) fails.
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
    argv += [a for n, f in (details or {}).items() for a in ("--detail", f"{n}={f}")]
    argv += [a for r, f in (splits or {}).items() for a in ("--split", f"{r}={f}")]
    argv += [a for c in exclude_columns for a in ("--exclude-column", c)]
    if command:
        argv += ["--", *command]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(proc.returncode)


def _text(value: JSONScalar) -> str:
    """``--param K=V`` text that the CLI reads back as ``value`` (``"3"`` stays a string)."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
    return json.dumps(value)


def work_mode() -> bool:
    """True when the script is the command wrapped by ``mlspec-attest sign -- ...``."""
    return "--work" in sys.argv[1:]


def wrapped_self(script: str) -> list[str]:
    """The command line that re-runs ``script`` in work mode under ``mlspec-attest sign``."""
    return [sys.executable, script, "--work"]


def flag(name: str) -> bool:
    """True when ``--NAME`` is on the stage script's command line."""
    return f"--{name}" in sys.argv[1:]


def record_only() -> bool:
    """``--record-only``: a failing local pre-check is printed but does not stop signing.

    The stage then honestly attests what it measured, and the deploy gate (``verify``)
    is what refuses. The demo's fairness and leakage attacks run stages this way.
    """
    return flag("record-only")


def mlspec(*args: str) -> subprocess.CompletedProcess[str]:
    """``mlspec-attest ARGS`` through this interpreter; output captured, exit status kept."""
    return subprocess.run(
        [sys.executable, "-m", "mlspec_attest", *args], capture_output=True, text=True, check=False
    )


def mlspec_ok(*args: str) -> str:
    """``mlspec-attest ARGS`` that must succeed; its stdout."""
    proc = mlspec(*args)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"mlspec-attest {' '.join(args)} exited {proc.returncode}")
    return proc.stdout


# -- the model -------------------------------------------------------------------
class SliceOffsetModel:
    """A model whose predictions are shifted by ``offset`` where ``feature == value``.

    Only the demo's fairness attack builds one (``s07_train.py --unfair``): an
    honest, openly recorded post-processing step that makes the model markedly
    worse for one sex. Defined here so every stage can unpickle it.
    """

    def __init__(self, base: Any, feature_index: int, value: float, offset: float) -> None:
        self.base = base
        self.feature_index = feature_index
        self.value = value
        self.offset = offset

    def predict(self, x: npt.ArrayLike) -> FloatArray:
        x = np.asarray(x, dtype=np.float64)
        pred = np.asarray(self.base.predict(x), dtype=np.float64)
        return pred + np.where(x[:, self.feature_index] == self.value, self.offset, 0.0)


# -- evaluation shared by the evaluate and test stages ---------------------------
OBJECTIVES = Path("objectives.yaml")


def load_model(model_dir: Path = Path("model")) -> tuple[Any, dict[str, Any]]:
    import pickle

    model = pickle.loads((model_dir / "model.pkl").read_bytes())
    return model, read_json(model_dir / "metadata.json")


def assess(
    stage: str, role: str, data_path: Path, model_dir: Path = Path("model")
) -> dict[str, Any]:
    """Score the model on one split and pre-check the signed objectives.

    Metrics come from ``mlspec_attest.evidence.metrics.regression_metrics`` (overall and per
    ``sex``, with bootstrap confidence intervals), plus ``bias`` and a
    predict-the-training-mean baseline (``baseline_mae``, ``mae_vs_baseline``). The
    metrics document goes to ``.metrics/<stage>.json`` (``sign --metrics``; outside
    every attested path). ``mlspec-attest objectives check`` then evaluates the
    criteria with this file (and the earlier evaluate file) as evidence.
    """
    from mlspec_attest.evidence.metrics import regression_metrics

    model, meta = load_model(model_dir)
    header, data = read_csv(data_path)
    names, x, y = features_target(header, data)
    if names != meta["features"]:
        raise SystemExit(
            f"{data_path}: features {names} differ from the model's {meta['features']}"
        )
    pred = np.asarray(model.predict(x), dtype=np.float64)
    sex = data[:, header.index("sex")]
    doc = regression_metrics(
        y.tolist(), pred.tolist(), slices={"sex": sex.tolist()}, bootstrap=BOOTSTRAP, seed=SEED
    )
    baseline_mae = float(np.mean(np.abs(y - meta["train_target_mean"])))
    doc["metrics"]["bias"] = float(np.mean(pred - y))
    doc["metrics"]["baseline_mae"] = baseline_mae
    doc["metrics"]["mae_vs_baseline"] = doc["metrics"]["mae"] / baseline_mae
    for value, entry in doc["slices"]["sex"].items():
        mask = sex == float(value)
        entry["metrics"]["bias"] = float(np.mean(pred[mask] - y[mask]))
    path = Path(".metrics") / f"{stage}.json"
    write_json(path, doc)

    evidence = {"evaluate": Path(".metrics/evaluate.json"), stage: path}
    args = ["objectives", "check", str(OBJECTIVES), "--json"]
    args += [a for s, f in evidence.items() if f.exists() for a in ("--evidence", f"{s}={f}")]
    proc = mlspec(*args)
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"objectives check failed to run (exit {proc.returncode})")
    check = json.loads(proc.stdout)
    criteria = [c for c in check["criteria"] if c["stage"] in evidence]
    own = [c for c in criteria if c["stage"] == stage]
    return {
        "stage": stage,
        "split": role,
        "data": {"path": str(data_path), "sha256": sha256_file(data_path)},
        "model": {"path": str(model_dir), "pickle_sha256": sha256_file(model_dir / "model.pkl")},
        "metricsFile": str(path),
        "metrics": doc["metrics"],
        "slices": doc["slices"],
        "confidenceIntervals": doc.get("confidenceIntervals", {}),
        "objectives": check["objectives"],
        "criteria": criteria,
        "passed": all(c["result"] == "pass" for c in own),
    }


def print_criteria(result: dict[str, Any]) -> int:
    """Print the pre-check; return how many of this stage's criteria failed."""
    failed = 0
    for c in result["criteria"]:
        mark = "pass" if c["result"] == "pass" else "FAIL"
        failed += c["result"] != "pass" and c["stage"] == result["stage"]
        print(f"  objectives check [{mark}] {c['id']:<26} {c['stage']:<9} {c['message']}")
    return failed
