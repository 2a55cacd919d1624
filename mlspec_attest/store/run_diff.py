"""The difference between two runs, stage by stage: parameters, data and metrics.

Read from the index (claims, not verified facts). A stage signed by several keys is
compared by its first well-formed attestation (the file names sort them); the verifier,
not this comparison, decides whether such attestations agree.
"""

from __future__ import annotations

import json
from typing import Any

from mlspec_attest.store.index_query import AttestationIndex

DIFF_FIELDS = ("parameters", "metrics", "artifacts")


def _stages(index: AttestationIndex, run_id: str) -> dict[str, dict[str, dict[str, Any]]]:
    """stage -> {"parameters": …, "metrics": …, "artifacts": {side:name -> digest}}."""
    index.check_run(run_id)
    steps = {s.file: s for s in index.steps(run_id)}
    rows = index.stage_values(run_id)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for stage, file, parameters, metrics in rows:
        if stage in out:
            continue
        artifacts = {
            f"{a.side}:{a.name}": ",".join(f"{k}:{v}" for k, v in sorted(a.digests))
            for a in steps[file].artifacts
        }
        out[stage] = {
            "parameters": json.loads(parameters),
            "metrics": json.loads(metrics),
            "artifacts": artifacts,
        }
    return out


def _changed(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key: {"a": a.get(key), "b": b.get(key)}
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key)
    }


def diff_runs(index: AttestationIndex, run_a: str, run_b: str) -> dict[str, Any]:
    """What differs between ``run_a`` and ``run_b``: per stage, each changed value as {a, b}."""
    left, right = _stages(index, run_a), _stages(index, run_b)
    stages = []
    for stage in sorted(set(left) | set(right)):
        if stage not in left or stage not in right:
            stages.append({"stage": stage, "onlyIn": run_a if stage in left else run_b})
            continue
        changes = {f: _changed(left[stage][f], right[stage][f]) for f in DIFF_FIELDS}
        if any(changes.values()):
            entry: dict[str, Any] = {"stage": stage}
            entry.update((f, c) for f, c in changes.items() if c)
            stages.append(entry)
    return {"runA": run_a, "runB": run_b, "identical": not stages, "stages": stages}
