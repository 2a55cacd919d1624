"""``mlspec-attest policy test``: a draft policy tried against recorded runs (not a verdict)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mlspec_attest.cli.options import (
    DIRECTORY,
    FILE,
    choice_option,
    json_option,
    repeatable_option,
    split_pairs,
    store_option,
)
from mlspec_attest.cli.report_render import report_text
from mlspec_attest.errors import ExitCode, MlspecError, UsageError
from mlspec_attest.formats.printable import printable
from mlspec_attest.policy.load import read_policy_any
from mlspec_attest.policy.model import Policy
from mlspec_attest.store.ledger import open_store
from mlspec_attest.verify.draft import try_draft
from mlspec_attest.verify.draft_suite import EXPECTATIONS, CaseResult, load_suite, run_case
from mlspec_attest.verify.report import VerificationReport

SCHEMA = "https://mlspec-attest.dev/policy-test/v1"
NOT_A_VERDICT = "DRAFT: not a verdict"


@click.command("test")
@click.argument("draft", type=FILE)
@store_option()
@click.option("--run-id", help="The recorded run [default: the store's only run].")
@repeatable_option(
    "--artifact", "artifacts", metavar="ROLE=PATH", help="A deploy artifact to re-hash."
)
@choice_option(
    "--expect",
    choices=EXPECTATIONS,
    help="Exit 0 only if the draft decides this (else 1). Without it: 0 once tried.",
)
@click.option(
    "--suite",
    type=DIRECTORY,
    help="A folder of recorded runs, each a subdirectory with a case.yaml "
    "(expect: pass|deny, optional checks, store, run, artifacts); exit 0 if every case "
    "is met, 1 otherwise.",
)
@json_option("Print the result as JSON (marked notAVerdict).")
def test_policy(
    draft: Path,
    store: Path | None,
    run_id: str | None,
    artifacts: tuple[str, ...],
    expect: str | None,
    suite: Path | None,
    as_json: bool,
) -> None:
    """Try a draft policy (YAML, or signed JSON whose signature is not checked) against a
    recorded run, as verify would, and show what it would decide. Not a verdict: no owner
    signature is checked, attestations bound to the policy the run was recorded under are
    admitted, no verification summary is written and no gate accepts the result.

    \b
      mlspec-attest policy test draft.yaml --store .mlspec/attestations --run-id R
      mlspec-attest policy test draft.yaml --suite policy-tests/
    """
    policy, _ = read_policy_any(draft)
    if suite is not None:
        if store or run_id or artifacts or expect:
            raise UsageError(
                "--suite takes each case's store, run and expectation from its case.yaml"
            )
        _run_suite(policy, suite, as_json)
        return
    paths = {role: Path(p) for role, p in split_pairs(artifacts, "--artifact").items()}
    report = try_draft(policy, open_store(store), run_id=run_id, artifacts=paths)
    decision = "pass" if report.passed else "deny"
    if as_json:
        click.echo(json.dumps(_document(draft, report, expect), indent=2))
    else:
        click.echo(_text(report))
    if expect is not None and decision != expect:
        raise SystemExit(ExitCode.DENIED)


def _document(draft: Path, report: VerificationReport, expect: str | None) -> dict[str, Any]:
    decision = "pass" if report.passed else "deny"
    return {
        "schemaVersion": SCHEMA,
        "notAVerdict": True,
        "draft": str(draft),
        "decision": decision,
        "expected": expect,
        "met": None if expect is None else decision == expect,
        "report": report.to_json(),
    }


def _text(report: VerificationReport) -> str:
    decision = "PASS" if report.passed else "DENY"
    head = (
        f"{NOT_A_VERDICT}: policy {report.policy_name} would {decision} run {report.run_id} "
        f"({len(report.failures)} failure(s))"
    )
    body = report_text(report).split("\n", 1)  # escaped by report_text
    # The policy name and run id come from the draft and the store.
    return printable(head) + ("\n" + body[1] if len(body) > 1 else "")


def _run_suite(policy: Policy, suite: Path, as_json: bool) -> None:
    results = []
    for case in load_suite(suite):
        try:
            results.append(run_case(policy, case))
        except MlspecError as exc:
            exc.message = f"policy test case {case.name}: {exc.message}"
            raise
    if as_json:
        doc = {
            "schemaVersion": SCHEMA,
            "notAVerdict": True,
            "suite": str(suite),
            "met": all(r.met for r in results),
            "cases": [_case_json(r) for r in results],
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        for r in results:
            # The case's name is its folder's; the reason quotes the run's names.
            click.echo(printable(f"{'ok  ' if r.met else 'FAIL'} {r.case.name}: {r.why}"))
        met = sum(r.met for r in results)
        click.echo(f"{NOT_A_VERDICT}: {met} of {len(results)} case(s) met")
    if not all(r.met for r in results):
        raise SystemExit(ExitCode.DENIED)


def _case_json(result: CaseResult) -> dict[str, Any]:
    return {
        "name": result.case.name,
        "expected": result.case.expect,
        "decision": result.decision,
        "met": result.met,
        "why": result.why,
        "failures": [f.check.value for f in result.report.failures],
    }
