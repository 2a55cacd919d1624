"""objectives.load_objectives: the launch objectives document (YAML or JSON), then evaluation.

Input: the bytes of an objectives file. Checks: only bad-input errors; every
criterion of an accepted document evaluates (against fixed evidence and a
baseline) to a result, never an exception.
"""

from __future__ import annotations

from mlspec_attest.policy.criteria import Evidence
from mlspec_attest.policy.objectives import evaluate_objectives, load_objectives

from ._harness import input_file, main, parse_or_none

INSTRUMENT = ("ruamel", "celpy")
METRICS = {"mae": 40.0, "r2": 0.5, "accuracy": 0.9, "count": 100, "rows": 7}
SLICES = {
    "sex": {
        "1": {"count": 50, "metrics": {"mae": 41.0, "r2": 0.4}},
        "2": {"count": 50, "metrics": {"mae": 39.0, "r2": 0.6}},
    },
    "site": {"north": {"count": 3, "metrics": {"mae": 12.5}}},
}
BASELINE = {"mae": 42.0, "r2": 0.45, "accuracy": 0.0}


def TestOneInput(data: bytes) -> None:
    objectives = parse_or_none(load_objectives, input_file(data, "objectives.yaml"))
    if objectives is None:
        return
    evidence = {
        stage: Evidence(stage, METRICS, SLICES, "sha256:0") for stage in objectives.stages()
    }
    results = evaluate_objectives(objectives, evidence, baseline=BASELINE, stages={})
    assert len(results) == len(objectives.criteria)
    for result in results:
        assert isinstance(result.passed, bool)
        result.to_json()


if __name__ == "__main__":
    main(TestOneInput)
