"""``mlspec-attest verify``."""

from __future__ import annotations

from pathlib import Path

import click

from mlspec_attest.cli.options import (
    file_option,
    json_option,
    quiet_option,
    repeatable_option,
    run_options,
    split_pairs,
)
from mlspec_attest.cli.output import echo_verdict
from mlspec_attest.cli.progress import progress_for
from mlspec_attest.cli.render import report_text
from mlspec_attest.interop.intoto import verify_policy_or_layout


@click.command()
@run_options(
    "verify",
    policy_help="Signed policy (from `policy sign`), or an in-toto layout (legacy or DSSE).",
)
@repeatable_option(
    "--artifact",
    "artifacts",
    metavar="ROLE=PATH",
    help="A deploy artifact to re-hash and compare with the attested product (repeatable).",
)
@file_option(
    "--baseline",
    help="Attestation (bundle) of the baseline model's evaluate/test stage, for 'change' criteria.",
)
@quiet_option("No progress bar while re-hashing artifacts.")
@click.option(
    "--run-inspections/--no-run-inspections",
    "run_inspections",
    default=True,
    show_default=True,
    help="in-toto layouts only: run the layout's inspection commands in the link directory "
    "(--store). They execute commands written by the layout owner; with "
    "--no-run-inspections a layout that has inspections is denied.",
)
@json_option("Print one versioned JSON report on stdout.")
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
    echo_verdict(report, report_text, as_json)
