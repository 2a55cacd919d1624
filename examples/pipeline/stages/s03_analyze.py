"""Stage 3 - data analysis (Python API, signed by data-scientist).

``mlspec_attest.evidence.analysis.analyze_dataset`` profiles the raw data: statistics for
every feature (count, missing, mean, sample std, min, max, quantiles), the same
per ``sex`` slice, and z-score outliers (|z| > 3.5 on any feature; the row id is
excluded). The report (``analysis-v1``) is the product ``reports/analysis.json``
and is embedded as ``details.analysis``; its fences are exactly what
``transform`` uses to remove the outlier rows. Headline numbers are metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

from common import ID_COLUMN, TARGET, key, policy_path

import mlspec_attest
from mlspec_attest.evidence.analysis import analysis_metrics, analyze_dataset

RAW = Path("data/raw/diabetes.csv")
REPORT = Path("reports/analysis.json")
OUTLIERS = "zscore"
OUTLIER_Z = 3.5
SLICE = "sex"


def main() -> None:
    with mlspec_attest.stage("analyze", key=key("data-scientist"), policy=policy_path()) as s:
        s.material(RAW, role="raw")
        report = analyze_dataset(
            RAW,
            slices=[SLICE],
            outliers=OUTLIERS,
            threshold=OUTLIER_Z,
            exclude_columns=[ID_COLUMN],
        )
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        s.product(REPORT, role="analysis")
        s.params(
            {
                "outlier_method": OUTLIERS,
                "outlier_threshold": OUTLIER_Z,
                "slice_by": SLICE,
                "excluded_columns": ID_COLUMN,
                "std": "sample (n-1)",
            }
        )
        for name, value in analysis_metrics(report).items():
            s.metric(name, value)
        target = report["features"][TARGET]
        s.metric("target_mean", round(target["mean"], 3))
        for member, entry in report["slices"][SLICE].items():
            features = entry["features"]
            s.slice_metrics(
                SLICE,
                member,
                count=entry["rows"],
                metrics={
                    "target_mean": round(features[TARGET]["mean"], 3),
                    "target_std": round(features[TARGET]["std"], 3),
                    "bmi_mean": round(features["bmi"]["mean"], 3),
                    "age_mean": round(features["age"]["mean"], 3),
                },
            )
        s.detail("analysis", report)
    found = report["outliers"]
    per_feature = ", ".join(f"{c} {n}" for c, n in found["perFeature"].items() if n)
    print(
        f"{len(report['features'])} features profiled overall and per {SLICE} "
        f"({', '.join(report['slices'][SLICE])}); {found['count']} outlier rows "
        f"(|z|>{OUTLIER_Z}: {per_feature or 'none'}) -> {REPORT}"
    )


if __name__ == "__main__":
    main()
