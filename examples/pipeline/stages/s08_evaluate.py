"""Stage 8 - evaluation on the validation split (runs, then `mlspec-attest sign --metrics`; evaluator).

Scores the trained model on ``data/split/validation.csv`` with
``mlspec_attest.evidence.metrics.regression_metrics``: count, MAE, MSE, RMSE, R2, max and
median absolute error, overall and per ``sex`` slice, with bootstrap confidence
intervals; plus bias and the MAE of a predict-the-training-mean baseline
(``baseline_mae``, which the objectives' ``expr`` criterion compares against).

``mlspec-attest objectives check objectives.yaml --evidence evaluate=...`` then
evaluates the signed launch criteria that name this stage. A failing criterion
stops the stage before signing, unless ``--record-only``: then the evaluator
honestly signs the failing metrics and the deploy gate is what refuses.
Signed with ``--metrics`` and the roles model / validation / objectives.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import BOOTSTRAP, OBJECTIVES, assess, cli_sign, print_criteria, record_only, write_json

VALIDATION = Path("data/split/validation.csv")
REPORT = Path("reports/evaluation.json")


def main() -> None:
    result = assess("evaluate", "validation", VALIDATION)
    failed = print_criteria(result)
    if failed and not record_only():
        print(f"evaluate: {failed} launch criterion/criteria not met; not signing", file=sys.stderr)
        raise SystemExit(1)
    write_json(REPORT, result)
    cli_sign(
        "evaluate",
        "evaluator",
        materials=["model", str(VALIDATION), str(OBJECTIVES)],
        products=[str(REPORT)],
        roles={"objectives": str(OBJECTIVES), "model": "model", "validation": str(VALIDATION)},
        params={
            "data_source": f"{VALIDATION} (validation split from stage split)",
            "objectives": f"{result['objectives']['name']} v{result['objectives']['version']}",
            "precheck": "record-only" if record_only() else "blocking",
            "slices": "sex",
            "bootstrap": BOOTSTRAP,
        },
        metrics=Path(result["metricsFile"]),
    )
    m, sl = result["metrics"], result["slices"]["sex"]
    own = [c for c in result["criteria"] if c["stage"] == "evaluate"]
    print(
        f"validation MAE {m['mae']:.1f} (baseline {m['baseline_mae']:.1f}), R2 {m['r2']:.2f}, "
        f"MAE sex=1 {sl['1']['metrics']['mae']:.1f} / sex=2 {sl['2']['metrics']['mae']:.1f}; "
        f"pre-check {sum(c['result'] == 'pass' for c in own)}/{len(own)} criteria -> {REPORT}"
    )


if __name__ == "__main__":
    main()
