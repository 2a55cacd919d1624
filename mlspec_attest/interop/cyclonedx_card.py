"""The CycloneDX 1.6 fields cyclonedx-python-lib does not model yet, as JSON.

cyclonedx-python-lib (11.x) leaves ``component.modelCard``, ``component.data`` and the
BOM's ``formulation`` as TODOs (its issues #912 and #913; formulation is commented out
in ``cyclonedx/model/bom.py``). :mod:`~mlspec_attest.interop.cyclonedx` serializes
everything else through the library and adds these three objects to the library's
output; the whole document is then validated by the library's own JSON validator
against the CycloneDX 1.6 schema, so nothing here escapes validation. When the library
models them, these become library objects and this module goes away.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from mlspec_attest.interop.verified_run import Artifact, Dataset, Metric, RunFacts, Stage

#: Stage kind -> CycloneDX task type (``taskType`` has no ML vocabulary: building
#: covers making data or a model, testing covers measuring it).
TASK_TYPES: Mapping[str, str] = {
    "ingest": "build",
    "transform": "build",
    "split": "build",
    "train": "build",
    "package": "build",
    "analyze": "scan",
    "validate": "test",
    "evaluate": "test",
    "test": "test",
    "serve": "deploy",
}
PROPERTY_PREFIX = "mlspec:"


def prop(name: str, value: object) -> dict[str, str]:
    """One CycloneDX property in the ``mlspec:`` namespace."""
    return {"name": f"{PROPERTY_PREFIX}{name}", "value": str(value)}


def sha256_hashes(digest: Mapping[str, str]) -> list[dict[str, str]]:
    """The digest set's sha256 as CycloneDX hashes (other algorithms go in properties)."""
    value = digest.get("sha256")
    return [{"alg": "SHA-256", "content": value}] if value else []


def model_card(facts: RunFacts, dataset_refs: Mapping[str, str]) -> dict[str, Any]:
    """``modelCard``: the datasets by reference, the attested performance metrics per
    slice, and the training stage's parameters as properties."""
    card: dict[str, Any] = {}
    if dataset_refs:
        card["modelParameters"] = {"datasets": [{"ref": r} for r in dataset_refs.values()]}
    if facts.metrics:
        card["quantitativeAnalysis"] = {"performanceMetrics": [_metric(m) for m in facts.metrics]}
    params = facts.parameters_of("train")
    if params:
        card["properties"] = [prop(f"parameter:{k}", _text(v)) for k, v in sorted(params.items())]
    return card


def _metric(m: Metric) -> dict[str, Any]:
    where = f"stage={m.stage}"
    if m.slice is not None:
        where += f", {m.slice[0]}={m.slice[1]}"
        if m.count is not None:
            where += f", n={m.count}"
    out: dict[str, Any] = {"type": m.name, "value": _number(m.value), "slice": where}
    if m.interval is not None:
        low, high = m.interval
        out["confidenceInterval"] = {"lowerBound": _number(low), "upperBound": _number(high)}
    return out


def dataset_data(dataset: Dataset) -> list[dict[str, Any]]:
    """``component.data`` of a dataset component: one ``dataset`` entry naming its roles."""
    parts = []
    if dataset.roles:
        parts.append(f"roles: {', '.join(sorted(dataset.roles))}")
    if dataset.rows is not None:
        parts.append(f"rows: {dataset.rows}")
    entry: dict[str, Any] = {"type": "dataset", "name": dataset.artifact.name}
    if parts:
        entry["description"] = "; ".join(parts)
    return [entry]


def formulation(facts: RunFacts, refs: Mapping[str, str]) -> list[dict[str, Any]]:
    """``formulation``: one workflow (the run) of one task per stage, in policy order,
    with its inputs and outputs, order and attestations; ``refs`` maps an artifact name
    to the bom-ref of its component."""
    tasks = [_task(s, refs) for s in facts.stages]
    names = {s.name for s in facts.stages}
    dependencies = [
        {"ref": _task_ref(s.name), "dependsOn": [_task_ref(a) for a in s.after if a in names]}
        for s in facts.stages
    ]
    workflow: dict[str, Any] = {
        "bom-ref": f"workflow:{facts.run_id}",
        "uid": facts.run_id,
        "name": facts.policy_name or "pipeline",
        "description": "the ML pipeline run, as its stage attestations record it",
        "taskTypes": sorted({t for task in tasks for t in task["taskTypes"]}) or ["other"],
        "tasks": tasks,
        "taskDependencies": dependencies,
        "properties": [prop("run-id", facts.run_id), prop("policy-digest", facts.policy_digest)],
    }
    if facts.stages:
        workflow["timeStart"] = min(s.started_on for s in facts.stages)
        workflow["timeEnd"] = max(s.finished_on for s in facts.stages)
    return [{"bom-ref": f"formula:{facts.run_id}", "workflows": [workflow]}]


def _task_ref(stage: str) -> str:
    return f"task:{stage}"


def _task(stage: Stage, refs: Mapping[str, str]) -> dict[str, Any]:
    inputs: list[dict[str, Any]] = [{"resource": _resource(a, refs)} for a in stage.materials]
    if stage.parameters:
        inputs.append(
            {
                "parameters": [
                    {"name": k, "value": _text(v)} for k, v in sorted(stage.parameters.items())
                ]
            }
        )
    task: dict[str, Any] = {
        "bom-ref": _task_ref(stage.name),
        "uid": stage.name,
        "name": stage.name,
        "description": f"stage of kind {stage.kind}",
        "taskTypes": [TASK_TYPES.get(stage.kind, "other")],
        "timeStart": stage.started_on,
        "timeEnd": stage.finished_on,
        "properties": [
            prop("stage-kind", stage.kind),
            *(prop("signer", s) for s in stage.signers),
            *(prop("attestation", f"sha256:{a.payload_sha256}") for a in stage.attestations),
        ],
    }
    if inputs:
        task["inputs"] = inputs
    if stage.products:
        task["outputs"] = [{"resource": _resource(a, refs)} for a in stage.products]
    return task


def _resource(artifact: Artifact, refs: Mapping[str, str]) -> dict[str, Any]:
    """A component reference when the artifact is a component, else its name and digest."""
    ref = refs.get(artifact.name)
    if ref is not None:
        return {"ref": ref}
    external: dict[str, Any] = {"type": "other", "url": artifact_url(artifact.name)}
    hashes = sha256_hashes(artifact.digest)
    if hashes:
        external["hashes"] = hashes
    return {"externalReference": external}


def artifact_url(name: str) -> str:
    """An attested name as an IRI reference (relative path, or the object store URL)."""
    return quote(name, safe="/:@")


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)
