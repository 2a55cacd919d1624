"""in-toto artifact rules: a MATCH rule built without a destination type (mutation survivors
of policy/rules.py)."""

from __future__ import annotations

from mlspec_attest.policy.rules import (
    ArtifactRule,
    LinkArtifacts,
    RuleVerb,
    RuleViolation,
    evaluate_rules,
)

D1 = {"sha256": "1" * 64}


def test_a_match_rule_without_destination_type_names_the_missing_artifact() -> None:
    # ArtifactRule is public and its dest_type defaults to None: such a MATCH rule is
    # compared with the stage's products and a miss names an "artifact" (there is no
    # "materials"/"products" word to singularise).
    match = ArtifactRule(RuleVerb.MATCH, "*.csv", dest_stage="split")
    disallow = ArtifactRule.parse("DISALLOW *")
    link = LinkArtifacts(materials={}, products={"train.csv": D1})
    links = {"split": LinkArtifacts(materials={"train.csv": D1}, products={})}
    violations = evaluate_rules((match, disallow), link.products, link, links)
    assert violations == [
        RuleViolation(
            disallow,
            ("train.csv",),
            "not authorized by any earlier rule: train.csv "
            "('split' recorded no artifact 'train.csv')",
        )
    ]


def test_a_match_rule_without_destination_type_consumes_what_the_stage_produced() -> None:
    match = ArtifactRule(RuleVerb.MATCH, "*.csv", dest_stage="split")
    disallow = ArtifactRule.parse("DISALLOW *")
    link = LinkArtifacts(materials={}, products={"train.csv": D1})
    links = {"split": LinkArtifacts(materials={}, products={"train.csv": D1})}
    assert evaluate_rules((match, disallow), link.products, link, links) == []
