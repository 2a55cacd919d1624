"""Stage 9 - test on the hold-back split (CLI after the work; evaluator).

A separate stage from evaluation (ML Spec: "MUST BE A SEPARATE STEP"): the
hold-back split is read here and nowhere else. Same metrics and per-``sex``
slices as evaluation, checked against the hold-back launch criteria, including
the maximum MAE gap between the sexes (a bias guard).
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import assess, cli_sign, metrics_file, write_json

HOLDBACK = Path("data/split/holdback.csv")
REPORT = Path("reports/test.json")


def main() -> None:
    result = assess("holdback", HOLDBACK)
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
        "test",
        "evaluator",
        materials=["model", str(HOLDBACK), "objectives.yaml"],
        products=[str(REPORT)],
        roles={"objectives": "objectives.yaml", "model": "model", "holdback": str(HOLDBACK)},
        params={
            "data_source": f"{HOLDBACK} (hold-back split, first and only use)",
            "criteria_checked": ",".join(c["id"] for c in result["criteria"]),
            "slices": "sex",
        },
        metrics=metrics_file("test", result["metrics"], result["slices"]),
    )
    m, sl = result["metrics"], result["slices"]["sex"]
    gap = abs(sl["1"]["metrics"]["mae"] - sl["2"]["metrics"]["mae"])
    print(
        f"hold-back MAE {m['mae']:.1f}, R2 {m['r2']:.2f}, sex MAE gap {gap:.1f}; "
        f"criteria {m['criteria_passed']}/{m['criteria_total']} -> {REPORT}"
    )


if __name__ == "__main__":
    main()
