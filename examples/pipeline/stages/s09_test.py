"""Stage 9 - test on the hold-back split (runs, then `mlspec-attest sign --metrics`; evaluator).

A separate stage from evaluation (ML Spec: "MUST BE A SEPARATE STEP"): the
hold-back split is read here and nowhere else, which ``verify`` proves
(``separation``: the holdback role, same model as evaluate, different data,
after evaluate). Same metrics and per-``sex`` slices as evaluation.

``mlspec-attest objectives check objectives.yaml --evidence evaluate=...
--evidence test=...`` pre-checks every criterion, including the hold-back MAE
gap between the sexes (a fairness guard). A failing test criterion stops the
stage before signing, unless ``--record-only``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import BOOTSTRAP, OBJECTIVES, assess, cli_sign, print_criteria, record_only, write_json

HOLDBACK = Path("data/split/holdback.csv")
REPORT = Path("reports/test.json")


def main() -> None:
    result = assess("test", "holdback", HOLDBACK)
    failed = print_criteria(result)
    if failed and not record_only():
        print(f"test: {failed} launch criterion/criteria not met; not signing", file=sys.stderr)
        raise SystemExit(1)
    write_json(REPORT, result)
    cli_sign(
        "test",
        "evaluator",
        materials=["model", str(HOLDBACK), str(OBJECTIVES)],
        products=[str(REPORT)],
        roles={"objectives": str(OBJECTIVES), "model": "model", "holdback": str(HOLDBACK)},
        params={
            "data_source": f"{HOLDBACK} (hold-back split, first and only use)",
            "objectives": f"{result['objectives']['name']} v{result['objectives']['version']}",
            "precheck": "record-only" if record_only() else "blocking",
            "slices": "sex",
            "bootstrap": BOOTSTRAP,
        },
        metrics=Path(result["metricsFile"]),
    )
    m, sl = result["metrics"], result["slices"]["sex"]
    gap = abs(sl["1"]["metrics"]["mae"] - sl["2"]["metrics"]["mae"])
    passed = sum(c["result"] == "pass" for c in result["criteria"])
    print(
        f"hold-back MAE {m['mae']:.1f}, R2 {m['r2']:.2f}, sex MAE gap {gap:.1f}; "
        f"pre-check {passed}/{len(result['criteria'])} criteria -> {REPORT}"
    )


if __name__ == "__main__":
    main()
