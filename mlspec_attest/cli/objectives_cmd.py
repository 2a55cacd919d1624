"""``mlspec-attest objectives init|lint|check``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mlspec_attest.cli.options import (
    FILE,
    file_option,
    json_option,
    repeatable_option,
    split_pairs,
)
from mlspec_attest.cli.output import deny_unless
from mlspec_attest.errors import UsageError
from mlspec_attest.evidence.metrics_file import load_metrics_file
from mlspec_attest.formats.printable import printable
from mlspec_attest.policy.criteria import evidence_from_metrics_files
from mlspec_attest.policy.objectives import evaluate_objectives, load_objectives
from mlspec_attest.policy.templates import template_text


@click.group()
def objectives() -> None:
    """Codified launch objectives: write, lint and check them before signing.

    \b
    The objectives document is the signed product of the objectives stage;
    `verify` evaluates it against the metrics attested by later stages.
    """


@objectives.command("init")
def init() -> None:
    """Print a commented objectives template."""
    click.echo(template_text("objectives"), nl=False)


@objectives.command("lint")
@click.argument("file", type=FILE)
def lint(file: Path) -> None:
    """Report every problem in an objectives document (exit 0 valid, 3 invalid)."""
    doc = load_objectives(file)
    click.echo(
        printable(f"{file}: ok ({doc.name} v{doc.version}, {len(doc.criteria)} criteria)"), err=True
    )


@objectives.command("check")
@click.argument("file", type=FILE)
@repeatable_option(
    "--evidence",
    required=True,
    metavar="STAGE=METRICS.json",
    help="Metrics file standing in for a stage's attested metrics (repeatable).",
)
@file_option(
    "--baseline-metrics", help="Metrics file of the baseline model, for 'change' criteria."
)
@json_option("Print the results as JSON.")
def check(
    file: Path, evidence: tuple[str, ...], baseline_metrics: Path | None, as_json: bool
) -> None:
    """Evaluate criteria against local metrics files (exit 0 all met, 1 any not met).

    Only criteria whose stage has --evidence are judged; the others are listed
    as skipped.

    Use it inside a stage to stop before signing a model that cannot launch;
    the binding check is the one `verify` runs on the signed attestations.
    """
    doc = load_objectives(file)
    files = [(stage, Path(p)) for stage, p in split_pairs(evidence, "--evidence").items()]
    baseline = load_metrics_file(baseline_metrics)[0] if baseline_metrics else None
    by_stage = evidence_from_metrics_files(files)
    wanted = sorted({c["stage"] for c in doc.criteria})
    if not set(by_stage) & set(wanted):
        raise UsageError(
            f"no criterion reads the stage(s) given: {', '.join(sorted(by_stage))}",
            remedy=f"pass --evidence for one of the stages the criteria name: {', '.join(wanted)}",
        )
    # A local pre-check judges only the stages it has evidence for; verify judges all.
    skipped = [c["id"] for c in doc.criteria if c["stage"] not in by_stage]
    results = [
        r for r in evaluate_objectives(doc, by_stage, baseline=baseline) if r.stage in by_stage
    ]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "schemaVersion": "https://mlspec-attest.dev/objectives-check/v1",
                    "objectives": {"name": doc.name, "version": doc.version},
                    "passed": all(r.passed for r in results),
                    "criteria": [r.to_json() for r in results],
                    "skipped": skipped,
                },
                indent=2,
            )
        )
    else:
        # Criterion ids, stages and messages come from the objectives and metrics files.
        for r in results:
            mark = "pass" if r.passed else "FAIL"
            click.echo(printable(f"[{mark}] {r.id:<24} {r.stage:<10} {r.message}"))
        for criterion_id in skipped:
            click.echo(printable(f"[skip] {criterion_id:<24} (no --evidence for its stage)"))
    deny_unless(all(r.passed for r in results))
