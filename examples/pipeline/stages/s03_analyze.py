"""Stage 3 - data analysis (Python API, signed by data-scientist).

Descriptive statistics for every feature, the target per ``sex`` slice, the
correlation of each feature with the target, and z-score outliers. The report
``reports/analysis.json`` is what ``transform`` uses to drop outliers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from common import ID_COLUMN, TARGET, FloatArray, columns, key, policy_path, read_csv, write_json

import mlspec_attest

RAW = Path("data/raw/diabetes.csv")
REPORT = Path("reports/analysis.json")
OUTLIER_Z = 3.5


def describe(values: FloatArray) -> dict[str, float]:
    q = np.percentile(values, [0, 25, 50, 75, 100])
    return {
        "mean": round(float(values.mean()), 4),
        "std": round(float(values.std()), 4),
        "min": float(q[0]),
        "p25": round(float(q[1]), 4),
        "median": round(float(q[2]), 4),
        "p75": round(float(q[3]), 4),
        "max": float(q[4]),
        "missing": int(np.isnan(values).sum()),
    }


def main() -> None:
    with mlspec_attest.stage("analyze", key=key("data-scientist"), policy=policy_path()) as s:
        s.material(RAW, role="raw")
        header, data = read_csv(RAW)
        cols = columns(header, data)
        features = [h for h in header if h not in (ID_COLUMN, TARGET)]
        y = cols[TARGET]
        stats = {name: describe(cols[name]) for name in [*features, TARGET]}
        correlation = {name: round(float(np.corrcoef(cols[name], y)[0, 1]), 4) for name in features}
        x = np.column_stack([cols[n] for n in features])
        z = np.abs((x - x.mean(axis=0)) / x.std(axis=0))
        flagged = np.flatnonzero((z > OUTLIER_Z).any(axis=1))
        outliers: list[dict[str, Any]] = [
            {
                "row_id": int(cols[ID_COLUMN][i]),
                "features": [features[j] for j in np.flatnonzero(z[i] > OUTLIER_Z)],
                "max_abs_z": round(float(z[i].max()), 3),
            }
            for i in flagged
        ]
        by_sex: dict[str, dict[str, Any]] = {}
        for code in (1, 2):
            mask = cols["sex"] == code
            by_sex[str(code)] = {
                "count": int(mask.sum()),
                "metrics": {
                    "target_mean": round(float(y[mask].mean()), 3),
                    "target_std": round(float(y[mask].std()), 3),
                    "bmi_mean": round(float(cols["bmi"][mask].mean()), 3),
                    "age_mean": round(float(cols["age"][mask].mean()), 3),
                },
            }
        write_json(
            REPORT,
            {
                "rows": int(data.shape[0]),
                "features": features,
                "statistics": stats,
                "correlation_with_target": correlation,
                "slices": {"sex": by_sex},
                "outliers": {"method": f"|z| > {OUTLIER_Z} on any feature", "rows": outliers},
            },
        )
        s.product(REPORT, role="analysis")
        s.params({"outlier_method": "z-score", "outlier_threshold": OUTLIER_Z, "slice_by": "sex"})
        s.metric("rows", int(data.shape[0]))
        s.metric("features", len(features))
        s.metric("missing_values", int(np.isnan(data).sum()))
        s.metric("outlier_rows", len(outliers))
        s.metric("target_mean", round(float(y.mean()), 3))
        for member, entry in by_sex.items():
            s.slice_metrics("sex", member, count=entry["count"], metrics=entry["metrics"])
        s.detail("outliers", outliers)
        s.detail(
            "strongest_correlations",
            dict(sorted(correlation.items(), key=lambda kv: -abs(kv[1]))[:3]),
        )
    top = max(correlation, key=lambda n: abs(correlation[n]))
    print(
        f"{len(features)} features profiled, {len(outliers)} outlier rows (|z|>{OUTLIER_Z}), "
        f"strongest predictor {top} (r={correlation[top]:+.2f}) -> {REPORT}"
    )


if __name__ == "__main__":
    main()
