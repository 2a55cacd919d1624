"""The policy's ML sections: objectives, separation, leakage, dataValidation, requirements,
rollback.

Each section names stages by name; a name no stage has is reported on its line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlspec_attest.formats.stages import StageKind
from mlspec_attest.policy.model import (
    DataValidationRule,
    LeakageRule,
    RollbackTarget,
    SeparationRule,
    StagePolicy,
)
from mlspec_attest.policy.problems import Findings
from mlspec_attest.policy.requirements import parse_requirements


class _Sections:
    """Checks one section at a time against the stages the policy declares."""

    def __init__(self, stages: Sequence[StagePolicy], report: Findings) -> None:
        self.stages = stages
        self.names = [s.name for s in stages]
        self.report = report

    def stage_ref(self, path: list[str | int], name: str | None) -> None:
        if name is not None and name not in self.names:
            self.report(path, f"unknown stage {name!r}")

    def objectives(self, obj: dict[str, Any] | None) -> dict[str, Any]:
        objective_stages = [s.name for s in self.stages if s.kind is StageKind.OBJECTIVES]
        if obj is None:
            return {"objectives_stage": objective_stages[0]} if objective_stages else {}
        self.stage_ref(["objectives", "stage"], obj.get("stage"))
        stage = obj.get("stage") or (objective_stages[0] if objective_stages else None)
        if stage is None:
            self.report(
                ["objectives"], "no stage of kind 'objectives' to read the objectives document from"
            )
        return {"objectives_stage": stage, "objectives_required": obj.get("required", True)}

    def separation(self, sep: dict[str, Any]) -> SeparationRule:
        for field_name in ("split", "evaluate", "test"):
            self.stage_ref(["separation", field_name], sep[field_name])
        valid_refs = set(self.names) | {k.value for k in StageKind}
        for j, ref in enumerate(sep.get("notReadBy", [])):
            if ref not in valid_refs:
                self.report(
                    ["separation", "notReadBy", j],
                    f"{ref!r} is neither a stage name nor a stage kind",
                )
        rule = SeparationRule(
            split=sep["split"],
            evaluate=sep["evaluate"],
            test=sep["test"],
            holdback_role=sep.get("holdbackRole", "holdback"),
            validation_role=sep.get("validationRole", "validation"),
            model_role=sep.get("modelRole", "model"),
            not_read_by=tuple(sep.get("notReadBy", ("transform", "train", "evaluate"))),
        )
        kinds = {s.name: s.kind.value for s in self.stages}
        if sep["test"] in kinds and sep["evaluate"] in kinds and sep["test"] == sep["evaluate"]:
            self.report(["separation", "test"], "test and evaluate must be different stages")
        return rule

    def leakage(self, leak: dict[str, Any]) -> LeakageRule:
        self.stage_ref(["leakage", "stage"], leak["stage"])
        rule = LeakageRule(stage=leak["stage"], tolerance=leak.get("tolerance", 0))
        if "pairs" in leak:
            for i, (a, b) in enumerate(leak["pairs"]):
                if a == b:
                    self.report(
                        ["leakage", "pairs", i],
                        f"a pair compares two different splits, not {a!r} with itself",
                    )
            rule = LeakageRule(rule.stage, rule.tolerance, tuple((a, b) for a, b in leak["pairs"]))
        return rule

    def data_validation(self, val: dict[str, Any]) -> DataValidationRule:
        self.stage_ref(["dataValidation", "stage"], val["stage"])
        self.stage_ref(["dataValidation", "trainStage"], val.get("trainStage"))
        return DataValidationRule(
            stage=val["stage"],
            schema=val.get("schema"),
            version=val.get("version"),
            forbid_deprecated=val.get("forbidDeprecated", True),
            train_stage=val.get("trainStage"),
            schema_digest=val["schemaDigest"].removeprefix("sha256:")
            if "schemaDigest" in val
            else None,
        )


def ml_sections(
    doc: dict[str, Any], stages: Sequence[StagePolicy], report: Findings
) -> dict[str, Any]:
    """The ML sections as :class:`~mlspec_attest.policy.model.Policy` keyword arguments."""
    sections = _Sections(stages, report)
    out = sections.objectives(doc.get("objectives"))
    if doc.get("separation") is not None:
        out["separation"] = sections.separation(doc["separation"])
    if doc.get("leakage") is not None:
        out["leakage"] = sections.leakage(doc["leakage"])
    if doc.get("dataValidation") is not None:
        out["data_validation"] = sections.data_validation(doc["dataValidation"])
    out["requirements"] = parse_requirements(doc.get("requirements", []), stages, report)
    if doc.get("rollback") is not None:
        target = doc["rollback"]
        out["rollback"] = RollbackTarget(target["summary"], target.get("description", ""))
    demand_warnings(out, stages, report)
    return out


def demand_warnings(out: dict[str, Any], stages: Sequence[StagePolicy], report: Findings) -> None:
    """Warnings about what the ML sections demand (docs/policy.md, "What a section demands").

    A section that names an optional stage makes it required in effect: ``verify`` denies a
    run without it (the objectives check only with ``objectives.required: true``). And a
    ``separation`` section without a ``leakage`` section on its split stage proves the
    hold-back split apart from every other split, but compares no other pair of splits.
    """
    separation: SeparationRule | None = out.get("separation")
    leakage: LeakageRule | None = out.get("leakage")
    validation: DataValidationRule | None = out.get("data_validation")
    demands: dict[str, set[str]] = {}
    for what, names in (
        ("the dataValidation section", [validation.stage] if validation else []),
        ("the leakage section", [leakage.stage] if leakage else []),
        ("the separation section", _separation_stages(separation)),
        ("the objectives check", [out["objectives_stage"]] if _objectives_demanded(out) else []),
    ):
        for name in names:
            demands.setdefault(name, set()).add(what)
    for index, stage in enumerate(stages):
        for what in sorted(demands.get(stage.name, ())) if not stage.required else ():
            report(
                ["stages", index, "required"],
                f"{what} demands this stage: verify denies a run without an accepted "
                f"attestation of {stage.name!r}, required or not; make it required "
                "(or drop the section)",
                "warning",
            )
    if separation is not None and (leakage is None or leakage.stage != separation.split):
        report(
            ["separation"],
            f"no leakage section on the split stage {separation.split!r}: verify still "
            "compares the hold-back split with every other split, but no other pair of "
            f"splits (train with validation, ...); add `leakage: {{stage: {separation.split}}}`",
            "warning",
        )


def _separation_stages(rule: SeparationRule | None) -> list[str]:
    return [rule.split, rule.evaluate, rule.test] if rule else []


def _objectives_demanded(out: dict[str, Any]) -> bool:
    return bool(out.get("objectives_stage")) and out.get("objectives_required", True) is True
