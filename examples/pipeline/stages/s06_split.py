"""Stage 6 - data splitting (runs, then `mlspec-attest sign --split ...`; data-engineer).

A seeded shuffle, stratified by ``sex``, into train (60 %), validation (20 %)
and hold-back (20 %). The split refuses to run unless validation passed.

Before signing, ``mlspec-attest leakage check`` counts the rows each pair of
splits shares (``row_id`` excluded, so a copied row cannot hide behind its id).
Signing with ``--split train=... --split validation=... --split holdback=...``
makes each file a product with that role and adds the row-level leakage proof
(``details.leakage``: per-split row digest sets, stored content-addressed, and
the attested overlaps), which ``verify`` recomputes. Also recorded: the seed and
fractions (the policy requires ``seed``), rows and target statistics per split,
per-sex counts as slices.

``--leak-holdback-row`` (demo attack only) copies one hold-back row into train;
with ``--record-only`` the failing pre-check is printed and the stage still
signs, honestly: the leakage proof records the overlap and the gate refuses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    ID_COLUMN,
    SEED,
    TARGET,
    cli_sign,
    columns,
    flag,
    metrics_file,
    mlspec,
    read_csv,
    read_json,
    record_only,
    write_csv,
)

FEATURES = Path("data/features/diabetes.csv")
VALIDATION_REPORT = Path("reports/validation.json")
OUT = {name: Path(f"data/split/{name}.csv") for name in ("train", "validation", "holdback")}
FRACTIONS = {"train": 0.6, "validation": 0.2, "holdback": 0.2}


def leakage_precheck() -> dict[str, Any]:
    """``mlspec-attest leakage check`` on the written splits (nothing is stored)."""
    args = [f"{name}={path}" for name, path in OUT.items()]
    proc = mlspec("leakage", "check", *args, "--exclude-column", ID_COLUMN, "--json")
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"leakage check failed to run (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


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
    leaked = flag("leak-holdback-row")
    if leaked:  # the demo's leakage attack: a buggy split copies a hold-back row into train
        parts["train"].append(min(parts["holdback"]))
    for name, rows in parts.items():
        write_csv(OUT[name], header, data[sorted(rows)])

    check = leakage_precheck()
    overlaps: dict[str, int] = check["overlaps"]
    leaks = {pair: n for pair, n in overlaps.items() if n}
    if leaks:
        print(f"split: leakage pre-check FAILED: {leaks}", file=sys.stderr)
        if not record_only():
            raise SystemExit(1)

    y = cols[TARGET]
    metrics: dict[str, float] = {f"overlap.{pair}": n for pair, n in overlaps.items()}
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
        roles={"features": str(FEATURES)},
        splits=OUT,
        exclude_columns=[ID_COLUMN],
        params={
            "method": "seeded shuffle, stratified by sex",
            "seed": SEED,
            **{f"fraction.{k}": v for k, v in FRACTIONS.items()},
            "debug_set": "none",
            "leakage_canonicalization": check["canonicalization"],
        },
        metrics=metrics_file("split", metrics, slices),
    )
    shared = sum(overlaps.values())
    print(
        "train/validation/holdback = "
        + "/".join(str(len(r)) for r in parts.values())
        + f" rows (seed {SEED}, stratified by sex); row-level leakage proof signed, "
        + f"{shared} shared row(s) -> data/split/"
    )


if __name__ == "__main__":
    main()
