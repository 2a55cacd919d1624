"""Stage 4 - data transformation (Python API, signed by data-engineer).

Reads the raw data and the analysis report; removes the outlier rows the
analysis flagged, maps ``sex`` to an integer code and ``age`` to an integer
decade band, and gives the six serum measurements their clinical names.
Every mapping is recorded as a parameter; removed rows as metrics and details.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import ID_COLUMN, TARGET, columns, key, policy_path, read_csv, read_json, write_csv

import mlspec_attest

RAW = Path("data/raw/diabetes.csv")
ANALYSIS = Path("reports/analysis.json")
FEATURES = Path("data/features/diabetes.csv")

# Serum measurements s1..s6 (scikit-learn documentation of the dataset).
RENAME = {"s1": "tc", "s2": "ldl", "s3": "hdl", "s4": "tch", "s5": "ltg", "s6": "glu"}
SEX_CODES = {1.0: 1, 2.0: 2}


def main() -> None:
    with mlspec_attest.stage("transform", key=key("data-engineer"), policy=policy_path()) as s:
        s.material(RAW, role="raw").material(ANALYSIS, role="analysis")
        header, data = read_csv(RAW)
        analysis = read_json(ANALYSIS)
        drop = {int(o["row_id"]) for o in analysis["outliers"]["rows"]}
        cols = columns(header, data)
        keep = ~np.isin(cols[ID_COLUMN].astype(int), sorted(drop))
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
        out = np.column_stack(list(out_cols.values()))[keep]
        write_csv(FEATURES, list(out_cols), out)
        s.product(FEATURES, role="features")
        s.params(
            {
                "outlier_policy": "drop rows flagged by analyze",
                "mapping.sex": "1.0->1, 2.0->2 (integer category code)",
                "mapping.age_band": "floor(age / 10)",
                "rename": ", ".join(f"{k}->{v}" for k, v in RENAME.items()),
            }
        )
        s.metric("rows_in", int(data.shape[0]))
        s.metric("rows_out", int(out.shape[0]))
        s.metric("rows_removed", int((~keep).sum()))
        s.metric("features_out", len(out_cols) - 2)
        s.detail("removed_row_ids", sorted(drop))
    print(
        f"{data.shape[0]} -> {out.shape[0]} rows ({int((~keep).sum())} outliers removed), "
        f"{len(out_cols) - 2} features -> {FEATURES}"
    )


if __name__ == "__main__":
    main()
