"""The policy's stages: who signs each, after which others, and its artifact rules.

:func:`compile_stages` checks each stage on its own; :func:`ordering_problems`
checks them together once the policy exists (ordering cycles, MATCH rules that
point forward in time). :func:`usable_stage` makes a stage the schema refused
readable by both, so that one lint run reports everything else too.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from mlspec_attest.formats.stages import StageKind
from mlspec_attest.policy.model import Policy, StagePolicy
from mlspec_attest.policy.problems import Findings
from mlspec_attest.policy.rules import ArtifactRule, RuleSyntaxError, RuleVerb

SIDES = ("materials", "products")


def compile_stages(
    doc: dict[str, Any], report: Findings, signers: Collection[str] | None
) -> list[StagePolicy]:
    """Every stage of ``doc``, in order; problems go to ``report``.

    ``signers``: the functionary names a stage may name, those the policy declares
    (``None`` when the functionaries section cannot be read: names are then not checked).
    """
    names = [s["name"] for s in doc["stages"]]
    stages: list[StagePolicy] = []
    for i, raw in enumerate(doc["stages"]):
        here: list[str | int] = ["stages", i]
        if names.count(raw["name"]) > 1 and names.index(raw["name"]) != i:
            report([*here, "name"], f"duplicate stage name {raw['name']!r}")
        threshold = _check_signers(signers, raw, here, report)
        _check_after(raw, names, here, report)
        rules = {side: _artifact_rules(raw, side, here, report) for side in SIDES}
        stages.append(
            StagePolicy(
                name=raw["name"],
                kind=StageKind(raw["kind"]),
                functionaries=tuple(raw["functionaries"]),
                threshold=threshold,
                after=tuple(raw.get("after", [])),
                material_rules=rules["materials"],
                product_rules=rules["products"],
                required=raw.get("required", True),
                description=raw.get("description", ""),
            )
        )
    return stages


def _check_signers(
    known: Collection[str] | None, raw: dict[str, Any], here: list[str | int], report: Findings
) -> int:
    """The stage's threshold, after checking its functionaries exist and are enough."""
    for j, f in enumerate(raw["functionaries"]):
        if known is not None and f not in known:
            report([*here, "functionaries", j], f"unknown functionary {f!r}")
    threshold: int = raw.get("threshold", 1)
    if raw["functionaries"] and threshold > len(raw["functionaries"]):
        report(
            [*here, "threshold"],
            f"threshold {threshold} exceeds the {len(raw['functionaries'])} functionaries allowed",
        )
    return threshold


def _check_after(
    raw: dict[str, Any], names: list[str], here: list[str | int], report: Findings
) -> None:
    for j, prior in enumerate(raw.get("after", [])):
        if prior == raw["name"]:
            report([*here, "after", j], "a stage cannot come after itself")
        elif prior not in names:
            report([*here, "after", j], f"unknown stage {prior!r}")


def _artifact_rules(
    raw: dict[str, Any], side: str, here: list[str | int], report: Findings
) -> tuple[ArtifactRule, ...]:
    """The rules of one side (materials or products), with the warnings of a lax list."""
    parsed: list[ArtifactRule] = []
    for j, text in enumerate(raw.get(side, [])):
        try:
            parsed.append(ArtifactRule.parse(text))
        except RuleSyntaxError as exc:
            report([*here, side, j], str(exc))
    if side not in raw:
        report(
            [*here],
            f"no {side} rules: any {side[:-1]} passes (add rules ending with 'DISALLOW *')",
            "warning",
        )
    if raw.get(side) and (not parsed or parsed[-1].verb is not RuleVerb.DISALLOW):
        report(
            [*here, side],
            "rules do not end with 'DISALLOW *'; unlisted artifacts pass",
            "warning",
        )
    return tuple(parsed)


def ordering_problems(policy: Policy, report: Findings) -> None:
    """Ordering cycles and MATCH rules that point forward in time, into ``report``."""
    index = {s.name: i for i, s in enumerate(policy.stages)}
    for s in policy.stages:
        before = policy.predecessors(s.name)
        if s.name in s.after:
            continue  # "cannot come after itself" is already reported
        if s.name in before:
            report(["stages", index[s.name], "after"], f"ordering cycle through stage {s.name!r}")
            continue
        for side, rules in (("materials", s.material_rules), ("products", s.product_rules)):
            for j, rule in enumerate(rules):
                problem = _match_problem(rule, s.name, before, index)
                if problem is not None:
                    report(["stages", index[s.name], side, j], problem)


def _match_problem(
    rule: ArtifactRule, stage: str, before: set[str] | frozenset[str], index: dict[str, int]
) -> str | None:
    """Why a MATCH rule cannot hold: its stage is unknown or not ordered before ``stage``."""
    if rule.verb is not RuleVerb.MATCH:
        return None
    if rule.dest_stage not in index:
        return f"MATCH refers to unknown stage {rule.dest_stage!r}"
    if rule.dest_stage not in before:
        return (
            f"MATCH FROM {rule.dest_stage!r}, which is not ordered before {stage!r} "
            f"(add it to 'after', directly or transitively)"
        )
    return None


def usable_stage(raw: Any, index: int) -> tuple[dict[str, Any], list[str]]:
    """A stage the checks above can read, made from one the schema refused; and the fields
    that had to be made up or cut (findings about them would be about the stand-in).

    Fields of the right type are kept as written, so everything else about the stage
    is still checked. A rule that is not text stands in as ``DISALLOW *``, which keeps
    the other rules at their indexes.
    """
    stage = dict(raw) if isinstance(raw, dict) else {}
    made_up: list[str] = []

    def fix(name: str, value: Any) -> None:
        if value is None:
            stage.pop(name, None)
        else:
            stage[name] = value
        made_up.append(name)

    if not isinstance(stage.get("name"), str):
        fix("name", f"#{index + 1}")  # no stage name looks like this, so none refers to it
    if stage.get("kind") not in [k.value for k in StageKind]:
        fix("kind", StageKind.CUSTOM.value)
    for name in ("functionaries", "after", *SIDES):
        value = stage.get(name, None if name == "functionaries" else [])  # required, optional
        texts = _texts(value, rules=name in SIDES)
        if texts != value:
            fix(name, texts)
    for name, kind in (("threshold", int), ("required", bool), ("description", str)):
        if name in stage and not _scalar(stage[name], kind):
            fix(name, None)
    return stage, made_up


def _texts(value: Any, *, rules: bool) -> list[str]:
    """The strings of a list field: names once each, or rules at their indexes."""
    if not isinstance(value, list):
        return []
    if rules:
        return [v if isinstance(v, str) and v else "DISALLOW *" for v in value]
    return list(dict.fromkeys(v for v in value if isinstance(v, str)))


def _scalar(value: Any, kind: type) -> bool:
    """Whether an optional field holds what the schema wants (a threshold: an integer >= 1)."""
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return isinstance(value, kind)
