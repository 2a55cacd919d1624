"""Stage 4 - data transformation (Python API, signed by data-engineer).

Reads the raw data and the analysis report. ``mlspec_attest.evidence.analysis.remove_outliers``
drops exactly the rows the report's fences flag (it refuses a report made for
other bytes) and returns the ``transform/v1`` record: rows in and out, the
outliers removed per feature, and the feature mappings applied, which are then
applied here: ``age`` to an integer decade band, the six serum measurements to
their clinical names, ``sex`` kept as its integer code. The record is
``details.transform``; the mapped output's digest is ``details.output``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from common import (
    ID_COLUMN,
    TARGET,
    columns,
    key,
    policy_path,
    read_csv,
    read_json,
    sha256_file,
    write_csv,
)

import mlspec_attest
from mlspec_attest.evidence.analysis import remove_outliers

RAW = Path("data/raw/diabetes.csv")
ANALYSIS = Path("reports/analysis.json")
FEATURES = Path("data/features/diabetes.csv")
# Outlier-free rows before the mappings: scratch space, not an attested artifact.
CLEAN = Path(".scratch/transform/diabetes.no-outliers.csv")

# Serum measurements s1..s6 (scikit-learn documentation of the dataset).
RENAME = {"s1": "tc", "s2": "ldl", "s3": "hdl", "s4": "tch", "s5": "ltg", "s6": "glu"}
SEX_CODES = {1.0: 1, 2.0: 2}
MAPPINGS: dict[str, Any] = {
    "sex": {"1": 1, "2": 2},
    "age_band": "floor(age / 10), a new column after age",
    "rename": RENAME,
}


def main() -> None:
    with mlspec_attest.stage("transform", key=key("data-engineer"), policy=policy_path()) as s:
        s.material(RAW, role="raw").material(ANALYSIS, role="analysis")
        record = remove_outliers(RAW, CLEAN, read_json(ANALYSIS), mappings=MAPPINGS)
        header, data = read_csv(CLEAN)
        cols = columns(header, data)
        unknown_sex = set(np.unique(cols["sex"])) - set(SEX_CODES)
        if unknown_sex:
            raise SystemExit(f"transform: unexpected sex values {sorted(unknown_sex)}")
        out_cols = {
            ID_COLUMN: cols[ID_COLUMN],
            "age": cols["age"],
            "age_band": np.floor(cols["age"] / 10.0),
            "sex": np.vectorize(SEX_CODES.__getitem__)(cols["sex"]).astype(np.float64),
            "bmi": cols["bmi"],
            "bp": cols["bp"],
            **{RENAME[k]: cols[k] for k in RENAME},
            TARGET: cols[TARGET],
        }
        out = np.column_stack(list(out_cols.values()))
        write_csv(FEATURES, list(out_cols), out)
        s.product(FEATURES, role="features")
        removed = record["outliersRemoved"]
        s.params(
            {
                "outlier_policy": "drop the rows the analysis report's fences flag",
                "outlier_method": removed["method"],
                "outlier_threshold": removed["threshold"],
                "mapping.sex": "1->1, 2->2 (integer category code)",
                "mapping.age_band": "floor(age / 10)",
                "rename": ", ".join(f"{k}->{v}" for k, v in RENAME.items()),
            }
        )
        s.metric("rows_in", record["input"]["rows"])
        s.metric("rows_out", int(out.shape[0]))
        s.metric("rows_removed", removed["rows"])
        s.metric("features_out", len(out_cols) - 2)
        s.detail("transform", record)
        s.detail(
            "output",
            {
                "path": str(FEATURES),
                "rows": int(out.shape[0]),
                "sha256": sha256_file(FEATURES),
                "derivedFrom": record["output"]["sha256"],
                "applied": "transform.mappings",
            },
        )
    print(
        f"{record['input']['rows']} -> {out.shape[0]} rows ({removed['rows']} outliers removed "
        f"by the analysis fences), {len(out_cols) - 2} features -> {FEATURES}"
    )


if __name__ == "__main__":
    main()
