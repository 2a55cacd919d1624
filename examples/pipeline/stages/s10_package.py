"""Stage 10 - packaging (CLI, `mlspec-attest sign ... -- python s10_package.py --work`; release-engineer).

Builds the deployable package ``dist/model/`` from the tested model: the
pickle and its metadata, a model card carrying the evaluation and hold-back
results, pinned runtime requirements, and the runtime contract (resources,
security constraints, monitoring agent). The infrastructure the package needs
is recorded with ``--infra``; the whole directory is one attested product.
"""

from __future__ import annotations

import shutil
from importlib.metadata import version
from pathlib import Path

from common import JSONScalar, cli_sign, read_json, run_id, work_mode, wrapped_self, write_json

MODEL = Path("model")
EVALUATION = Path("reports/evaluation.json")
TEST = Path("reports/test.json")
DIST = Path("dist/model")
NAME = "diabetes-progression"
REQUIREMENTS: dict[str, JSONScalar] = {
    "cpu": "1",
    "memory": "512Mi",
    "accelerator": "none",
    "base_image": "python:3.11-slim",
    "replicas": 2,
}


def work() -> None:
    if DIST.exists():
        shutil.rmtree(DIST)
    DIST.mkdir(parents=True)
    for name in ("model.pkl", "metadata.json"):
        shutil.copy2(MODEL / name, DIST / name)
    meta = read_json(MODEL / "metadata.json")
    evaluation, test = read_json(EVALUATION), read_json(TEST)
    write_json(
        DIST / "model-card.json",
        {
            "name": NAME,
            "version": f"1.0.0+{run_id()}",
            "task": "regression: disease progression one year after baseline",
            "intended_use": "ranking patients for follow-up; not a diagnostic device",
            "estimator": meta["estimator"],
            "hyperparameters": meta["hyperparameters"],
            "features": meta["features"],
            "training": {
                "rows": meta["train_rows"],
                "data_sha256": meta["train_sha256"],
                "target_mean": meta["train_target_mean"],
                "target_std": meta["train_target_std"],
            },
            "evaluation": {"split": "validation", **_results(evaluation)},
            "test": {"split": "holdback", **_results(test)},
            "limitations": "442 patients from one study; sex is the only slice attribute available",
        },
    )
    (DIST / "requirements.txt").write_text(
        f"scikit-learn=={version('scikit-learn')}\nnumpy=={version('numpy')}\n"
    )
    write_json(
        DIST / "runtime.json",
        {
            "resources": REQUIREMENTS,
            "entrypoint": "examples/pipeline/stages/s11_serve.py",
            "security": {
                "load_policy": "unpickle only after `mlspec-attest verify` passed and "
                "dist/model re-hashes to the verified digest",
                "run_as": "non-root",
                "network": "ingress only",
            },
            "monitoring_agent": {
                "name": "mlspec-monitor",
                "signals": ["liveness", "drift", "latency"],
            },
        },
    )


def _results(report: dict[str, object]) -> dict[str, object]:
    return {k: report[k] for k in ("metrics", "slices", "criteria", "data")}


def main() -> None:
    if work_mode():
        work()
        return
    cli_sign(
        "package",
        "release-engineer",
        materials=[str(MODEL), str(EVALUATION), str(TEST)],
        products=[str(DIST)],
        roles={"model": str(MODEL), "package": str(DIST)},
        params={
            "name": NAME,
            "format": "sklearn pickle + model card",
            "signing": "mlspec-attest (DSSE, in-toto link)",
            "scikit_learn": version("scikit-learn"),
        },
        infra={f"requires.{k}": v for k, v in REQUIREMENTS.items()},
        command=wrapped_self(__file__),
    )
    files = sorted(p.name for p in DIST.iterdir())
    print(f"{len(files)} files ({', '.join(files)}) -> {DIST}/")


if __name__ == "__main__":
    main()
