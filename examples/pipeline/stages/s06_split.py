"""Stage 6 - data splitting (runs, then `mlspec-attest sign --metrics ...`; data-engineer).

A seeded shuffle, stratified by ``sex``, into train (60 %), validation (20 %)
and hold-back (20 %). The split refuses to run unless validation passed.
Recorded: seed and fractions (parameters), rows and target statistics per
split and a leakage proof (no row id and no feature row in two splits) as
metrics, per-sex counts as slices, and each file's role.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from common import (
    ID_COLUMN,
    SEED,
    TARGET,
    cli_sign,
    columns,
    metrics_file,
    read_csv,
    read_json,
    write_csv,
)

FEATURES = Path("data/features/diabetes.csv")
VALIDATION_REPORT = Path("reports/validation.json")
OUT = {name: Path(f"data/split/{name}.csv") for name in ("train", "validation", "holdback")}
FRACTIONS = {"train": 0.6, "validation": 0.2, "holdback": 0.2}


def main() -> None:
    if not read_json(VALIDATION_REPORT)["passed"]:
        raise SystemExit("split: reports/validation.json says the data did not pass validation")
    header, data = read_csv(FEATURES)
    cols = columns(header, data)
    rng = np.random.default_rng(SEED)
    parts: dict[str, list[int]] = {name: [] for name in OUT}
    for value in np.unique(cols["sex"]):
        idx = rng.permutation(np.flatnonzero(cols["sex"] == value))
        n_train = round(len(idx) * FRACTIONS["train"])
        n_val = round(len(idx) * FRACTIONS["validation"])
        parts["train"] += idx[:n_train].tolist()
        parts["validation"] += idx[n_train : n_train + n_val].tolist()
        parts["holdback"] += idx[n_train + n_val :].tolist()
    for name, rows in parts.items():
        write_csv(OUT[name], header, data[sorted(rows)])

    # Leakage proof: no row id, and no identical feature vector, in two splits.
    ids = {name: set(cols[ID_COLUMN][rows].astype(int).tolist()) for name, rows in parts.items()}
    feature_idx = [i for i, h in enumerate(header) if h not in (ID_COLUMN, TARGET)]
    vectors = {name: {tuple(data[r, feature_idx]) for r in rows} for name, rows in parts.items()}
    names = list(OUT)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    overlap_ids = sum(len(ids[a] & ids[b]) for a, b in pairs)
    overlap_vectors = sum(len(vectors[a] & vectors[b]) for a, b in pairs)
    if overlap_ids or overlap_vectors:
        raise SystemExit("split: leakage between splits")

    y = cols[TARGET]
    metrics: dict[str, float] = {
        "overlap_row_ids": overlap_ids,
        "overlap_feature_rows": overlap_vectors,
    }
    for name, rows in parts.items():
        metrics[f"{name}_rows"] = len(rows)
        metrics[f"{name}_target_mean"] = round(float(y[rows].mean()), 3)
        metrics[f"{name}_target_std"] = round(float(y[rows].std()), 3)
    slices: dict[str, Any] = {"sex": {}}
    for value in (1, 2):
        counts = {f"{n}_rows": int((cols["sex"][rows] == value).sum()) for n, rows in parts.items()}
        slices["sex"][str(value)] = {"count": sum(counts.values()), "metrics": counts}

    cli_sign(
        "split",
        "data-engineer",
        materials=[str(FEATURES), str(VALIDATION_REPORT)],
        products=[str(p) for p in OUT.values()],
        roles={**{name: str(path) for name, path in OUT.items()}, "features": str(FEATURES)},
        params={
            "method": "seeded shuffle, stratified by sex",
            "seed": SEED,
            **{f"fraction.{k}": v for k, v in FRACTIONS.items()},
            "debug_set": "none",
        },
        metrics=metrics_file("split", metrics, slices),
    )
    print(
        "train/validation/holdback = "
        + "/".join(str(len(r)) for r in parts.values())
        + f" rows (seed {SEED}, stratified by sex, 0 overlapping rows) -> data/split/"
    )


if __name__ == "__main__":
    main()
