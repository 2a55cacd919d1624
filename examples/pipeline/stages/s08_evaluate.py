"""Stage 8 - evaluation on the validation split (runs, then `mlspec-attest sign --metrics`; evaluator).

Scores the trained model on ``data/split/validation.csv``: MAE, RMSE, R2,
bias, the gain over a predict-the-training-mean baseline, and the same metrics
per ``sex`` slice. The launch criteria for the validation split (from
objectives.yaml) are checked programmatically; if one fails the stage stops
before signing, so no evaluation attestation exists and the deploy gate denies.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import assess, cli_sign, metrics_file, write_json

VALIDATION = Path("data/split/validation.csv")
REPORT = Path("reports/evaluation.json")


def main() -> None:
    result = assess("validation", VALIDATION)
    write_json(REPORT, result)
    if not result["passed"]:
        for c in result["criteria"]:
            if not c["passed"]:
                print(
                    f"launch criterion {c['id']} failed: {c['criterion']} (observed {c['observed']})",
                    file=sys.stderr,
                )
        raise SystemExit(1)
    cli_sign(
        "evaluate",
        "evaluator",
        materials=["model", str(VALIDATION), "objectives.yaml"],
        products=[str(REPORT)],
        roles={"objectives": "objectives.yaml", "model": "model", "validation": str(VALIDATION)},
        params={
            "data_source": f"{VALIDATION} (validation split from stage split)",
            "criteria_checked": ",".join(c["id"] for c in result["criteria"]),
            "slices": "sex",
        },
        metrics=metrics_file("evaluate", result["metrics"], result["slices"]),
    )
    m, sl = result["metrics"], result["slices"]["sex"]
    print(
        f"validation MAE {m['mae']:.1f} (baseline {m['baseline_mae']:.1f}), R2 {m['r2']:.2f}, "
        f"MAE sex=1 {sl['1']['metrics']['mae']:.1f} / sex=2 {sl['2']['metrics']['mae']:.1f}; "
        f"criteria {m['criteria_passed']}/{m['criteria_total']} -> {REPORT}"
    )


if __name__ == "__main__":
    main()
