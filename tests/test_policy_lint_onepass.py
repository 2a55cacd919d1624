"""Lint a person can finish in one pass (issue 14, item 5), through the CLI and the library.

Every schema and semantic problem of a file that parses is reported in one run, each
once (nothing about a part the schema refused is repeated in other words); stages are
counted from 1 and named; ``expires`` takes the dates people write, quoted or not, and
is explained in words; a YAML syntax error is on the line to fix; an empty file names
what a policy needs; a file that is not found is named by its resolved path.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.formats.rfc3339 import DAY_OR_TIME_WORDS, parse_day_or_instant
from mlspec_attest.formats.schemas import load_schema
from mlspec_attest.policy import Policy, lint_policy_text
from mlspec_attest.policy.problems import Problem, human_path

from .cli.conftest import Cli, cli
from .support import PROJECT_ROOT, KeyPair, indent_pem

__all__ = ["cli"]

NOW = datetime(2026, 1, 1, tzinfo=UTC)

STAGES = """\
stages:
  - name: train
    kind: train
    functionaries: [alice]
    materials: [DISALLOW *]
    products: [CREATE model, DISALLOW *]
  - name: package
    kind: package
    functionaries: [bob]
    after: [train]
    materials: [MATCH model WITH PRODUCTS FROM train, DISALLOW *]
    products: [CREATE dist, DISALLOW *]
"""


def policy(keys: dict[str, KeyPair], *, expires: str = '"2099-01-01T00:00:00Z"') -> str:
    return (
        "apiVersion: mlspec-attest/v1\n"
        "kind: Policy\n"
        f"expires: {expires}\n"
        "functionaries:\n"
        "  alice:\n"
        "    publicKey: |\n"
        f"{indent_pem(keys['ml-engineer'].pem, 6)}\n"
        "  bob:\n"
        "    publicKey: |\n"
        f"{indent_pem(keys['release-engineer'].pem, 6)}\n"
        f"{STAGES}"
    )


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def lint(text: str, base_dir: Path = Path(".")) -> tuple[Policy | None, list[Problem]]:
    return lint_policy_text(text, source="p.yaml", base_dir=base_dir, now=NOW)


def found(problems: list[Problem]) -> list[tuple[int | None, str, str]]:
    return [(p.line, p.severity, f"{p.place}: {p.message}") for p in problems]


# ------------------------------------------------------------ one run finds everything
def test_three_mistakes_of_three_kinds_in_one_run(
    cli: Cli, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    text = policy(keys, expires="2027/01/31").replace("kind: train", "kind: training")
    text = text.replace("functionaries: [bob]", "functionaries: [mallory]")
    path = tmp_path / "three.yaml"
    path.write_text(text)
    result = cli("policy", "lint", path)
    assert result.code == 3
    assert result.err.splitlines() == [
        f"{path}:3: error: expires: '2027/01/31' is not {DAY_OR_TIME_WORDS}",
        f"{path}:{line_of(text, 'training')}: error: stage 1 (train), kind: 'training' is not "
        "one of ['objectives', 'ingest', 'analyze', 'transform', 'validate', 'split', 'train', "
        "'evaluate', 'test', 'package', 'serve', 'monitor', 'log', 'custom']",
        f"{path}:{line_of(text, 'mallory')}: error: stage 2 (package), functionaries[0]: "
        "unknown functionary 'mallory'",
    ]
    doc = cli("policy", "lint", path, "--json").json()
    assert [(p["path"], p["where"]) for p in doc["problems"]] == [
        ("expires", "expires"),
        ("stages[0].kind", "stage 1 (train), kind"),  # path: JSON, counted from 0
        ("stages[1].functionaries[0]", "stage 2 (package), functionaries[0]"),
    ]


def test_a_schema_problem_does_not_hide_the_semantic_ones_of_its_own_stage(
    keys: dict[str, KeyPair],
) -> None:
    text = policy(keys).replace("kind: package", "kind: deploy\n    threshold: 0")
    text = text.replace("[bob]", "[bob, eve]").replace("FROM train", "FROM nowhere")
    text = text.replace("after: [train]", "after: [train, later]")
    _, problems = lint(text)
    assert found(problems) == [
        (line_of(text, "deploy"), "error", "stage 2 (package), kind: 'deploy' is not one of "
         "['objectives', 'ingest', 'analyze', 'transform', 'validate', 'split', 'train', "
         "'evaluate', 'test', 'package', 'serve', 'monitor', 'log', 'custom']"),
        (line_of(text, "threshold: 0"), "error",
         "stage 2 (package), threshold: 0 is less than the minimum of 1"),
        (line_of(text, "eve"), "error", "stage 2 (package), functionaries[1]: unknown "
         "functionary 'eve'"),
        (line_of(text, "later"), "error", "stage 2 (package), after[1]: unknown stage 'later'"),
        (line_of(text, "nowhere"), "error", "stage 2 (package), materials[0]: MATCH refers "
         "to unknown stage 'nowhere'"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (  # a functionary the schema refuses is not also "unknown" where a stage names it
            ("  bob:\n    publicKey: |\n", "  bob:\n    key: 5\n  bobby:\n    publicKey: |\n"),
            ["functionaries.bob.key: 5 is not of type 'string'"],
        ),
        (  # a stage without signers: no threshold or "unknown" noise about the stand-in
            ("    functionaries: [alice]\n", ""),
            ["stage 1 (train): 'functionaries' is a required property"],
        ),
        (  # a rule list written as one string: no "no materials rules" warning
            ("    materials: [DISALLOW *]\n", "    materials: DISALLOW *\n"),
            ["stage 1 (train), materials: 'DISALLOW *' is not of type 'array'"],
        ),
        (  # a stage that is not a mapping at all
            ("  - name: package\n", "  - package\n  - name: x\n"),
            ["stage 2: 'package' is not of type 'object'"],
        ),
    ],
    ids=["broken-functionary", "stage-without-signers", "rules-as-a-string", "stage-a-string"],
)
def test_each_problem_once(
    keys: dict[str, KeyPair], edit: tuple[str, str], expected: list[str]
) -> None:
    text = policy(keys)
    old, new = edit
    assert old in text
    text = text.replace(old, new, 1)
    _, problems = lint(text)
    errors = [f"{p.place}: {p.message}" for p in problems if p.severity == "error"]
    assert len(errors) == len(expected), errors
    for error, start in zip(errors, expected, strict=True):
        assert error.startswith(start), errors


def test_unknown_stages_are_not_news_when_the_stage_list_is_broken(
    keys: dict[str, KeyPair],
) -> None:
    text = policy(keys).split("stages:\n")[0] + "stages: {train: x}\n"
    text += (
        "leakage:\n  stage: split\ndeploy:\n  artifacts:\n    model: {stage: package, product: m}\n"
    )
    _, problems = lint(text)
    assert found(problems) == [
        (line_of(text, "stages:"), "error", "stages: {'train': 'x'} is not of type 'array'")
    ]


@pytest.mark.parametrize("functionaries", ["", "functionaries: {}\n", "functionaries: [alice]\n"])
def test_stages_naming_signers_are_not_news_when_there_are_none_to_name(
    keys: dict[str, KeyPair], functionaries: str
) -> None:
    text = 'apiVersion: mlspec-attest/v1\nkind: Policy\nexpires: "2099-01-01T00:00:00Z"\n'
    text += functionaries + STAGES
    _, problems = lint(text)
    [problem] = problems  # what the schema says about functionaries, and nothing per stage
    assert problem.severity == "error" and "functionaries" in str(problem), str(problem)


# ------------------------------------------------------------ expires
@pytest.mark.parametrize(
    ("written", "instant", "warned"),
    [
        ("2099-01-31", datetime(2099, 1, 31, tzinfo=UTC), False),
        ('"2099-01-31"', datetime(2099, 1, 31, tzinfo=UTC), False),
        ("2099-01-31T12:00:00Z", datetime(2099, 1, 31, 12, tzinfo=UTC), False),
        ('"2099-01-31T14:00:00+02:00"', datetime(2099, 1, 31, 12, tzinfo=UTC), False),
        ("2099-01-31 12:00:00", datetime(2099, 1, 31, 12, tzinfo=UTC), True),
        ('"2099-01-31T12:00:00"', datetime(2099, 1, 31, 12, tzinfo=UTC), True),
    ],
)
def test_expires_as_people_write_it_quoted_or_not(
    keys: dict[str, KeyPair], written: str, instant: datetime, warned: bool
) -> None:
    compiled, problems = lint(policy(keys, expires=written))
    assert compiled is not None
    assert compiled.expires == instant
    if warned:
        [problem] = problems
        assert (problem.severity, problem.path, problem.line) == ("warning", "expires", 3)
        assert "has no time zone, so it is read as UTC; add Z (UTC) or an offset" in str(problem)
    else:
        assert problems == []


def test_a_quoted_date_is_the_same_policy_as_an_unquoted_one(keys: dict[str, KeyPair]) -> None:
    quoted, _ = lint(policy(keys, expires='"2099-01-31"'))
    bare, _ = lint(policy(keys, expires="2099-01-31"))
    assert quoted is not None and bare is not None
    assert quoted.digest() == bare.digest()


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("2099/01/31", f"'2099/01/31' is not {DAY_OR_TIME_WORDS}"),
        ('"soon"', f"'soon' is not {DAY_OR_TIME_WORDS}"),
        ('"2099-02-30"', "'2099-02-30' is not a real date (day is out of range for month)"),
        ("2099-01-31T12:00", f"'2099-01-31T12:00' is not {DAY_OR_TIME_WORDS}"),
    ],
)
def test_a_bad_expires_is_explained_in_words(
    cli: Cli, tmp_path: Path, keys: dict[str, KeyPair], written: str, message: str
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(policy(keys, expires=written))
    result = cli("policy", "lint", path)
    assert result.code == 3
    assert result.err.splitlines() == [f"{path}:3: error: expires: {message}"]
    assert not re.search(r"\\d|\^|\$'", result.err)  # no regular expression


def test_day_or_instant_agrees_with_the_schema_pattern() -> None:
    pattern = re.compile(load_schema("policy-v1")["properties"]["expires"]["pattern"])
    samples = [
        "2027-01-31", "2027-01-31T12:00:00Z", "2027-01-31t12:00:00z", "2027-01-31 12:00:00",
        "2027-01-31T12:00:00.123456789+02:00", "2027-01-31T12:00:00", "2027-1-31",
        "2027-01-31T12:00", "2027-01-31T12:00:00+0200", "31/01/2027", "2027-01-31Z",
    ]  # fmt: skip
    for text in samples:
        try:
            parse_day_or_instant(text)
            parsed = True
        except ValueError:
            parsed = False
        assert parsed == bool(pattern.fullmatch(text)), text


def test_no_schema_pattern_reaches_a_person_as_a_regex() -> None:
    todo: list[Any] = [load_schema("policy-v1")]
    patterns = 0
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if "pattern" in node:
                patterns += 1
                assert node.get("patternErrorMessage", "").startswith("not "), node
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    assert patterns >= 6


def test_stage_names_are_checked_in_words(keys: dict[str, KeyPair]) -> None:
    _, problems = lint(policy(keys).replace("name: package", "name: Package"))
    [problem] = [p for p in problems if p.severity == "error"]
    assert problem.message == (
        "'Package' is not a stage name: 1 to 64 lowercase letters, digits, '_', '.' or '-', "
        "starting with a letter or digit"
    )


# ------------------------------------------------------------ empty and not a policy
@pytest.mark.parametrize(
    ("text", "what"),
    [("", "empty"), ("# only a comment\n", "empty"), ("---\n", "empty"), ("- a\n", "a list")],
)
def test_an_empty_policy_names_what_a_policy_needs(
    cli: Cli, tmp_path: Path, text: str, what: str
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    result = cli("policy", "lint", path)
    assert result.code == 3 and result.clean
    assert result.err == (
        f"{path}:1: error: the policy is {what}: expected a mapping with apiVersion, kind, "
        "expires, functionaries and stages\n"
    )


# ------------------------------------------------------------ YAML errors on their line
@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: 1\nb: [x\nc: 2\n", 2, "the '[' list opened on this line is not closed"),
        ("a: 1\nb: {x: 1\nc: 2\n", 2, "the '{' mapping opened on this line is not closed"),
        ('a: 1\nb: "x\nc: 2\n', 2, "the quoted string that starts on this line is not closed"),
        ("a: 1\nb\nc: 2\n", 2, "the key on this line has no ':' after it"),
        (
            "stages:\n  - name train\n    kind: x\n",
            2,
            "the text of line 2 runs on into line 3, where ':' is not allowed: "
            "is a ':' missing on line 2?",
        ),
        ("a: 1\nb: 2\n  c: 3\n", 3, "mapping values are not allowed here"),  # over-indented
        ("a: 1\na: 2\n", 2, 'found duplicate key "a"'),
    ],
    ids=["open-list", "open-mapping", "open-quote", "key-without-colon", "item-without-colon",
         "indented-too-far", "duplicate-key"],
)  # fmt: skip
def test_a_yaml_error_is_on_the_line_to_fix(
    cli: Cli, tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    result = cli("policy", "lint", path)
    assert result.code == 3 and result.clean
    assert result.err.startswith(f"{path}:{line}: error: not valid YAML: {message}"), result.err


# ------------------------------------------------------------ files, by resolved path
def test_a_fresh_template_outside_the_tree_names_each_key_file_to_fill_in(
    cli: Cli, tmp_path: Path
) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    template = cli("policy", "init", "--template", "lifecycle").out
    (work / "policy.yaml").write_text(template)
    result = cli("policy", "lint", work / "policy.yaml")
    assert result.code == 3
    written = re.findall(r"^ +key: (\S+)$", template, re.MULTILINE)
    assert len(written) == 7
    expected = [
        f"{work / 'policy.yaml'}:{line_of(template, 'key: ' + key)}: error: "
        f"functionaries.{Path(key).stem}.key: public key {(work / key).resolve()}: file not "
        f"found (written {key!r}, relative to the policy file's folder {work.resolve()})"
        for key in written
    ]
    assert result.err.splitlines() == expected
    assert "FILL IN each `key:`" in template

    # with the keys where the template says, it lints clean
    shutil.copytree(PROJECT_ROOT / "keys-example", tmp_path / "keys-example")
    result = cli("policy", "lint", work / "policy.yaml")
    assert result.code == 0, result.err
    assert result.err.endswith("ok (13 stages, 0 warning(s))\n")


def test_a_relative_policy_path_still_shows_the_absolute_key_path(
    cli: Cli, tmp_path: Path, keys: dict[str, KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = policy(keys).replace(
        "  alice:\n    publicKey: |\n" + indent_pem(keys["ml-engineer"].pem, 6) + "\n",
        "  alice:\n    key: ../keys/alice.pub\n",
    )
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "policy.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    result = cli("policy", "lint", Path("p/policy.yaml"))
    assert result.code == 3
    assert result.err == (
        f"p/policy.yaml:{line_of(text, 'key: ../keys')}: error: functionaries.alice.key: "
        f"public key {tmp_path.resolve() / 'keys/alice.pub'}: file not found "
        f"(written '../keys/alice.pub', relative to the policy file's folder "
        f"{(tmp_path / 'p').resolve()})\n"
    )


def test_a_trust_root_file_not_found_shows_its_resolved_path(tmp_path: Path) -> None:
    text = (
        'apiVersion: mlspec-attest/v1\nkind: Policy\nexpires: "2099-01-01T00:00:00Z"\n'
        "functionaries:\n  ci:\n    sigstore: {issuer: https://issuer.example, "
        "identity: ci@example.org}\n"
        "trust:\n  sigstore:\n    trustedRoot: roots/root.json\n"
        "stages:\n  - {name: train, kind: train, functionaries: [ci], materials: [], "
        "products: []}\n"
    )
    _, problems = lint(text, base_dir=tmp_path)
    [problem] = problems
    assert (problem.path, problem.line) == ("trust.sigstore", line_of(text, "trust:") + 1)
    assert problem.message == (
        f"trust root {(tmp_path / 'roots/root.json').resolve()}: file not found "
        f"(written 'roots/root.json', relative to the policy file's folder {tmp_path.resolve()})"
    )


def test_human_paths_count_stages_from_one_and_name_them() -> None:
    names = ["train", None]
    assert human_path(["stages", 0, "materials", 2], names) == "stage 1 (train), materials[2]"
    assert human_path(["stages", 1], names) == "stage 2"
    assert human_path(["stages", 7, "kind"], names) == "stage 8, kind"
    assert human_path(["leakage", "pairs", 0], names) == "leakage.pairs[0]"
    assert human_path([], names) == ""
