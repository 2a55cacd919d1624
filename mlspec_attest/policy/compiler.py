"""Compiling a policy document: the JSON-like tree of a YAML or signed policy -> :class:`Policy`.

One function, :func:`compile_policy`, reports *every* problem it finds (YAML
loading only adds the source line of each). The document is checked against the
policy-v1 JSON Schema first, then section by section: functionaries
(:mod:`~mlspec_attest.policy.functionaries`), the Sigstore trust root
(:mod:`~mlspec_attest.policy.trust`), stages and their ordering
(:mod:`~mlspec_attest.policy.stages`), deploy artifacts, and the ML sections
(:mod:`~mlspec_attest.policy.ml_sections`).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlspec_attest.formats.rfc3339 import parse_rfc3339
from mlspec_attest.formats.schemas import schema_errors
from mlspec_attest.formats.yamlio import LineOf
from mlspec_attest.policy.functionaries import compile_functionaries, report_shared_keys
from mlspec_attest.policy.ml_sections import ml_sections
from mlspec_attest.policy.model import DeployArtifact, Policy
from mlspec_attest.policy.problems import Findings, Problem, no_lines
from mlspec_attest.policy.stages import compile_stages, ordering_problems
from mlspec_attest.policy.trust import sigstore_trust


def compile_policy(
    doc: Any,
    *,
    base_dir: Path | None,
    line_of: LineOf = no_lines,
) -> tuple[Policy | None, list[Problem]]:
    """Validate ``doc`` and build a Policy. Returns (policy or None, every problem).

    ``base_dir`` resolves functionary ``key:`` paths; ``None`` forbids them
    (a signed policy must be self-contained). The clock plays no part: an
    expired policy compiles (verification denies it;
    :func:`~mlspec_attest.policy.problems.expiry_problems` lets lint and
    ``policy sign`` refuse it first).
    """
    report = Findings(line_of)
    checked = _schema_checked(doc, report)
    if checked is None:
        return None, report.problems
    policy = _build(checked, base_dir, report)
    report.problems.extend(ordering_problems(policy, line_of))
    if report.has_errors():
        return None, report.problems
    return policy, report.problems


def _schema_checked(doc: Any, report: Findings) -> dict[str, Any] | None:
    """``doc`` if the schema takes it (unknown fields dropped and reported), else None."""
    schema_problems = schema_errors("policy-v1", doc)
    for path, message in schema_problems:
        report(path, message)
    if not schema_problems:
        return doc  # type: ignore[no-any-return]
    # Unknown fields alone do not stop the semantic checks: drop them and go
    # on, so one lint run reports every problem. Anything else does.
    clean = _without_unknown_fields(doc, schema_problems)
    if clean is None or schema_errors("policy-v1", clean):
        return None
    return clean


def _without_unknown_fields(
    doc: Any, found: list[tuple[list[str | int], str]]
) -> dict[str, Any] | None:
    """A copy of ``doc`` without the fields reported as unknown, or None if other errors exist."""
    if not all(message.startswith("unknown field") for _, message in found):
        return None
    clean = copy.deepcopy(doc)
    for path, _ in found:
        node = clean
        for part in path[:-1]:
            node = node[part]
        node.pop(path[-1], None)
    return clean if isinstance(clean, dict) else None


def _build(doc: dict[str, Any], base_dir: Path | None, report: Findings) -> Policy:
    """The policy ``doc`` describes, in the order lint reports its sections' problems."""
    functionaries = compile_functionaries(doc, base_dir, report)
    trust = sigstore_trust(doc, functionaries, base_dir, report)
    report_shared_keys(functionaries, report)
    stages = compile_stages(doc, report)
    deploy = _deploy_artifacts(doc, [s.name for s in stages], report)
    ml = ml_sections(doc, stages, report)
    try:
        expires = parse_rfc3339(doc["expires"])
    except ValueError as exc:
        report(["expires"], f"not an RFC 3339 instant: {exc}")
        expires = datetime.now(UTC)  # a placeholder: the error above already fails the policy
    meta = doc.get("metadata", {})
    return Policy(
        expires=expires,
        functionaries=functionaries,
        stages=tuple(stages),
        deploy=deploy,
        name=meta.get("name", ""),
        description=meta.get("description", ""),
        owner=meta.get("owner", ""),
        require_policy_digest=doc.get("requirePolicyDigest", False),
        sigstore_trust=trust,
        **ml,
    )


def _deploy_artifacts(
    doc: dict[str, Any], names: list[str], report: Findings
) -> dict[str, DeployArtifact]:
    deploy: dict[str, DeployArtifact] = {}
    for role, spec in doc.get("deploy", {}).get("artifacts", {}).items():
        if spec["stage"] not in names:
            report(["deploy", "artifacts", role, "stage"], f"unknown stage {spec['stage']!r}")
        deploy[role] = DeployArtifact(
            role,
            spec["stage"],
            spec["product"],
            spec.get("required", True),
            spec.get("description", ""),
        )
    return deploy
