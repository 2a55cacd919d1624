"""Stage 10 - packaging (Python API, signed by release-engineer).

Builds the deployable package ``dist/model/`` from the tested model: the
pickle and its metadata, a portable JSON export of the same model
(``model.json``: every tree's nodes, so a server without scikit-learn or
pickle can score it; checked against the pickle on seeded probe inputs), a
model card carrying the evaluation and hold-back results, pinned runtime
requirements, and the runtime contract (resources, security constraints,
monitoring agent). The whole directory is one attested product.

Recorded: ``details.conversions`` in the typed format (each output's format,
artifact, sha256, source and tool; the JSON export's largest difference from
the pickle on 500 seeded probe rows; the package reads no data split), the
infrastructure the package needs (``s.infra``: the policy requires
``accelerator == "none"``; ``memory_gb``, ``cpus``) and ``details.requirements``
(declared and measured memory).

Signed with the Python API rather than ``mlspec-attest sign --conversion``:
a conversion recorded with ``--conversion`` becomes a product of its own, and
the policy allows package exactly one product, ``dist/model``.
"""

from __future__ import annotations

import resource
import shutil
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    SEED,
    SliceOffsetModel,
    key,
    load_model,
    policy_path,
    read_json,
    run_id,
    sha256_file,
    write_json,
)

import mlspec_attest

MODEL = Path("model")
EVALUATION = Path("reports/evaluation.json")
TEST = Path("reports/test.json")
DIST = Path("dist/model")
NAME = "diabetes-progression"
CHECK_ROWS = 500
JSON_FORMAT = "mlspec-demo/gbr-json/v1"
# What the package needs to serve (s.infra; typed keys of the stage schema).
REQUIREMENTS: dict[str, Any] = {
    "accelerator": "none",
    "cpus": 1,
    "memory_gb": 0.5,
    "replicas": 2,
    "base_image": "python:3.11-slim",
}


def export_json(model: Any, features: list[str]) -> dict[str, Any]:
    """A GradientBoostingRegressor as plain JSON: init + learning_rate * sum of trees."""
    post = None
    if isinstance(model, SliceOffsetModel):
        post = {
            "feature": features[model.feature_index],
            "equals": model.value,
            "add": model.offset,
        }
        model = model.base
    trees = []
    for estimator in model.estimators_[:, 0]:
        t = estimator.tree_
        trees.append(
            {
                "feature": t.feature.tolist(),
                "threshold": t.threshold.tolist(),
                "left": t.children_left.tolist(),
                "right": t.children_right.tolist(),
                "value": t.value[:, 0, 0].tolist(),
            }
        )
    return {
        "format": JSON_FORMAT,
        "features": features,
        "compare": "x as float32 <= threshold -> left",
        "init": float(model.init_.constant_.ravel()[0]),
        "learning_rate": float(model.learning_rate),
        "trees": trees,
        "postprocess": post,
    }


def probe_rows(doc: dict[str, Any]) -> np.ndarray:
    """Seeded random inputs spanning each feature's split thresholds (reads no data)."""
    rng = np.random.default_rng(SEED)
    columns = []
    for i, name in enumerate(doc["features"]):
        cuts = [
            t
            for tree in doc["trees"]
            for f, t in zip(tree["feature"], tree["threshold"], strict=True)
            if f == i
        ]
        low, high = (min(cuts) - 1.0, max(cuts) + 1.0) if cuts else (0.0, 1.0)
        if name == "sex":
            columns.append(rng.integers(1, 3, CHECK_ROWS).astype(np.float64))
        else:
            columns.append(rng.uniform(low, high, CHECK_ROWS))
    return np.column_stack(columns)


def predict_json(doc: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Score rows with the JSON export alone (what a non-Python server would do)."""
    x32 = x.astype(np.float32)
    out = np.full(x.shape[0], doc["init"], dtype=np.float64)
    for tree in doc["trees"]:
        for i, row in enumerate(x32):
            node = 0
            while tree["left"][node] != -1:
                go_left = row[tree["feature"][node]] <= tree["threshold"][node]
                node = tree["left"][node] if go_left else tree["right"][node]
            out[i] += doc["learning_rate"] * tree["value"][node]
    post = doc["postprocess"]
    if post:
        column = x[:, doc["features"].index(post["feature"])]
        out += np.where(column == post["equals"], post["add"], 0.0)
    return out


def build() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Write dist/model/; return (conversions, measured resources)."""
    if DIST.exists():
        shutil.rmtree(DIST)
    DIST.mkdir(parents=True)
    for name in ("model.pkl", "metadata.json"):
        shutil.copy2(MODEL / name, DIST / name)
    model, meta = load_model(MODEL)
    exported = export_json(model, meta["features"])
    write_json(DIST / "model.json", exported)
    x = probe_rows(exported)
    diff = float(np.max(np.abs(predict_json(exported, x) - model.predict(x))))
    if diff > 1e-6:
        raise SystemExit(f"package: the JSON export differs from the model by {diff}")
    source = str(MODEL / "model.pkl")
    conversions = [
        {
            "format": "sklearn-pickle",
            "artifact": str(DIST / "model.pkl"),
            "sha256": sha256_file(DIST / "model.pkl"),
            "from": source,
            "tool": "copy (pickle protocol 5, unchanged)",
        },
        {
            "format": JSON_FORMAT,
            "artifact": str(DIST / "model.json"),
            "sha256": sha256_file(DIST / "model.json"),
            "from": source,
            "tool": "examples/pipeline/stages/s10_package.py export_json",
            "notes": f"{len(exported['trees'])} trees; max |json - pickle| = {diff:.3g} "
            f"on {CHECK_ROWS} seeded probe rows",
        },
    ]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    measured = {
        "peak_rss_mib_load_and_score": round(peak_mib, 1),
        "model_pickle_bytes": (DIST / "model.pkl").stat().st_size,
        "model_json_bytes": (DIST / "model.json").stat().st_size,
    }
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
    return conversions, measured


def _results(report: dict[str, object]) -> dict[str, object]:
    return {k: report[k] for k in ("metrics", "slices", "criteria", "data")}


def main() -> None:
    with mlspec_attest.stage("package", key=key("release-engineer"), policy=policy_path()) as s:
        s.material(MODEL, role="model")
        s.material(EVALUATION, role="evaluation").material(TEST, role="test")
        conversions, measured = build()
        s.product(DIST, role="package")
        s.params(
            {
                "name": NAME,
                "format": "sklearn pickle + portable JSON export + model card",
                "signing": "mlspec-attest (DSSE, in-toto link)",
                "scikit_learn": version("scikit-learn"),
            }
        )
        for name, value in REQUIREMENTS.items():
            s.infra(name, value)
        s.detail("conversions", conversions)
        s.detail("requirements", {"declared": REQUIREMENTS, "measured": measured})
    files = sorted(p.name for p in DIST.iterdir())
    print(
        f"{len(files)} files ({', '.join(files)}); {len(conversions)} conversions recorded "
        f"({conversions[1]['notes']}); accelerator=none, memory_gb={REQUIREMENTS['memory_gb']} "
        f"-> {DIST}/"
    )


if __name__ == "__main__":
    main()
