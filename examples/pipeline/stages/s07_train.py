"""Stage 7 - training and tuning (Python API, signed by ml-engineer).

Reads only the training split. A small grid search (5-fold CV, seeded) over a
GradientBoostingRegressor picks the hyperparameters; the refit model is saved
to ``model/`` (``model.pkl`` + ``metadata.json``). Recorded: the chosen
hyperparameters (``hp.*`` parameters), the whole search (``s.search()`` ->
``details.search``: the space, every trial with its params, CV score and rank,
and the chosen one), CV and training metrics (from
``mlspec_attest.evidence.metrics.regression_metrics``), and the infrastructure the stage
ran on.

``--unfair`` (demo attack only) adds an openly recorded post-processing step
that lowers every prediction for ``sex=2`` by 50: an honest but unfair model,
which under-predicts disease progression for one sex.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

from common import (
    SEED,
    TARGET,
    SliceOffsetModel,
    features_target,
    flag,
    infrastructure,
    key,
    policy_path,
    read_csv,
    sha256_file,
    write_json,
)

import mlspec_attest
from mlspec_attest.evidence.metrics import regression_metrics

TRAIN = Path("data/split/train.csv")
MODEL = Path("model")
GRID: dict[str, list[Any]] = {
    "n_estimators": [50, 100],
    "max_depth": [2, 3],
    "learning_rate": [0.1],
    "subsample": [0.8],
    "min_samples_leaf": [5],
}
FOLDS = 5
UNFAIR_OFFSET = -50.0  # --unfair: added to every prediction for sex=2


def main() -> None:
    import sklearn
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.model_selection import GridSearchCV, KFold

    with mlspec_attest.stage("train", key=key("ml-engineer"), policy=policy_path()) as s:
        s.material(TRAIN, role="train")
        header, data = read_csv(TRAIN)
        names, x, y = features_target(header, data)
        started = time.perf_counter()
        search = GridSearchCV(
            GradientBoostingRegressor(random_state=SEED),
            GRID,
            cv=KFold(n_splits=FOLDS, shuffle=True, random_state=SEED),
            scoring="neg_mean_absolute_error",
            n_jobs=1,
        )
        search.fit(x, y)
        seconds = time.perf_counter() - started
        model: Any = search.best_estimator_
        unfair = flag("unfair")
        if unfair:
            model = SliceOffsetModel(model, names.index("sex"), 2.0, UNFAIR_OFFSET)
        train_metrics = regression_metrics(y.tolist(), model.predict(x).tolist())["metrics"]
        results = [
            {
                "trial": i,
                "params": dict(params),
                "score": round(-float(mean), 4),  # CV mean absolute error
                "score_std": round(float(std), 4),
                "rank": int(rank),
            }
            for i, (params, mean, std, rank) in enumerate(
                zip(
                    search.cv_results_["params"],
                    search.cv_results_["mean_test_score"],
                    search.cv_results_["std_test_score"],
                    search.cv_results_["rank_test_score"],
                    strict=True,
                )
            )
        ]
        best = dict(search.best_params_)
        MODEL.mkdir(parents=True, exist_ok=True)
        (MODEL / "model.pkl").write_bytes(pickle.dumps(model, protocol=5))
        write_json(
            MODEL / "metadata.json",
            {
                "name": "diabetes-progression",
                "framework": f"scikit-learn {sklearn.__version__}",
                "estimator": "sklearn.ensemble.GradientBoostingRegressor",
                "hyperparameters": best,
                "random_state": SEED,
                "features": names,
                "target": TARGET,
                "train_rows": int(x.shape[0]),
                "train_sha256": sha256_file(TRAIN),
                "train_target_mean": round(float(y.mean()), 4),
                "train_target_std": round(float(y.std()), 4),
                "postprocess": (
                    {"feature": "sex", "equals": 2, "add": UNFAIR_OFFSET} if unfair else None
                ),
                "search": results,
            },
        )
        s.product(MODEL, role="model")
        s.params({f"hp.{k}": v for k, v in best.items()})
        s.params(
            {
                "estimator": "GradientBoostingRegressor",
                "search": "grid",
                "search_candidates": len(results),
                "cv_folds": FOLDS,
                "seed": SEED,
                "serving_format": "pickle (protocol 5)",
                "compression": "none",
                "postprocess": f"{UNFAIR_OFFSET:+} for sex=2" if unfair else "none",
            }
        )
        s.metric("cv_mae", round(-float(search.best_score_), 4))
        s.metric("cv_mae_std", results[search.best_index_]["score_std"])
        s.metric("train_mae", round(train_metrics["mae"], 4))
        s.metric("train_r2", round(train_metrics["r2"], 4))
        s.metric("search_seconds", round(seconds, 3))
        s.search(
            results,
            method="grid",
            metric=f"cv_mae ({FOLDS}-fold KFold, shuffled, seed {SEED})",
            direction="minimize",
            best={"trial": int(search.best_index_), "params": best},
            space=GRID,
        )
        s.detail("features", names)
        for k, v in infrastructure().items():
            s.infra(k, v)
        s.infra("distribution", "single process (n_jobs=1)")
        s.infra("framework", f"scikit-learn {sklearn.__version__}")
    shown = ", ".join(f"{k}={v}" for k, v in best.items() if len(GRID[k]) > 1)
    note = f"; UNFAIR: {UNFAIR_OFFSET:+.0f} on sex=2 predictions" if unfair else ""
    print(
        f"grid of {len(results)} x {FOLDS}-fold CV: best {shown}, "
        f"CV MAE {-search.best_score_:.1f} (train rows {x.shape[0]}){note} -> {MODEL}/"
    )


if __name__ == "__main__":
    main()
