"""``mlspec-attest verify``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlspec_attest._version import VERIFIER_ID
from mlspec_attest.cli.options import (
    file_option,
    json_option,
    passphrase_env_option,
    quiet_option,
    repeatable_option,
    run_options,
    sigstore_signing_options,
    split_pairs,
)
from mlspec_attest.cli.output import deny_unless, echo_verdict
from mlspec_attest.cli.progress import progress_for
from mlspec_attest.cli.report_render import report_text
from mlspec_attest.errors import UsageError
from mlspec_attest.formats.objecturl import artifact_ref
from mlspec_attest.interop.intoto.policy_or_layout import verify_policy_or_layout

if TYPE_CHECKING:
    from mlspec_attest.cli.verify_summary import SummaryRequest


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
@click.option(
    "--vsa-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the verdict as a signed SLSA verification summary (a Sigstore bundle) to "
    "this file, PASSED or FAILED, and keep a copy in the store. Sign it with --vsa-key or "
    "--sigstore.",
)
@file_option("--vsa-key", help="--vsa-out: the verifier's private key.")
@passphrase_env_option("--vsa-out: env var holding --vsa-key's passphrase.")
@sigstore_signing_options(
    sigstore_help="--vsa-out: sign keyless with Sigstore instead of --vsa-key.",
    oidc_help="--sigstore: OIDC identity token [env SIGSTORE_ID_TOKEN; default: ambient CI "
    "credentials].",
    trust_config_help="--sigstore: ClientTrustConfig naming the instance [env "
    "MLSPEC_ATTEST_TRUST_CONFIG; default: public-good production].",
    trust_config_envvar="MLSPEC_ATTEST_TRUST_CONFIG",
    staging_help="--sigstore: the public-good staging instance.",
)
@click.option(
    "--resource-uri",
    help="--vsa-out: where the server will load the model from (the summary's resourceUri; "
    "the gate compares it). Default: the file: URI of --artifact model=PATH.",
)
@click.option(
    "--policy-uri", help="--vsa-out: how the summary names the policy. Default: its file: URI."
)
@click.option(
    "--verifier-id",
    default=VERIFIER_ID,
    show_default=True,
    help="--vsa-out: the verifier's URI (the summary's verifier.id).",
)
@click.option(
    "--report",
    "report_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the audit report people read: one self-contained HTML file (stage "
    "graph, denials first, every check with its evidence, objectives, slices, lineage; "
    "docs/report.md), PASSED or DENIED.",
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
    report_out: Path | None,
    as_json: bool,
    **vsa: Any,
) -> None:
    """Verify a pipeline run against a signed policy. Exit 0 only if every check passes.

    Checks, in order: policy signature and expiry; each attestation's signature,
    signer, run id and kind; required stages; thresholds; ordering; artifact
    rules; and each --artifact re-hashed against the attested product. Every
    failure is reported (stage, check, expected, found, fix).
    """
    source = click.get_current_context().get_parameter_source("run_id")
    paths = {role: artifact_ref(p) for role, p in split_pairs(artifacts, "--artifact").items()}
    request = summary_request(policy_path, paths, vsa)
    report = verify_policy_or_layout(
        policy_path,
        policy_keys,
        store,
        run_id=run_id,
        run_id_from_environment=source is click.core.ParameterSource.ENVIRONMENT,
        artifacts=paths,
        baseline=baseline,
        progress=progress_for(quiet),
        run_inspections=run_inspections,
    )
    if report_out is not None:
        # The page's modules load only when a page is asked for: verify starts faster.
        from mlspec_attest.cli.verify_report import write_report

        write_report(report_out, report, policy_path, store)
    if request is None:
        echo_verdict(report, report_text, as_json)
        return
    written = request.write(report, store)
    if as_json:
        click.echo(
            json.dumps({**report.to_json(), "verificationSummary": written.to_json()}, indent=2)
        )
    else:
        click.echo(report_text(report))
        click.echo(
            f"verification summary ({written.summary.result.value}) sha256:{written.digest} "
            f"-> {written.path} (stored: {written.stored})",
            err=True,
        )
    deny_unless(report.passed)


def summary_request(
    policy_path: Path, artifacts: dict[str, Path | str], vsa: dict[str, Any]
) -> SummaryRequest | None:
    """The ``--vsa-out`` request, or None; the summary's modules load only when asked for."""
    if vsa["vsa_out"] is None:
        for name in ("vsa_key", "resource_uri", "policy_uri"):
            if vsa[name] is not None:
                flag = "--" + name.replace("_", "-")
                raise UsageError(f"{flag} goes with --vsa-out")
        return None
    from mlspec_attest.cli.verify_summary import SummaryRequest

    return SummaryRequest.from_options(policy_path, artifacts, vsa)
