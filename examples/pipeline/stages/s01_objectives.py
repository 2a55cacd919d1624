"""Stage 1 - codify objectives (Python API, signed by product-owner).

Writes ``objectives.yaml``: what the model predicts, the error classes that
matter, and machine-checkable launch criteria that ``evaluate`` and ``test``
evaluate programmatically before anything can be packaged.
"""

from __future__ import annotations

import json
from pathlib import Path

from common import key, policy_path

import mlspec_attest

OBJECTIVES = Path("objectives.yaml")
VERSION = "2024.06-1"

# Launch criteria DSL: one line per criterion, "<metric> <op> <value>" on a split,
# optionally on every member of a slice family ("slice: sex") or as the gap
# between the best and worst member ("gap"). Checked by common.check_criteria().
CRITERIA: list[dict[str, str | float]] = [
    {"id": "val-mae", "split": "validation", "metric": "mae", "op": "<=", "value": 50.0},
    {
        "id": "val-beats-baseline",
        "split": "validation",
        "metric": "mae_vs_baseline",
        "op": "<=",
        "value": 0.85,
    },
    {"id": "holdback-mae", "split": "holdback", "metric": "mae", "op": "<=", "value": 50.0},
    {"id": "holdback-r2", "split": "holdback", "metric": "r2", "op": ">=", "value": 0.35},
    {
        "id": "holdback-sex-mae",
        "split": "holdback",
        "metric": "mae",
        "slice": "sex",
        "op": "<=",
        "value": 55.0,
    },
    {
        "id": "holdback-sex-gap",
        "split": "holdback",
        "metric": "mae_gap",
        "slice": "sex",
        "op": "<=",
        "value": 12.0,
    },
]


def render() -> str:
    lines = [
        "# Launch objectives for the diabetes progression regressor (ML Spec stage 1).",
        "apiVersion: mlspec/v1",
        "kind: Objectives",
        f"version: {VERSION}",
        "model:",
        "  name: diabetes-progression",
        "  task: regression",
        "  output:",
        "    name: progression",
        "    description: quantitative measure of disease progression one year after baseline",
        "    unit: score",
        "    range: [25, 346]",
        "errors:",
        "  - class: under-prediction",
        "    description: progression under-estimated, a patient is not prioritised for follow-up",
        "    severity: high",
        "  - class: over-prediction",
        "    description: progression over-estimated, unnecessary follow-up",
        "    severity: medium",
        "  - class: slice-disparity",
        "    description: error markedly worse for one sex than the other",
        "    severity: high",
        "launch_criteria:",
    ]
    for c in CRITERIA:
        fields = ", ".join(f"{k}: {json.dumps(v)}" for k, v in c.items())
        lines.append(f"  - {{{fields}}}")
    return "\n".join(lines) + "\n"


def main() -> None:
    with mlspec_attest.stage("objectives", key=key("product-owner"), policy=policy_path()) as s:
        OBJECTIVES.write_text(render())
        s.product(OBJECTIVES, role="objectives")
        s.param("objectives_version", VERSION)
        s.param("task", "regression")
        s.param("launch_criteria", len(CRITERIA))
        s.detail("launch_criteria", CRITERIA)
    print(f"objectives v{VERSION}: {len(CRITERIA)} launch criteria -> {OBJECTIVES}")


if __name__ == "__main__":
    main()
