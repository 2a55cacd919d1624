"""``mlspec-attest verify``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mlspec_attest.cli.options import policy_key_option, run_id_option, split_pairs, store_option


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
    from mlspec_attest.cli.options import open_store
    from mlspec_attest.cli.progress import progress_for
    from mlspec_attest.cli.render import report_text
    from mlspec_attest.errors import ExitCode
    from mlspec_attest.interop.intoto import is_intoto_layout
    from mlspec_attest.policy.signed import load_signed_policy
    from mlspec_attest.signing.keys import load_public_key
    from mlspec_attest.verify.pipeline import verify_pipeline

    if is_intoto_layout(policy_path):
        from mlspec_attest.errors import UsageError
        from mlspec_attest.interop.intoto import verify_intoto_layout

        ctx = click.get_current_context()
        from_command_line = click.core.ParameterSource.COMMANDLINE
        if artifacts or baseline or ctx.get_parameter_source("run_id") is from_command_line:
            raise UsageError(
                "--artifact, --baseline and --run-id do not apply to an in-toto layout",
                remedy="in-toto layouts check the links in --store (the link directory) and "
                "their inspections; drop those options",
            )
        report = verify_intoto_layout(
            policy_path,
            list(policy_keys),
            store if store is not None else Path("."),
            run_inspections=run_inspections,
        )
    else:
        signed = load_signed_policy(policy_path)
        owner_keys = [load_public_key(k) for k in policy_keys]
        deploy = {role: Path(p) for role, p in split_pairs(artifacts, "--artifact").items()}
        report = verify_pipeline(
            signed,
            list(owner_keys),
            open_store(store),
            run_id=run_id,
            artifacts=deploy,
            baseline=baseline,
            progress=progress_for(quiet),
        )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(report_text(report))
    if not report.passed:
        raise SystemExit(ExitCode.DENIED)
