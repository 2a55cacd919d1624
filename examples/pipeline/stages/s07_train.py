"""Stage 7 - training and tuning (Python API, signed by ml-engineer).

Reads only the training split. A small grid search (5-fold CV, seeded) over a
GradientBoostingRegressor picks the hyperparameters; the refit model is saved
to ``model/`` (``model.pkl`` + ``metadata.json``). Recorded: the chosen
hyperparameters, the whole search table, CV and training metrics, and the
infrastructure the stage ran on.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

from common import (
    SEED,
    TARGET,
    features_target,
    infrastructure,
    key,
    policy_path,
    read_csv,
    regression_metrics,
    sha256_file,
    write_json,
)

import mlspec_attest

TRAIN = Path("data/split/train.csv")
MODEL = Path("model")
GRID: dict[str, list[Any]] = {
    "n_estimators": [100, 200],
    "max_depth": [2, 3],
    "learning_rate": [0.05],
    "subsample": [0.8],
    "min_samples_leaf": [5],
}
FOLDS = 5


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
        model = search.best_estimator_
        train_metrics = regression_metrics(y, model.predict(x))
        results = [
            {
                "params": {k: v for k, v in params.items() if len(GRID[k]) > 1},
                "cv_mae": round(-float(mean), 4),
                "cv_mae_std": round(float(std), 4),
            }
            for params, mean, std in zip(
                search.cv_results_["params"],
                search.cv_results_["mean_test_score"],
                search.cv_results_["std_test_score"],
                strict=True,
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
                "conversions": "none",
                "compression": "none",
            }
        )
        s.metric("cv_mae", round(-float(search.best_score_), 4))
        s.metric("cv_mae_std", results[search.best_index_]["cv_mae_std"])
        s.metric("train_mae", train_metrics["mae"])
        s.metric("train_r2", train_metrics["r2"])
        s.metric("search_seconds", round(seconds, 3))
        s.detail("search_results", results)
        s.detail("features", names)
        for k, v in infrastructure().items():
            s.infra(k, v)
        s.infra("distribution", "single process (n_jobs=1)")
        s.infra("framework", f"scikit-learn {sklearn.__version__}")
    shown = ", ".join(f"{k}={v}" for k, v in best.items() if len(GRID[k]) > 1)
    print(
        f"grid of {len(results)} x {FOLDS}-fold CV: best {shown}, "
        f"CV MAE {-search.best_score_:.1f} (train rows {x.shape[0]}) -> {MODEL}/"
    )


if __name__ == "__main__":
    main()
