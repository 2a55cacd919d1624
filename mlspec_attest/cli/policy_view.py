"""What ``policy show`` draws: the stages in order, who signs them, data flow and checks.

The text and the Mermaid renderings (:mod:`.render`) both read this view, never the
policy's mappings in their own order. A signed policy's payload is canonical JSON,
whose object keys (``functionaries``, ``deploy.artifacts``) come out sorted, so the order
they were written in survives only in the YAML; what both forms keep is the stage list
and the lists inside each stage. Every order here is derived from those, then from
names, so a YAML policy and its signed form show the same thing line for line.
"""

from __future__ import annotations

import posixpath
from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, TypeVar

from msgspec import Struct

from mlspec_attest.policy.criteria import describe_criterion
from mlspec_attest.policy.requirements import requirement_stages

if TYPE_CHECKING:
    from mlspec_attest.policy.model import DeployArtifact, Functionary, Policy, StagePolicy
    from mlspec_attest.policy.rules import ArtifactRule

K = TypeVar("K", bound=Hashable)


class Flow(Struct, frozen=True):
    """An artifact a stage's MATCH rule takes from an earlier stage (a data-flow edge)."""

    source: str
    target: str
    artifact: str
    """The artifact's name in the source stage (the rule's pattern under its ``WITH ... IN``)."""


class Check(Struct, frozen=True):
    """One ML check of the policy, attached to every stage it names."""

    key: str
    """What the check is called in the policy: its section, or a requirement's id."""
    topic: str
    text: str
    stages: tuple[str, ...]


class StageView(Struct, frozen=True):
    """One stage as shown: its number, signers with threshold, and what is attached to it."""

    number: int
    stage: StagePolicy
    signers: str
    """``2 of 2 keys: a, b`` (or identities)."""
    inputs: tuple[tuple[str, tuple[str, ...]], ...]
    """(source stage, artifacts) for every stage its MATCH rules take artifacts from."""
    checks: tuple[Check, ...]
    deploy: tuple[DeployArtifact, ...]

    @property
    def threshold(self) -> str:
        """``k of n``."""
        return f"{self.stage.threshold} of {len(self.stage.functionaries)}"


class PolicyView(Struct, frozen=True):
    """A policy laid out for display, in the same order for YAML and signed policies."""

    stages: tuple[StageView, ...]
    functionaries: tuple[Functionary, ...]
    flows: tuple[tuple[tuple[str, str], tuple[str, ...]], ...]
    """((source, target), artifacts): one data-flow edge per pair of stages."""
    checks: tuple[Check, ...]
    deploy: tuple[DeployArtifact, ...]
    policy_wide: tuple[str, ...]


def policy_view(policy: Policy) -> PolicyView:
    """Lay ``policy`` out for display (no trust decision)."""
    names = [s.name for s in policy.stages]
    flows = tuple(f for s in policy.stages for f in _flows(s, names))
    checks = _checks(policy, names)
    deploy = _deploy_in_order(policy, names)
    stages = tuple(
        StageView(
            number=i,
            stage=s,
            signers=signers_phrase(policy, s),
            inputs=_grouped((f.source, f.artifact) for f in flows if f.target == s.name),
            checks=tuple(c for c in checks if s.name in c.stages),
            deploy=tuple(a for a in deploy if a.stage == s.name),
        )
        for i, s in enumerate(policy.stages, 1)
    )
    return PolicyView(
        stages=stages,
        functionaries=_functionaries_in_order(policy),
        flows=_grouped(((f.source, f.target), f.artifact) for f in flows),
        checks=tuple(c for c in checks if c.stages),
        deploy=deploy,
        policy_wide=_policy_wide(policy, [c for c in checks if not c.stages]),
    )


def signers_phrase(policy: Policy, stage: StagePolicy) -> str:
    """``2 of 2 keys: a, b``; Sigstore functionaries are shown with their identity."""
    known = [policy.functionaries.get(n) for n in stage.functionaries]
    keyless = [f is not None and f.identity is not None for f in known]
    count = len(stage.functionaries)
    if not any(keyless):
        noun = "key" if count == 1 else "keys"
    elif all(keyless):
        noun = "identity" if count == 1 else "identities"
    else:
        noun = "signer" if count == 1 else "signers"
    who = [
        f"{name} = {f.identity.describe()}" if f is not None and f.identity is not None else name
        for name, f in zip(stage.functionaries, known, strict=True)
    ]
    return f"{stage.threshold} of {count} {noun}: {', '.join(who)}"


def flow_artifact(rule: ArtifactRule) -> str:
    """The name a MATCH rule's artifact has in the stage it comes from."""
    return posixpath.join(rule.dest_prefix, rule.pattern) if rule.dest_prefix else rule.pattern


def _flows(stage: StagePolicy, names: list[str]) -> Iterable[Flow]:
    for rule in (*stage.material_rules, *stage.product_rules):
        # Only MATCH names a stage; one naming an unknown stage or itself is a lint error.
        if (
            rule.dest_stage is not None
            and rule.dest_stage in names
            and rule.dest_stage != stage.name
        ):
            yield Flow(rule.dest_stage, stage.name, flow_artifact(rule))


def _grouped(pairs: Iterable[tuple[K, str]]) -> tuple[tuple[K, tuple[str, ...]], ...]:
    """(key, values) in order of each key's first appearance, values deduplicated in order."""
    groups: dict[K, list[str]] = {}
    for key, value in pairs:
        values = groups.setdefault(key, [])
        if value not in values:
            values.append(value)
    return tuple((k, tuple(v)) for k, v in groups.items())


def _functionaries_in_order(policy: Policy) -> tuple[Functionary, ...]:
    """In order of first use by the stages, then those no stage uses, by name."""
    used = [n for s in policy.stages for n in s.functionaries]
    order = list(dict.fromkeys(n for n in used if n in policy.functionaries))
    order += sorted(set(policy.functionaries) - set(order))
    return tuple(policy.functionaries[n] for n in order)


def _deploy_in_order(policy: Policy, names: list[str]) -> tuple[DeployArtifact, ...]:
    """In the order of the stages that produce them, then by role."""
    rank = {n: i for i, n in enumerate(names)}
    return tuple(
        sorted(policy.deploy.values(), key=lambda a: (rank.get(a.stage, len(names)), a.role))
    )


def _in_stage_order(names: list[str], wanted: Iterable[str | None]) -> tuple[str, ...]:
    wanted_set = set(wanted)
    return tuple(n for n in names if n in wanted_set)


def _checks(policy: Policy, names: list[str]) -> list[Check]:
    """Every ML section and requirement, with the stages each names (none: policy-wide)."""
    out: list[Check] = []
    if policy.objectives_stage:
        need = "required" if policy.objectives_required else "optional"
        text = f"signs the objectives document, the launch criteria ({need})"
        out.append(
            Check(
                "objectives", "objectives", text, _in_stage_order(names, [policy.objectives_stage])
            )
        )
    if policy.separation:
        sep = policy.separation
        text = (
            f"{sep.test} consumes the {sep.holdback_role!r} split of {sep.split}, after "
            f"{sep.evaluate} (which uses {sep.validation_role!r}), same {sep.model_role!r}; "
            f"{sep.holdback_role!r} never read by {', '.join(sep.not_read_by)}"
        )
        stages = _in_stage_order(names, [sep.split, sep.evaluate, sep.test])
        out.append(Check("separation", "separation", text, stages))
    if policy.leakage:
        leak = policy.leakage
        pairs = ", ".join(f"{a}/{b}" for a, b in leak.pairs)
        text = f"row overlaps {pairs} <= {leak.tolerance}"
        out.append(Check("leakage", "leakage", text, _in_stage_order(names, [leak.stage])))
    if policy.data_validation:
        out.append(_validation_check(policy, names))
    for req in policy.requirements:
        stages = _in_stage_order(names, requirement_stages(req))
        text = req.expr if req.criterion is None else describe_criterion(req.criterion)
        out.append(Check(req.id, f"requirement {req.id}", text, stages))
    return out


def _validation_check(policy: Policy, names: list[str]) -> Check:
    val = policy.data_validation
    assert val is not None
    schema = (val.schema or "any schema") + (f" v{val.version}" if val.version else "")
    text = f"{val.stage} passed against {schema}"
    if val.forbid_deprecated:
        text += (
            f"; {val.train_stage} trains on no deprecated data"
            if val.train_stage
            else "; no deprecated data"
        )
    return Check(
        "dataValidation",
        "data validation",
        text,
        _in_stage_order(names, [val.stage, val.train_stage]),
    )


def _policy_wide(policy: Policy, unattached: list[Check]) -> tuple[str, ...]:
    out: list[str] = []
    if policy.require_policy_digest:
        out.append("every attestation must be bound to this policy (requirePolicyDigest)")
    out += [f"{c.topic}: {c.text}" for c in unattached]
    if policy.rollback is not None:
        out.append(f"rollback target: verification summary {policy.rollback.summary}")
    return tuple(out)
