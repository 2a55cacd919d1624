"""``mlspec-attest verify``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mlspec_attest.cli.options import policy_key_option, run_id_option, split_pairs, store_option
from mlspec_attest.cli.progress import progress_for
from mlspec_attest.cli.render import report_text
from mlspec_attest.errors import ExitCode
from mlspec_attest.interop.intoto import verify_policy_or_layout


@click.command()
@click.option(
    "--policy",
    "policy_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Signed policy (from `policy sign`), or an in-toto layout (legacy or DSSE).",
)
@policy_key_option()
@store_option()
@run_id_option("verify")
@click.option(
    "--artifact",
    "artifacts",
    multiple=True,
    metavar="ROLE=PATH",
    help="A deploy artifact to re-hash and compare with the attested product (repeatable).",
)
@click.option(
    "--baseline",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Attestation (bundle) of the baseline model's evaluate/test stage, for 'change' criteria.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar while re-hashing artifacts.")
@click.option(
    "--run-inspections/--no-run-inspections",
    "run_inspections",
    default=True,
    show_default=True,
    help="in-toto layouts only: run the layout's inspection commands in the link directory "
    "(--store). They execute commands written by the layout owner; with "
    "--no-run-inspections a layout that has inspections is denied.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one versioned JSON report on stdout.")
def verify(
    policy_path: Path,
    policy_keys: tuple[Path, ...],
    store: Path | None,
    run_id: str | None,
    artifacts: tuple[str, ...],
    baseline: Path | None,
    quiet: bool,
    run_inspections: bool,
    as_json: bool,
) -> None:
    """Verify a pipeline run against a signed policy. Exit 0 only if every check passes.

    Checks, in order: policy signature and expiry; each attestation's signature,
    signer, run id and kind; required stages; thresholds; ordering; artifact
    rules; and each --artifact re-hashed against the attested product. Every
    failure is reported (stage, check, expected, found, fix).
    """
    source = click.get_current_context().get_parameter_source("run_id")
    report = verify_policy_or_layout(
        policy_path,
        policy_keys,
        store,
        run_id=run_id,
        run_id_from_environment=source is click.core.ParameterSource.ENVIRONMENT,
        artifacts={role: Path(p) for role, p in split_pairs(artifacts, "--artifact").items()},
        baseline=baseline,
        progress=progress_for(quiet),
        run_inspections=run_inspections,
    )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(report_text(report))
    if not report.passed:
        raise SystemExit(ExitCode.DENIED)
