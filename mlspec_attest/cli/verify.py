"""``mlspec-attest verify``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import split_pairs, store_option


@click.command()
@click.option(
    "--policy",
    "policy_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Signed policy (from `policy sign`).",
)
@click.option(
    "--policy-key",
    "policy_keys",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Owner public key; every one given must have signed the policy (repeatable).",
)
@store_option()
@click.option(
    "--run-id",
    envvar="MLSPEC_RUN_ID",
    help="Run to verify; required when the store holds several runs [env MLSPEC_RUN_ID].",
)
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
@click.option("--json", "as_json", is_flag=True, help="Print one versioned JSON report on stdout.")
def verify(
    policy_path: Path,
    policy_keys: tuple[Path, ...],
    store: Path | None,
    run_id: str | None,
    artifacts: tuple[str, ...],
    baseline: Path | None,
    as_json: bool,
) -> None:
    """Verify a pipeline run against a signed policy. Exit 0 only if every check passes.

    Checks, in order: policy signature and expiry; each attestation's signature,
    signer, run id and kind; required stages; thresholds; ordering; artifact
    rules; and each --artifact re-hashed against the attested product. Every
    failure is reported (stage, check, expected, found, fix).
    """
    from ..errors import ExitCode
    from ..policy.signed import load_signed_policy
    from ..signing.keys import load_public_key
    from ..verify import verify_pipeline
    from .options import open_store
    from .render import report_text

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
    )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(report_text(report))
    if not report.passed:
        raise SystemExit(ExitCode.DENIED)
