"""Steps 8 and 10 of in-toto's verification: material and product rules.

in-toto's own ``verify_item_rules`` decides (``RuleVerificationError``), so the
verdicts are in-toto's; mlspec-attest's rule engine only explains a failure it
found (which artifact, and why no MATCH consumed it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlspec_attest.interop.intoto.scope import LayoutScope
from mlspec_attest.interop.intoto.support import lib
from mlspec_attest.policy.rules import ArtifactRule, LinkArtifacts, RuleSyntaxError, evaluate_rules
from mlspec_attest.verify.report import Check


def _rule_text(rule: Sequence[str]) -> str:
    return " ".join(rule)


def _artifacts(link: Any) -> LinkArtifacts:
    return LinkArtifacts(materials=dict(link.materials), products=dict(link.products))


def explain(
    rules: Sequence[Sequence[str]], side: str, name: str, links: Mapping[str, Any]
) -> str | None:
    """mlspec-attest's account of a rule failure in-toto found (which artifact, and why
    no MATCH consumed it); None when the rules cannot be read by our parser."""
    try:
        parsed = tuple(ArtifactRule.parse(_rule_text(r)) for r in rules)
    except RuleSyntaxError:
        return None
    views = {n: _artifacts(link) for n, link in links.items()}
    own = views[name]
    violations = evaluate_rules(
        parsed, own.materials if side == "materials" else own.products, own, views
    )
    return "; ".join(f"{v.rule}: {v.message}" for v in violations) or None


def check_rules(
    scope: LayoutScope, items: Sequence[Any], links: Mapping[str, Any], kind: str
) -> None:
    """Check the rules of every step (or inspection) in ``items`` that has a link."""
    RuleVerificationError = lib("in_toto.exceptions").RuleVerificationError
    verify_item_rules = lib("in_toto.verifylib").verify_item_rules

    for item in items:
        if item.name not in links:
            continue
        for side, rules in (
            ("materials", item.expected_materials),
            ("products", item.expected_products),
        ):
            try:
                verify_item_rules(item.name, side, rules, dict(links))
            except RuleVerificationError as exc:
                first = str(exc).splitlines()[0] if str(exc) else "rule failed"
                scope.fail(
                    Check.ARTIFACT_RULE,
                    scope.stage(item.name),
                    f"{side} rule failed: {first}",
                    expected=f"every {side[:-1]} of the {kind} authorized by its rules",
                    found=explain(rules, side, item.name, links) or first,
                    remedy="check that the step used exactly what earlier steps produced "
                    "(an artifact changed between steps, or an unexpected one appeared)",
                )
