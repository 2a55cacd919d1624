"""in-toto artifact rules: grammar and evaluation, with in-toto's queue semantics."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from mlspec_attest.policy.rules import (
    ArtifactRule,
    LinkArtifacts,
    RuleSyntaxError,
    RuleVerb,
    RuleViolation,
    evaluate_rules,
)

D1 = {"sha256": "1" * 64}
D2 = {"sha256": "2" * 64}
D3 = {"sha256": "3" * 64}


def rules(*texts: str) -> tuple[ArtifactRule, ...]:
    return tuple(ArtifactRule.parse(t) for t in texts)


def run(
    texts: tuple[str, ...],
    materials: Mapping[str, Mapping[str, str]],
    products: Mapping[str, Mapping[str, str]],
    *,
    side: str = "products",
    links: Mapping[str, LinkArtifacts] | None = None,
) -> list[tuple[str, tuple[str, ...]]]:
    """Evaluate and return [(rule text, artifacts)] for every violation."""
    link = LinkArtifacts(materials, products)
    artifacts = products if side == "products" else materials
    violations = evaluate_rules(rules(*texts), artifacts, link, {"self": link, **(links or {})})
    return [(str(v.rule), v.artifacts) for v in violations]


# ---------------------------------------------------------------- grammar
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CREATE model/*", ArtifactRule(RuleVerb.CREATE, "model/*")),
        ("delete tmp", ArtifactRule(RuleVerb.DELETE, "tmp")),
        ("MODIFY a.txt", ArtifactRule(RuleVerb.MODIFY, "a.txt")),
        ("ALLOW *", ArtifactRule(RuleVerb.ALLOW, "*")),
        ("DISALLOW *", ArtifactRule(RuleVerb.DISALLOW, "*")),
        ("REQUIRE model", ArtifactRule(RuleVerb.REQUIRE, "model")),
        (
            "MATCH data/* WITH PRODUCTS FROM split",
            ArtifactRule(RuleVerb.MATCH, "data/*", None, "products", None, "split"),
        ),
        (
            "MATCH * IN src WITH MATERIALS IN build FROM compile",
            ArtifactRule(RuleVerb.MATCH, "*", "src", "materials", "build", "compile"),
        ),
        (
            "match x in a with products from s",
            ArtifactRule(RuleVerb.MATCH, "x", "a", "products", None, "s"),
        ),
    ],
)
def test_parse(text: str, expected: ArtifactRule) -> None:
    assert ArtifactRule.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "CREATE model",
        "DISALLOW *",
        "MATCH data/* WITH PRODUCTS FROM split",
        "MATCH * IN src WITH MATERIALS IN build FROM compile",
        "MATCH * IN src WITH PRODUCTS FROM compile",
        "MATCH * WITH PRODUCTS IN dist FROM compile",
    ],
)
def test_str_round_trip(text: str) -> None:
    assert str(ArtifactRule.parse(text)) == text
    assert ArtifactRule.parse(str(ArtifactRule.parse(text))) == ArtifactRule.parse(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty rule"),
        ("   ", "empty rule"),
        ("COPY a", "unknown rule verb 'COPY'"),
        ("CREATE", "exactly one pattern"),
        ("CREATE a b", "exactly one pattern"),
        ("REQUIRE", "exactly one pattern"),
        ("MATCH a", "incomplete MATCH"),
        ("MATCH a WITH PRODUCTS", "incomplete MATCH"),
        ("MATCH a WITH ARTIFACTS FROM s", "malformed MATCH"),
        ("MATCH a AS b WITH PRODUCTS FROM s", "malformed MATCH"),
        ("MATCH a WITH PRODUCTS FROM", "malformed MATCH"),
        ("MATCH a WITH PRODUCTS TO s", "malformed MATCH"),
        ("MATCH a WITH PRODUCTS FROM s extra", "malformed MATCH"),
        ("MATCH a WITH PRODUCTS IN FROM s", "malformed MATCH"),
        ("MATCH a IN WITH PRODUCTS FROM s", "malformed MATCH"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(RuleSyntaxError, match=message):
        ArtifactRule.parse(text)


def test_rule_syntax_error_is_a_value_error() -> None:
    assert issubclass(RuleSyntaxError, ValueError)


# -------------------------------------------------------------- evaluation
def test_disallow_fails_on_anything_left() -> None:
    assert run(("DISALLOW *",), {}, {"a": D1, "b": D2}) == [("DISALLOW *", ("a", "b"))]
    assert run(("DISALLOW *",), {}, {}) == []


def test_disallow_only_its_pattern() -> None:
    assert run(("DISALLOW *.exe",), {}, {"a.txt": D1, "b.exe": D2}) == [
        ("DISALLOW *.exe", ("b.exe",))
    ]


def test_without_disallow_everything_passes() -> None:
    assert run(("CREATE nothing",), {}, {"a": D1}) == []


def test_create_consumes_only_new_products() -> None:
    # 'kept' exists as a material too, so it was not created
    products = {"new": D1, "kept": D2}
    assert run(("CREATE *", "DISALLOW *"), {"kept": D2}, products) == [("DISALLOW *", ("kept",))]


def test_create_does_not_apply_to_materials() -> None:
    assert run(("CREATE *", "DISALLOW *"), {"m": D1}, {}, side="materials") == [
        ("DISALLOW *", ("m",))
    ]


def test_delete_consumes_materials_missing_from_products() -> None:
    materials = {"gone": D1, "kept": D2}
    assert run(("DELETE *", "DISALLOW *"), materials, {"kept": D2}, side="materials") == [
        ("DISALLOW *", ("kept",))
    ]
    # on the products side DELETE can never consume anything
    assert run(("DELETE *", "DISALLOW *"), materials, {"kept": D2}) == [("DISALLOW *", ("kept",))]


def test_modify_consumes_changed_artifacts_only() -> None:
    materials = {"changed": D1, "same": D2}
    products = {"changed": D3, "same": D2}
    assert run(("MODIFY *", "DISALLOW *"), materials, products) == [("DISALLOW *", ("same",))]
    assert run(("MODIFY *", "DISALLOW *"), materials, products, side="materials") == [
        ("DISALLOW *", ("same",))
    ]


def test_allow_consumes_by_pattern() -> None:
    assert run(("ALLOW *.log", "DISALLOW *"), {}, {"a.log": D1, "b.bin": D2}) == [
        ("DISALLOW *", ("b.bin",))
    ]


def test_star_matches_slashes_like_fnmatch() -> None:
    assert run(("ALLOW data/*", "DISALLOW *"), {}, {"data/a/b/c.csv": D1}) == []


def test_first_rule_wins() -> None:
    # ALLOW consumed the artifact, so the later DISALLOW no longer sees it
    assert run(("ALLOW a", "DISALLOW a"), {}, {"a": D1}) == []
    # DISALLOW first fails even though a later rule would allow it
    assert run(("DISALLOW a", "ALLOW a"), {}, {"a": D1}) == [("DISALLOW a", ("a",))]


def test_require() -> None:
    assert run(("REQUIRE model",), {}, {"model": D1}) == []
    assert run(("REQUIRE model",), {}, {"other": D1}) == [("REQUIRE model", ("model",))]


def test_require_is_a_literal_name_not_a_pattern() -> None:
    assert run(("REQUIRE mod*",), {}, {"model": D1}) == [("REQUIRE mod*", ("mod*",))]


def test_require_sees_the_queue_not_all_artifacts() -> None:
    # as in in-toto: an artifact consumed by an earlier rule is no longer queued
    assert run(("ALLOW model", "REQUIRE model"), {}, {"model": D1}) == [
        ("REQUIRE model", ("model",))
    ]


def test_all_violations_are_reported() -> None:
    out = run(("REQUIRE x", "DISALLOW *.bin", "DISALLOW *"), {}, {"a.bin": D1})
    assert out == [
        ("REQUIRE x", ("x",)),
        ("DISALLOW *.bin", ("a.bin",)),
        ("DISALLOW *", ("a.bin",)),
    ]


# ------------------------------------------------------------------ MATCH
def split_link() -> LinkArtifacts:
    return LinkArtifacts({"raw.csv": D3}, {"data/train.csv": D1, "data/test.csv": D2})


def test_match_same_name_and_digest() -> None:
    out = run(
        ("MATCH data/* WITH PRODUCTS FROM split", "DISALLOW *"),
        {"data/train.csv": D1},
        {},
        side="materials",
        links={"split": split_link()},
    )
    assert out == []


def test_match_refuses_a_changed_digest() -> None:
    out = run(
        ("MATCH data/* WITH PRODUCTS FROM split", "DISALLOW *"),
        {"data/train.csv": D3},
        {},
        side="materials",
        links={"split": split_link()},
    )
    assert out == [("DISALLOW *", ("data/train.csv",))]


def test_match_refuses_an_artifact_the_other_stage_never_had() -> None:
    out = run(
        ("MATCH * WITH PRODUCTS FROM split", "DISALLOW *"),
        {"data/train.csv": D1, "data/extra.csv": D1},
        {},
        side="materials",
        links={"split": split_link()},
    )
    assert out == [("DISALLOW *", ("data/extra.csv",))]


def test_match_against_materials_of_the_other_stage() -> None:
    rules_ = ("MATCH raw.csv WITH MATERIALS FROM split", "DISALLOW *")
    links = {"split": split_link()}
    assert run(rules_, {"raw.csv": D3}, {}, side="materials", links=links) == []
    rules_ = ("MATCH raw.csv WITH PRODUCTS FROM split", "DISALLOW *")
    assert run(rules_, {"raw.csv": D3}, {}, side="materials", links=links) == [
        ("DISALLOW *", ("raw.csv",))
    ]


def test_match_with_a_missing_stage_consumes_nothing() -> None:
    out = run(
        ("MATCH * WITH PRODUCTS FROM nowhere", "DISALLOW *"),
        {"data/train.csv": D1},
        {},
        side="materials",
    )
    assert out == [("DISALLOW *", ("data/train.csv",))]


def test_match_compares_the_whole_digest_set() -> None:
    dest = LinkArtifacts({}, {"model": {"sha256": "1" * 64, "manifest-sha256": "2" * 64}})
    forged = {"model": {"sha256": "1" * 64, "manifest-sha256": "9" * 64}}
    out = run(
        ("MATCH model WITH PRODUCTS FROM train", "DISALLOW *"),
        forged,
        {},
        side="materials",
        links={"train": dest},
    )
    assert out == [("DISALLOW *", ("model",))]


def test_match_with_source_prefix() -> None:
    # MATCH * IN src: src/a.py here is a.py in the other stage's products
    dest = LinkArtifacts({}, {"a.py": D1, "b.py": D2})
    out = run(
        ("MATCH * IN src WITH PRODUCTS FROM write", "DISALLOW *"),
        {"src/a.py": D1, "src/b.py": D3, "a.py": D1},
        {},
        side="materials",
        links={"write": dest},
    )
    # b.py differs; the top-level a.py is outside the prefix
    assert out == [("DISALLOW *", ("a.py", "src/b.py"))]


def test_match_with_destination_prefix() -> None:
    dest = LinkArtifacts({}, {"dist/model.bin": D1})
    out = run(
        ("MATCH model.bin WITH PRODUCTS IN dist FROM package", "DISALLOW *"),
        {"model.bin": D1},
        {},
        side="materials",
        links={"package": dest},
    )
    assert out == []


def test_match_with_both_prefixes() -> None:
    dest = LinkArtifacts({}, {"build/lib/x.so": D1, "build/lib/y.so": D2})
    out = run(
        ("MATCH * IN vendor WITH PRODUCTS IN build FROM compile", "DISALLOW *"),
        {"vendor/lib/x.so": D1, "vendor/lib/y.so": D1},
        {},
        side="materials",
        links={"compile": dest},
    )
    assert out == [("DISALLOW *", ("vendor/lib/y.so",))]


def test_match_prefix_is_a_directory_not_a_string_prefix() -> None:
    dest = LinkArtifacts({}, {"a.py": D1})
    out = run(
        ("MATCH * IN src WITH PRODUCTS FROM write", "DISALLOW *"),
        {"srcfoo/a.py": D1},
        {},
        side="materials",
        links={"write": dest},
    )
    assert out == [("DISALLOW *", ("srcfoo/a.py",))]


# ---------------------------------------------------------------- reasons
# What a user reads in the report ("every denial names ... what was expected, what was
# found"), asserted word for word: mutation testing (docs/testing.md) showed that tests
# checking only which rule failed would not notice a wrong or empty reason.
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
