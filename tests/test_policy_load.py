"""Policy YAML: lint with line numbers, every invariant, templates, signed policies."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlspec_attest.errors import PolicyError
from mlspec_attest.formats.rfc3339 import parse_rfc3339
from mlspec_attest.formats.stages import StageKind
from mlspec_attest.policy import (
    Problem,
    compile_policy,
    lint_policy_text,
    load_policy_yaml,
    parse_signed_policy,
    sign_policy,
)

from .support import PROJECT_ROOT, KeyPair, indent_pem

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def line_no(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


def policy_text(keys: dict[str, KeyPair], stages: str, *, extra: str = "", head: str = "") -> str:
    return (
        "apiVersion: mlspec-attest/v1\n"
        "kind: Policy\n"
        f"{head}"
        'expires: "2099-01-01T00:00:00Z"\n'
        "functionaries:\n"
        "  alice:\n"
        "    publicKey: |\n"
        f"{indent_pem(keys['ml-engineer'].pem, 6)}\n"
        "  bob:\n"
        "    publicKey: |\n"
        f"{indent_pem(keys['release-engineer'].pem, 6)}\n"
        "stages:\n"
        f"{stages}"
        f"{extra}"
    )


def lint(text: str, base_dir: Path = Path(".")) -> tuple[object, list[Problem]]:
    return lint_policy_text(text, source="policy.yaml", base_dir=base_dir, now=NOW)


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


GOOD_STAGES = """\
  - name: train
    kind: train
    functionaries: [alice]
    materials: [DISALLOW *]
    products:
      - CREATE model
      - DISALLOW *
  - name: package
    kind: package
    functionaries: [bob]
    after: [train]
    materials:
      - MATCH model WITH PRODUCTS FROM train
      - DISALLOW *
    products:
      - CREATE dist/model
      - DISALLOW *
"""


def test_a_good_policy_compiles(keys: dict[str, KeyPair]) -> None:
    policy, problems = lint(policy_text(keys, GOOD_STAGES))
    assert problems == []
    assert policy is not None
    assert [s.name for s in policy.stages] == ["train", "package"]  # type: ignore[attr-defined]
    package = policy.stage("package")  # type: ignore[attr-defined]
    assert package.kind is StageKind.PACKAGE
    assert package.threshold == 1 and package.required
    assert [str(r) for r in package.material_rules] == [
        "MATCH model WITH PRODUCTS FROM train",
        "DISALLOW *",
    ]
    assert policy.functionaries["alice"].keyid == keys["ml-engineer"].keyid  # type: ignore[attr-defined]


def test_several_errors_each_with_its_line(keys: dict[str, KeyPair]) -> None:
    stages = """\
  - name: train
    kind: train
    functionaries: [alice, ghost]
    threshold: 3
    after: [nowhere]
    products:
      - CREATE
      - DISALLOW *
  - name: package
    kind: package
    functionaries: [bob]
    after: [package]
  - name: train
    kind: train
    functionaries: [alice]
"""
    extra = """\
deploy:
  artifacts:
    model:
      stage: nostage
      product: dist/model
"""
    text = policy_text(keys, stages, extra=extra)
    policy, problems = lint(text)
    assert policy is None
    problems = errors(problems)  # (warnings about missing rules are not the point here)
    found = [(p.line, p.path, p.severity) for p in problems]
    assert found == [
        (line_no(text, "ghost"), "stages[0].functionaries[1]", "error"),
        (line_no(text, "threshold: 3"), "stages[0].threshold", "error"),
        (line_no(text, "after: [nowhere]"), "stages[0].after[0]", "error"),
        (line_no(text, "- CREATE"), "stages[0].products[0]", "error"),
        (line_no(text, "after: [package]"), "stages[1].after[0]", "error"),
        (line_no(text, "- name: train", 2), "stages[2].name", "error"),
        (line_no(text, "stage: nostage"), "deploy.artifacts.model.stage", "error"),
    ]
    messages = [p.message for p in problems]
    assert "unknown functionary 'ghost'" in messages[0]
    assert "threshold 3 exceeds the 2 functionaries" in messages[1]
    assert "unknown stage 'nowhere'" in messages[2]
    assert "CREATE takes exactly one pattern" in messages[3]
    assert "cannot come after itself" in messages[4]
    assert "duplicate stage name 'train'" in messages[5]
    assert "unknown stage 'nostage'" in messages[6]
    assert str(problems[0]).startswith(f"line {line_no(text, 'ghost')}: error: stage 1 (train), ")


def test_load_policy_yaml_raises_with_every_error(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    stages = GOOD_STAGES.replace("[alice]", "[alice, ghost]").replace("[bob]", "[bob, eve]")
    path = tmp_path / "p.yaml"
    path.write_text(policy_text(keys, stages))
    with pytest.raises(PolicyError, match="2 error") as info:
        load_policy_yaml(path, now=NOW)
    assert len(info.value.problems) == 2
    assert "ghost" in info.value.diagnostics() and "eve" in info.value.diagnostics()


def test_load_policy_yaml_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy_yaml(tmp_path / "nope.yaml")


def with_unknown_fields(keys: dict[str, KeyPair]) -> list[str]:
    """The same policy with an unknown field at the top level, and in a stage."""
    nested = GOOD_STAGES.replace("    kind: package\n", "    kind: package\n    colour: red\n")
    return [
        policy_text(keys, GOOD_STAGES, head="colour: red\n"),
        policy_text(keys, nested),
    ]


def test_unknown_field_is_an_error(keys: dict[str, KeyPair]) -> None:
    for text in with_unknown_fields(keys):
        policy, problems = lint(text)
        assert policy is None
        [problem] = errors(problems)
        assert "colour" in problem.message


def test_unknown_field_is_reported_on_its_own_line(keys: dict[str, KeyPair]) -> None:
    for text in with_unknown_fields(keys):
        _, problems = lint(text)
        [problem] = errors(problems)
        assert problem.line == line_no(text, "colour: red"), str(problem)


DUPLICATE_KEY = "apiVersion: mlspec-attest/v1\nkind: Policy\nkind: Policy\n"
BROKEN_YAML = "apiVersion: mlspec-attest/v1\nkind: [Policy\nstages:\n"


@pytest.mark.parametrize("text", [DUPLICATE_KEY, BROKEN_YAML], ids=["duplicate-key", "broken-yaml"])
def test_yaml_errors_are_errors(text: str) -> None:
    policy, problems = lint(text)
    assert policy is None
    [problem] = problems
    assert problem.severity == "error"


def test_duplicate_yaml_key_message() -> None:
    _, problems = lint(DUPLICATE_KEY)
    assert "duplicate key" in problems[0].message


@pytest.mark.parametrize(
    ("text", "line"), [(DUPLICATE_KEY, 3), (BROKEN_YAML, 2)], ids=["duplicate-key", "broken-yaml"]
)
def test_yaml_errors_carry_their_line_number(text: str, line: int) -> None:
    _, problems = lint(text)
    [problem] = problems
    assert problem.line == line, repr(problem)
    assert str(problem).count("error:") == 1, str(problem)


def test_yaml_tags_never_execute(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"apiVersion: !!python/object/apply:os.mkdir ['{marker}']\nkind: Policy\n"
    policy, problems = lint(text)
    assert policy is None
    assert errors(problems)
    assert not marker.exists()


def test_threshold_above_functionaries(keys: dict[str, KeyPair]) -> None:
    text = policy_text(
        keys,
        GOOD_STAGES.replace(
            "    functionaries: [bob]\n", "    functionaries: [bob]\n    threshold: 2\n"
        ),
    )
    policy, problems = lint(text)
    assert policy is None
    [problem] = errors(problems)
    assert problem.path == "stages[1].threshold"
    assert problem.line == line_no(text, "threshold: 2")


def test_unknown_functionary(keys: dict[str, KeyPair]) -> None:
    text = policy_text(keys, GOOD_STAGES.replace("[bob]", "[mallory]"))
    _, problems = lint(text)
    [problem] = errors(problems)
    assert problem.message == "unknown functionary 'mallory'"
    assert problem.line == line_no(text, "[mallory]")


def test_match_from_a_stage_not_ordered_before(keys: dict[str, KeyPair]) -> None:
    text = policy_text(keys, GOOD_STAGES.replace("    after: [train]\n", ""))
    policy, problems = lint(text)
    assert policy is None
    [problem] = errors(problems)
    assert "MATCH FROM 'train', which is not ordered before 'package'" in problem.message
    assert problem.path == "stages[1].materials[0]"
    assert problem.line == line_no(text, "MATCH model")


def test_match_from_an_unknown_stage(keys: dict[str, KeyPair]) -> None:
    text = policy_text(keys, GOOD_STAGES.replace("FROM train", "FROM training"))
    _, problems = lint(text)
    [problem] = errors(problems)
    assert "unknown stage 'training'" in problem.message


def test_match_ordering_may_be_transitive(keys: dict[str, KeyPair]) -> None:
    stages = (
        GOOD_STAGES
        + """\
  - name: serve
    kind: serve
    functionaries: [bob]
    after: [package]
    materials:
      - MATCH model WITH PRODUCTS FROM train
      - DISALLOW *
    products:
      - CREATE serving.json
      - DISALLOW *
"""
    )
    policy, problems = lint(policy_text(keys, stages))
    assert problems == []
    assert policy is not None
    assert policy.predecessors("serve") == {"package", "train"}  # type: ignore[attr-defined]


def test_ordering_cycles(keys: dict[str, KeyPair]) -> None:
    stages = GOOD_STAGES.replace(
        "    functionaries: [alice]\n", "    functionaries: [alice]\n    after: [package]\n"
    )
    text = policy_text(keys, stages)
    policy, problems = lint(text)
    assert policy is None
    cycle = [p for p in problems if "ordering cycle" in p.message]
    assert {p.path for p in cycle} == {"stages[0].after", "stages[1].after"}
    assert {p.line for p in cycle} == {
        line_no(text, "after: [package]"),
        line_no(text, "after: [train]"),
    }


def test_expired_policy_is_an_error(keys: dict[str, KeyPair]) -> None:
    # verification would always deny it; loading still works (verify reports the denial)
    text = policy_text(keys, GOOD_STAGES).replace("2099-01-01", "2001-01-01")
    policy, problems = lint(text)
    assert policy is not None
    [problem] = problems
    assert problem.severity == "error"
    assert problem.path == "expires"
    assert problem.line == line_no(text, "expires:")
    assert "expired" in problem.message


def test_rules_without_final_disallow_warn(keys: dict[str, KeyPair]) -> None:
    text = policy_text(
        keys,
        GOOD_STAGES.replace(
            "      - CREATE dist/model\n      - DISALLOW *\n", "      - CREATE dist/model\n"
        ),
    )
    policy, problems = lint(text)
    assert policy is not None
    [problem] = problems
    assert problem.severity == "warning"
    assert problem.path == "stages[1].products"
    assert "DISALLOW *" in problem.message


def test_same_key_twice_warns(keys: dict[str, KeyPair]) -> None:
    text = policy_text(keys, GOOD_STAGES).replace(
        indent_pem(keys["release-engineer"].pem, 6), indent_pem(keys["ml-engineer"].pem, 6)
    )
    policy, problems = lint(text)
    assert policy is not None
    [problem] = problems
    assert problem.severity == "warning"
    assert "same key as functionary 'alice'" in problem.message


def test_schema_errors(keys: dict[str, KeyPair]) -> None:
    text = policy_text(keys, GOOD_STAGES.replace("kind: package", "kind: deploy"))
    _, problems = lint(text)
    [problem] = errors(problems)
    assert problem.path == "stages[1].kind"
    assert problem.line == line_no(text, "kind: deploy")
    text = policy_text(keys, GOOD_STAGES.replace("name: train", "name: Train!"))
    _, problems = lint(text)
    assert any(p.path == "stages[0].name" for p in errors(problems))
    _, problems = lint(policy_text(keys, GOOD_STAGES).replace('"2099-01-01T00:00:00Z"', '"soon"'))
    assert any(p.path == "expires" for p in errors(problems))
    _, problems = lint("apiVersion: mlspec-attest/v2\nkind: Policy\n")
    assert errors(problems)


def test_yaml_date_for_expires(keys: dict[str, KeyPair]) -> None:
    text = policy_text(keys, GOOD_STAGES).replace('"2099-01-01T00:00:00Z"', "2099-01-01")
    policy, problems = lint(text)
    assert problems == []
    assert policy.expires == datetime(2099, 1, 1, tzinfo=UTC)  # type: ignore[attr-defined]


def test_expires_offsets_are_normalized_to_utc() -> None:
    assert parse_rfc3339("2030-01-01T02:00:00+02:00") == datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="time zone"):
        parse_rfc3339("2030-01-01T00:00:00")


# ----------------------------------------------------------- key: paths
def test_key_paths_are_relative_to_the_policy(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    (tmp_path / "k").mkdir()
    (tmp_path / "k/alice.pub").write_bytes(keys["ml-engineer"].pub_path.read_bytes())
    text = policy_text(keys, GOOD_STAGES)
    text = text.replace(
        "  alice:\n    publicKey: |\n" + indent_pem(keys["ml-engineer"].pem, 6) + "\n",
        "  alice:\n    key: k/alice.pub\n",
    )
    policy, problems = lint(text, base_dir=tmp_path)
    assert problems == []
    assert policy.functionaries["alice"].keyid == keys["ml-engineer"].keyid  # type: ignore[attr-defined]

    _, problems = lint(text.replace("k/alice.pub", "k/missing.pub"), base_dir=tmp_path)
    [problem] = errors(problems)
    assert problem.path == "functionaries.alice.key"
    assert problem.line == line_no(text, "key: k/alice.pub")
    missing = (tmp_path / "k/missing.pub").resolve()
    assert problem.message == (
        f"public key {missing}: file not found "
        f"(written 'k/missing.pub', relative to the policy file's folder {tmp_path.resolve()})"
    )

    (tmp_path / "k/alice.key").write_bytes(keys["ml-engineer"].key_path.read_bytes())
    _, problems = lint(text.replace("k/alice.pub", "k/alice.key"), base_dir=tmp_path)
    [problem] = errors(problems)
    assert "not a PEM public key" in problem.message


def test_key_and_public_key_are_exclusive(keys: dict[str, KeyPair]) -> None:
    text = policy_text(keys, GOOD_STAGES).replace("  bob:\n", "  bob:\n    key: bob.pub\n")
    _, problems = lint(text)
    assert errors(problems)


def test_signed_policies_must_embed_keys(keys: dict[str, KeyPair]) -> None:
    doc = {
        "apiVersion": "mlspec-attest/v1",
        "kind": "Policy",
        "expires": "2099-01-01T00:00:00Z",
        "functionaries": {"alice": {"key": "alice.pub"}},
        "stages": [{"name": "train", "kind": "train", "functionaries": ["alice"]}],
    }
    policy, problems = compile_policy(doc, base_dir=None)
    assert policy is None
    assert "must embed publicKey" in errors(problems)[0].message


def test_lint_reports_problems_across_phases(keys: dict[str, KeyPair]) -> None:
    # A schema problem in one stage must not hide the unknown functionary in
    # another, nor the forward MATCH in a third: lint reports every problem.
    stages = GOOD_STAGES.replace("    kind: train\n", "    kind: train\n    colour: red\n")
    stages = stages.replace("[bob]", "[mallory]").replace("    after: [train]\n", "")
    text = policy_text(keys, stages)
    _, problems = lint(text)
    messages = " | ".join(p.message for p in errors(problems))
    assert "colour" in messages
    assert "unknown functionary 'mallory'" in messages
    assert "not ordered before 'package'" in messages


# ------------------------------------------------------------- templates
@pytest.mark.parametrize("name", ["lifecycle", "minimal"])
def test_templates_lint_clean(name: str) -> None:
    path = PROJECT_ROOT / "policies" / f"{name}.yaml"
    policy, problems = lint_policy_text(
        path.read_text("utf-8"), source=str(path), base_dir=path.parent, now=NOW
    )
    assert problems == []
    assert policy is not None


def test_lifecycle_template_covers_the_lifecycle() -> None:
    path = PROJECT_ROOT / "policies" / "lifecycle.yaml"
    policy = load_policy_yaml(path, now=NOW)
    assert [s.kind for s in policy.stages] == [k for k in StageKind if k is not StageKind.CUSTOM]
    assert set(policy.deploy) == {"model", "train-data", "holdback-data"}


# ------------------------------------------------------- signed policies
def test_policy_json_round_trip(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(policy_text(keys, GOOD_STAGES))
    policy = load_policy_yaml(path, now=NOW)
    again, problems = compile_policy(policy.to_json(), base_dir=None)
    assert problems == []
    assert again is not None
    assert again.to_json() == policy.to_json()
    assert again.digest() == policy.digest()


def test_signed_policy_parse(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(policy_text(keys, GOOD_STAGES))
    policy = load_policy_yaml(path, now=NOW)
    envelope = sign_policy(policy, [keys["owner"].signer])
    signed = parse_signed_policy(envelope.to_json())
    assert signed.unsigned_by([keys["owner"].public]) == []
    assert signed.unsigned_by([keys["intruder"].public]) == [keys["intruder"].public]
    assert signed.policy.to_json() == policy.to_json()
    assert signed.digest == "sha256:" + hashlib.sha256(envelope.payload).hexdigest()
