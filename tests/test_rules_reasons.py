"""The reason an artifact rule gives: a denial names the artifact and why nothing authorized it.

The messages are what a user reads in the report ("every denial names ... what was
expected, what was found"), so they are asserted word for word.
"""

from __future__ import annotations

import pytest

from mlspec_attest.policy.rules import (
    ArtifactRule,
    LinkArtifacts,
    RuleSyntaxError,
    RuleViolation,
    evaluate_rules,
)

D1 = {"sha256": "1" * 64}
D2 = {"sha256": "2" * 64}


def violations(
    texts: tuple[str, ...],
    products: dict[str, dict[str, str]],
    links: dict[str, LinkArtifacts],
) -> list[RuleViolation]:
    link = LinkArtifacts({}, products)
    rules = tuple(ArtifactRule.parse(t) for t in texts)
    return evaluate_rules(rules, products, link, links)


def test_digest_mismatch_names_both_short_digests() -> None:
    train = LinkArtifacts({}, {"model.bin": D2})
    [v] = violations(
        ("MATCH model.bin WITH PRODUCTS FROM train", "DISALLOW *"),
        {"model.bin": D1},
        {"train": train},
    )
    assert v.artifacts == ("model.bin",)
    assert v.message == (
        "not authorized by any earlier rule: model.bin (differs from what 'train' recorded "
        "(sha256:111111111111… here, sha256:222222222222… there))"
    )


def test_digest_mismatch_without_sha256_says_so() -> None:
    train = LinkArtifacts({}, {"model.bin": {"blake3": "2" * 64}})
    [v] = violations(
        ("MATCH model.bin WITH PRODUCTS FROM train", "DISALLOW *"),
        {"model.bin": {"blake3": "1" * 64}},
        {"train": train},
    )
    assert v.message.endswith("(sha256:?… here, sha256:?… there))")


def test_missing_stage_is_the_reason() -> None:
    [v] = violations(
        ("MATCH data/* WITH PRODUCTS FROM split", "DISALLOW *"),
        {"data/a.csv": D1, "data/b.csv": D1},
        {},
    )
    assert v.artifacts == ("data/a.csv", "data/b.csv")
    assert v.message == (
        "not authorized by any earlier rule: "
        "data/a.csv (stage 'split' has no valid attestation to match); "
        "data/b.csv (stage 'split' has no valid attestation to match)"
    )


def test_artifact_the_other_stage_never_recorded() -> None:
    split = LinkArtifacts({"raw.csv": D1}, {"other.csv": D1})
    [v] = violations(
        ("MATCH train.csv WITH PRODUCTS FROM split", "DISALLOW *"),
        {"train.csv": D1},
        {"split": split},
    )
    assert v.message == (
        "not authorized by any earlier rule: train.csv ('split' recorded no product 'train.csv')"
    )
    [v] = violations(
        ("MATCH train.csv WITH MATERIALS FROM split", "DISALLOW *"),
        {"train.csv": D1},
        {"split": split},
    )
    assert v.message.endswith("('split' recorded no material 'train.csv')")


def test_first_reason_is_kept_when_several_rules_miss() -> None:
    train = LinkArtifacts({}, {"model.bin": D2})
    [v] = violations(
        (
            "MATCH model.bin WITH PRODUCTS FROM train",
            "MATCH model.bin WITH PRODUCTS FROM evaluate",
            "DISALLOW *",
        ),
        {"model.bin": D1},
        {"train": train},
    )
    assert "differs from what 'train' recorded" in v.message
    assert "evaluate" not in v.message


def test_unmatched_artifact_without_a_match_rule_has_no_reason() -> None:
    [v] = violations(("DISALLOW *",), {"x.bin": D1}, {})
    assert v.message == "not authorized by any earlier rule: x.bin"
    assert str(v.rule) == "DISALLOW *"


def test_require_names_the_absent_artifact() -> None:
    [v] = violations(("REQUIRE model.bin",), {"x.bin": D1}, {})
    assert v.artifacts == ("model.bin",)
    assert v.message == "required artifact 'model.bin' is absent"


USAGE = "MATCH <pattern> [IN <prefix>] WITH (MATERIALS|PRODUCTS) [IN <prefix>] FROM <stage>"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty rule"),
        (
            "COPY a",
            "unknown rule verb 'COPY' (expected one of "
            "MATCH, CREATE, DELETE, MODIFY, ALLOW, DISALLOW, REQUIRE)",
        ),
        ("CREATE a b", "CREATE takes exactly one pattern: 'CREATE a b'"),
        ("MATCH a", f"incomplete MATCH rule 'MATCH a'; expected {USAGE}"),
        # a verb in the place of WITH is refused even when the rest would parse
        (
            "MATCH a FOO PRODUCTS FROM x",
            f"malformed MATCH rule 'MATCH a FOO PRODUCTS FROM x'; expected {USAGE}",
        ),
        # a destination prefix, but no FROM: malformed, not a missing prefix
        (
            "MATCH a WITH PRODUCTS IN p",
            f"malformed MATCH rule 'MATCH a WITH PRODUCTS IN p'; expected {USAGE}",
        ),
    ],
)
def test_parse_error_messages(text: str, message: str) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        ArtifactRule.parse(text)
    assert str(info.value) == message
