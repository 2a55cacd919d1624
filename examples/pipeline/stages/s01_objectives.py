"""Stage 1 - codify objectives (Python API, signed by product-owner).

Writes ``objectives.yaml`` in the official objectives format (``kind:
Objectives``, docs in policies/objectives.yaml): what the model predicts, the
error classes that matter, and the launch criteria. The document is the stage's
product: signing validates it and keeps its bytes, content-addressed, in the
store, and ``mlspec-attest verify`` evaluates every criterion against the
metrics that the named stage (evaluate or test) attested. No later stage can
move the goalposts.
"""

from __future__ import annotations

from pathlib import Path

from common import key, policy_path

import mlspec_attest
from mlspec_attest.policy.criteria import criterion_kind
from mlspec_attest.policy.objectives import load_objectives_text

OBJECTIVES = Path("objectives.yaml")
VERSION = "2024.06-2"

# CEL compares integers and doubles strictly: write 0.85 and 45.0, never 45, next
# to a metric. Every metric named here is attested by evaluate/test (common.assess).
DOCUMENT = f"""\
# Launch objectives for the diabetes progression regressor (ML Spec stage 1).
# Signed by the product owner; `mlspec-attest verify` evaluates the criteria
# against the metrics the evaluate and test stages attested.
apiVersion: mlspec-attest/v1
kind: Objectives
metadata:
  name: diabetes-progression
  version: "{VERSION}"
  owner: product-owner@example.org
  description: Predict one-year disease progression to prioritise follow-up visits.

outputs:
  - name: progression
    type: number
    range: [25, 346]
    unit: progression score
    description: Quantitative measure of disease progression one year after baseline.

errorClasses:
  - name: under-prediction
    severity: high
    description: A patient whose disease progresses fast is ranked low and seen late.
    metric: mae
  - name: over-prediction
    severity: medium
    description: Progression over-estimated; an unnecessary follow-up visit.
    metric: bias
  - name: group-disparity
    severity: high
    description: The model is markedly less accurate for one sex than the other.

criteria:
  # Evaluation (validation split).
  - id: validation-mae
    description: Mean absolute error on the validation split.
    stage: evaluate
    metric: mae
    max: 55
  - id: validation-r2
    stage: evaluate
    metric: r2
    min: 0.35
  - id: validation-every-sex
    description: Each sex (slices of at least 20 rows) has a validation MAE of at most 60.
    stage: evaluate
    eachSlice:
      family: sex
      metric: mae
      max: 60
      minCount: 20
  - id: validation-beats-baseline
    description: At least 15 % better than always predicting the training mean.
    stage: evaluate
    expr: 'metrics["mae"] < 0.85 * metrics["baseline_mae"]'

  # Test (hold-back split, read by the test stage only).
  - id: holdback-mae
    description: Mean absolute error on the hold-back split.
    stage: test
    metric: mae
    max: 55
  - id: holdback-sex-gap
    description: Hold-back MAE may differ by at most 10 between the sexes (slices of at least 20 rows).
    stage: test
    gap:
      family: sex
      metric: mae
      max: 10
      minCount: 20
  - id: holdback-beats-baseline
    description: At least 10 % better than the training mean on the hold-back split.
    stage: test
    expr: 'metrics["mae"] < 0.9 * metrics["baseline_mae"]'
"""


def main() -> None:
    # Lint before signing (signing validates again and refuses an invalid document).
    objectives = load_objectives_text(DOCUMENT, what=str(OBJECTIVES))
    kinds = sorted({criterion_kind(c) for c in objectives.criteria})
    with mlspec_attest.stage("objectives", key=key("product-owner"), policy=policy_path()) as s:
        OBJECTIVES.write_text(DOCUMENT)
        s.product(OBJECTIVES, role="objectives")
        s.params(
            {
                "objectives_name": objectives.name,
                "objectives_version": objectives.version,
                "task": "regression",
                "criteria": len(objectives.criteria),
                "criterion_kinds": ",".join(kinds),
                "evidence_stages": ",".join(sorted(objectives.stages())),
            }
        )
    print(
        f"objectives {objectives.name} v{objectives.version}: {len(objectives.criteria)} launch "
        f"criteria ({', '.join(kinds)}) on {', '.join(sorted(objectives.stages()))} -> {OBJECTIVES}"
    )


if __name__ == "__main__":
    main()
