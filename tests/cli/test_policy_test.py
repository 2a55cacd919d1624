"""``mlspec-attest policy test``: a draft policy tried against a recorded run, marked as
no verdict; and suites of recorded runs with the decisions they must get."""

from __future__ import annotations

from pathlib import Path

from ..support import Pipeline
from .conftest import Cli, CliResult

EVALUATE = """\
  - name: evaluate
    kind: evaluate
    functionaries: [ml-reviewer]
    after: [train]
    materials: [DISALLOW *]
    products: [DISALLOW *]
deploy:"""


def stricter(honest: Pipeline, tmp_path: Path) -> Path:
    """The recorded run's policy with one more required stage, which the run never had."""
    path = tmp_path / "draft.yaml"
    text = honest.policy_yaml.read_text().replace("deploy:", EVALUATE, 1)
    (tmp_path / "keys").mkdir(exist_ok=True)
    for key in (honest.policy_yaml.parent / "keys").iterdir():
        (tmp_path / "keys" / key.name).write_bytes(key.read_bytes())
    path.write_text(text)
    return path


def trial(cli: Cli, honest: Pipeline, draft: Path, *extra: str) -> CliResult:
    store = ["--store", str(honest.store_path), "--run-id", honest.run_id]
    return cli("policy", "test", str(draft), *store, *extra)


def test_the_recorded_runs_own_policy_as_a_draft_would_pass(cli: Cli, honest: Pipeline) -> None:
    before = sorted(p.relative_to(honest.store_path) for p in honest.store_path.rglob("*"))
    result = trial(cli, honest, honest.policy_yaml, "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["schemaVersion"] == "https://mlspec-attest.dev/policy-test/v1"
    assert doc["notAVerdict"] is True and doc["decision"] == "pass" and doc["met"] is None
    report = doc["report"]
    assert report["policy"]["digest"] == honest.signed.digest  # what signing it would give
    assert report["notes"][0].startswith("DRAFT: ")
    assert f"recorded under policy {honest.signed.digest}" in report["notes"]
    after = sorted(p.relative_to(honest.store_path) for p in honest.store_path.rglob("*"))
    assert after == before  # no verification summary, nothing written


def test_a_stricter_draft_says_what_it_would_deny(
    cli: Cli, honest: Pipeline, tmp_path: Path
) -> None:
    draft = stricter(honest, tmp_path)
    text = trial(cli, honest, draft)
    assert text.code == 0  # tried: no expectation given
    assert text.out.startswith("DRAFT: not a verdict: policy test-pipeline would DENY run")
    assert "evaluate" in text.out
    doc = trial(cli, honest, draft, "--json").json()
    assert doc["report"]["policy"]["digest"] != honest.signed.digest  # bound to no stage
    assert f"recorded under policy {honest.signed.digest}" in doc["report"]["notes"]
    assert trial(cli, honest, draft, "--expect", "deny").code == 0
    wrong = trial(cli, honest, draft, "--expect", "pass", "--json")
    assert wrong.code == 1
    assert wrong.json()["met"] is False and wrong.json()["decision"] == "deny"


def test_a_run_recorded_under_two_policies_is_not_one_run(cli: Cli, honest: Pipeline) -> None:
    first = honest.signed.digest
    honest.write_policy(expires="2031-06-30T00:00:00Z")
    second = honest.sign_policy().digest
    honest.sign("package")  # re-signed under the second policy, in the same run
    doc = trial(cli, honest, honest.policy_yaml, "--json").json()
    assert doc["decision"] == "deny"
    [mixed] = [f for f in doc["report"]["failures"] if f["check"] == "policy-digest"]
    assert first in mixed["found"] and second in mixed["found"]


def write_case(root: Path, name: str, honest: Pipeline, body: str) -> None:
    case = root / name
    case.mkdir(parents=True)
    (case / "case.yaml").write_text(f"store: {honest.store_path}\nrun: {honest.run_id}\n{body}")


def test_a_suite_reports_each_case(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    write_case(suite, "a-honest-run", honest, "expect: pass\n")
    write_case(suite, "b-needs-evaluate", honest, "expect: deny\nchecks: [stage-missing]\n")
    draft = stricter(honest, tmp_path)
    result = cli("policy", "test", str(draft), "--suite", str(suite), "--json")
    assert result.code == 1  # the honest run would now be denied: the suite says so
    cases = {c["name"]: c for c in result.json()["cases"]}
    assert cases["a-honest-run"]["met"] is False
    assert cases["a-honest-run"]["why"] == "expected pass, the draft would deny"
    assert cases["b-needs-evaluate"]["decision"] == "deny"
    text = cli("policy", "test", str(honest.policy_yaml), "--suite", str(suite))
    assert text.code == 1
    assert text.out.splitlines() == [
        "ok   a-honest-run: pass, as expected",
        "FAIL b-needs-evaluate: expected deny, the draft would pass",
        "DRAFT: not a verdict: 1 of 2 case(s) met",
    ]


def test_a_bad_case_file_is_bad_input(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    write_case(suite, "only", honest, "expect: maybe\n")
    result = cli("policy", "test", str(honest.policy_yaml), "--suite", str(suite))
    assert result.code == 3
    assert "case.yaml" in result.err and "pass or deny" in result.err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("policy", "test", str(honest.policy_yaml), "--suite", str(empty)).code == 3
    mixed = cli(
        "policy", "test", str(honest.policy_yaml), "--suite", str(suite), "--expect", "pass"
    )
    assert mixed.code == 2
