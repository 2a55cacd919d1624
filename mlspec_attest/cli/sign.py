"""``mlspec-attest sign``: the options (parsed into a stage record by
:mod:`~mlspec_attest.cli.sign_options`), which signer they name (built by
:func:`~mlspec_attest.attestation.signers.stage_signer`), one call to
:func:`~mlspec_attest.attestation.stage.sign_stage`, and the result rendered."""

from __future__ import annotations

import json
from typing import Any

import click

from mlspec_attest.attestation import signers
from mlspec_attest.attestation.artifacts import HashingOptions
from mlspec_attest.attestation.signers import StageSigner
from mlspec_attest.attestation.stage import SignedStage, sign_stage
from mlspec_attest.cli import options as opt
from mlspec_attest.cli.progress import progress_for
from mlspec_attest.cli.scale_options import ARTIFACT, dask_options, dask_session
from mlspec_attest.cli.sign_options import SignOptions, check_early, stage_record
from mlspec_attest.cli.signer_choice import choose_signer
from mlspec_attest.digest.cache import cache_from_option
from mlspec_attest.digest.scheme import DigestScheme
from mlspec_attest.signing.schemes import portability_warning
from mlspec_attest.store.ledger import open_store


@click.command(context_settings={"allow_interspersed_args": False})
@click.option("--stage", required=True, help="Stage name as declared in the policy (e.g. train).")
@click.option(
    "--kind", help="Lifecycle kind; defaults to the stage name if it is one, else 'custom'."
)
@opt.file_option(
    "--key", envvar="MLSPEC_ATTEST_KEY", help="Private key file [env MLSPEC_ATTEST_KEY]."
)
@opt.passphrase_env_option()
@opt.sigstore_signing_options(
    sigstore_help="Sign keyless with Sigstore instead of --key: a Fulcio certificate for your "
    "OIDC identity, the signature logged in Rekor.",
    oidc_help="--sigstore: OIDC identity token [env SIGSTORE_ID_TOKEN; default: ambient CI "
    "credentials].",
    oidc_metavar="TOKEN",
    trust_config_help="--sigstore: ClientTrustConfig naming the instance [env "
    "MLSPEC_ATTEST_TRUST_CONFIG; default: public-good production].",
    trust_config_envvar="MLSPEC_ATTEST_TRUST_CONFIG",
    staging_help="--sigstore: the public-good staging instance.",
)
@click.option(
    "--material",
    "materials",
    multiple=True,
    type=ARTIFACT,
    help="A file or directory the stage read, or an object store URL (s3://bucket/key or "
    "a prefix) (repeatable).",
)
@click.option(
    "--product",
    "products",
    multiple=True,
    type=ARTIFACT,
    help="A file or directory the stage wrote, or an object store URL (repeatable).",
)
@opt.repeatable_option(
    "--role",
    "roles",
    metavar="ROLE=PATH",
    help="Name a material/product's role: train, validation, holdback, model ... (repeatable).",
)
@opt.repeatable_option(
    "--split",
    "splits",
    metavar="ROLE=PATH",
    help="A data split this stage wrote (train, validation, holdback ...): a product with that "
    "role, plus a row-level leakage proof over all splits (repeatable).",
)
@opt.repeatable_option(
    "--exclude-column",
    "exclude_columns",
    metavar="COL",
    help="Column left out of row digests for --split (e.g. a row id) (repeatable).",
)
@opt.repeatable_option(
    "--conversion",
    "conversions",
    metavar="FORMAT=PATH",
    help="The model converted to another serving format (onnx=model.onnx): a product, "
    "recorded with its digest in details.conversions (repeatable).",
)
@opt.repeatable_option(
    "--detail",
    "details",
    metavar="NAME=FILE",
    help="Embed a JSON document in the stage metadata as details.NAME, e.g. "
    "validation=report.json from `mlspec-attest validate` (repeatable).",
)
@opt.file_option(
    "--metrics",
    help='JSON metrics: {"metrics": {...}, "slices": {family: {value: {count, metrics}}}}.',
)
@opt.repeatable_option("--param", "params", metavar="K=V", help="A stage parameter (repeatable).")
@opt.repeatable_option(
    "--infra",
    metavar="K=V",
    help="Infrastructure fact, e.g. accelerator=none (repeatable).",
)
@opt.store_option()
@click.option(
    "--run-id",
    envvar="MLSPEC_RUN_ID",
    help="Run id shared by all stages [env MLSPEC_RUN_ID; default: the store's current run, "
    "else a new one that stages signing at the same time all join].",
)
@click.option(
    "--new-run",
    is_flag=True,
    help="Start a new run instead of joining the store's current run (when no --run-id is "
    "given); for a pipeline's first stage.",
)
@opt.file_option(
    "--policy",
    "policy_path",
    envvar="MLSPEC_ATTEST_POLICY",
    help="Signed policy to bind this attestation to (records its digest) "
    "[env MLSPEC_ATTEST_POLICY].",
)
@opt.directory_option(
    "--base-dir",
    help="Artifact names are relative to this directory (default: current directory).",
)
@opt.file_option(
    "--oms-signature",
    help="An existing OpenSSF model-signing signature (model.sig) of a model this stage "
    "wrote: verified now, recorded as details.omsSignature, and checked by verify against "
    "the deployed model.",
)
@opt.directory_option(
    "--oms-model",
    help="The model directory --oms-signature covers (default: the only directory product).",
)
@opt.file_option("--oms-public-key", help="Public key that made --oms-signature.")
@opt.file_option(
    "--oms-certificate-chain",
    "oms_chain",
    multiple=True,
    help="Root certificate(s) for a certificate-method --oms-signature (repeatable).",
)
@click.option(
    "--started-on",
    metavar="RFC3339",
    help="When the stage's work started, if it ran before this command (default: now).",
)
@opt.digest_scheme_options(prefix="digest-")
@opt.directory_option(
    "--digest-cache",
    envvar="MLSPEC_ATTEST_DIGEST_CACHE",
    help="Reuse digests of files unchanged since the last sign (device, inode, size, "
    "mtime, ctime); opt-in, never used by verify [env MLSPEC_ATTEST_DIGEST_CACHE].",
)
@dask_options()
@opt.quiet_option("No progress bar while hashing.")
@opt.json_option("Print a JSON summary on stdout.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def sign(**options: Any) -> None:
    """Hash what a stage read and wrote, run its command, and sign an in-toto link.

    \b
    Order: hash --material paths; run `-- CMD ARGS...` if given (its output is
    passed through and digested; if it fails, nothing is attested and its exit
    status is returned); hash --product paths; sign; write atomically to the store.

    \b
    Example:
      mlspec-attest sign --stage train --key keys/trainer.key \\
          --material data/train.csv --product model/ --param max_depth=4 \\
          -- python train.py
    """
    args = SignOptions(**options)
    check_early(args)
    signer = _signer(args)
    record = stage_record(args)
    with dask_session(args.dask_scheduler, args.dask_workers):
        result = sign_stage(
            record,
            signer,
            open_store(args.store),
            run_id=args.run_id,
            new_run=args.new_run,
            base_dir=args.base_dir,
            command=args.stage_command(),
            quiet_stdout=args.as_json,
            hashing=HashingOptions(
                scheme=DigestScheme(args.algorithm, args.serialization, args.shard_size),
                progress=progress_for(args.quiet),
                cache=cache_from_option(args.digest_cache),
            ),
        )
    _render(args, signer, result)
    warning = portability_warning(signer)  # after the result, as keygen prints it
    if warning:
        click.echo(f"warning: {warning}", err=True)


def _signer(args: SignOptions) -> StageSigner:
    return choose_signer(
        key=args.key,
        key_param="key",
        passphrase_env=args.passphrase_env,
        use_sigstore=args.use_sigstore,
        identity_token=args.identity_token,
        trust_config=args.trust_config,
        staging=args.staging,
        key_env=signers.KEY_ENV,
    )


def _render(args: SignOptions, signer: StageSigner, result: SignedStage) -> None:
    summary = result.summary(signers.signer_summary(signer))
    if args.as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    keyless = summary.get("sigstore")
    who = f" as {keyless['identity']} (keyless, issuer {keyless['issuer']})" if keyless else ""
    click.echo(
        f"signed stage {args.stage!r}{who} (run {result.run_id}, "
        f"{len(result.statement.materials)} material(s), "
        f"{len(result.statement.products)} product(s)) -> {result.path}",
        err=True,
    )
