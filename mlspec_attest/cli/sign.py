"""``mlspec-attest sign``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from mlspec_attest.cli.options import (
    digest_scheme_options,
    passphrase_from_env,
    split_pairs,
    store_option,
)

if TYPE_CHECKING:
    from mlspec_attest.attestation.stage import StageRecord
    from mlspec_attest.formats.bundle import BundleSigner
    from mlspec_attest.formats.signer import Signer


@click.command(context_settings={"allow_interspersed_args": False})
@click.option("--stage", required=True, help="Stage name as declared in the policy (e.g. train).")
@click.option(
    "--kind", help="Lifecycle kind; defaults to the stage name if it is one, else 'custom'."
)
@click.option(
    "--key",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="MLSPEC_ATTEST_KEY",
    help="Private key file [env MLSPEC_ATTEST_KEY].",
)
@click.option("--passphrase-env", metavar="VAR", help="Env var holding the key's passphrase.")
@click.option(
    "--sigstore",
    "use_sigstore",
    is_flag=True,
    help="Sign keyless with Sigstore instead of --key: a Fulcio certificate for your OIDC "
    "identity, the signature logged in Rekor.",
)
@click.option(
    "--identity-token",
    metavar="TOKEN",
    envvar="SIGSTORE_ID_TOKEN",
    help="--sigstore: OIDC identity token [env SIGSTORE_ID_TOKEN; default: ambient CI "
    "credentials].",
)
@click.option(
    "--trust-config",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="MLSPEC_ATTEST_TRUST_CONFIG",
    help="--sigstore: ClientTrustConfig naming the instance [env MLSPEC_ATTEST_TRUST_CONFIG; "
    "default: public-good production].",
)
@click.option("--staging", is_flag=True, help="--sigstore: the public-good staging instance.")
@click.option(
    "--material",
    "materials",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A file or directory the stage read (repeatable).",
)
@click.option(
    "--product",
    "products",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A file or directory the stage wrote (repeatable).",
)
@click.option(
    "--role",
    "roles",
    multiple=True,
    metavar="ROLE=PATH",
    help="Name a material/product's role: train, validation, holdback, model ... (repeatable).",
)
@click.option(
    "--split",
    "splits",
    multiple=True,
    metavar="ROLE=PATH",
    help="A data split this stage wrote (train, validation, holdback ...): a product with that "
    "role, plus a row-level leakage proof over all splits (repeatable).",
)
@click.option(
    "--exclude-column",
    "exclude_columns",
    multiple=True,
    metavar="COL",
    help="Column left out of row digests for --split (e.g. a row id) (repeatable).",
)
@click.option(
    "--conversion",
    "conversions",
    multiple=True,
    metavar="FORMAT=PATH",
    help="The model converted to another serving format (onnx=model.onnx): a product, "
    "recorded with its digest in details.conversions (repeatable).",
)
@click.option(
    "--detail",
    "details",
    multiple=True,
    metavar="NAME=FILE",
    help="Embed a JSON document in the stage metadata as details.NAME, e.g. "
    "validation=report.json from `mlspec-attest validate` (repeatable).",
)
@click.option(
    "--metrics",
    type=click.Path(path_type=Path, dir_okay=False),
    help='JSON metrics: {"metrics": {...}, "slices": {family: {value: {count, metrics}}}}.',
)
@click.option(
    "--param", "params", multiple=True, metavar="K=V", help="A stage parameter (repeatable)."
)
@click.option(
    "--infra",
    "infra",
    multiple=True,
    metavar="K=V",
    help="Infrastructure fact, e.g. accelerator=none (repeatable).",
)
@store_option()
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
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="MLSPEC_ATTEST_POLICY",
    help="Signed policy to bind this attestation to (records its digest) "
    "[env MLSPEC_ATTEST_POLICY].",
)
@click.option(
    "--base-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Artifact names are relative to this directory (default: current directory).",
)
@click.option(
    "--oms-signature",
    type=click.Path(path_type=Path, dir_okay=False),
    help="An existing OpenSSF model-signing signature (model.sig) of a model this stage "
    "wrote: verified now, recorded as details.omsSignature, and checked by verify against "
    "the deployed model.",
)
@click.option(
    "--oms-model",
    type=click.Path(path_type=Path, file_okay=False),
    help="The model directory --oms-signature covers (default: the only directory product).",
)
@click.option(
    "--oms-public-key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Public key that made --oms-signature.",
)
@click.option(
    "--oms-certificate-chain",
    "oms_chain",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Root certificate(s) for a certificate-method --oms-signature (repeatable).",
)
@click.option(
    "--started-on",
    metavar="RFC3339",
    help="When the stage's work started, if it ran before this command (default: now).",
)
@digest_scheme_options(prefix="digest-")
@click.option(
    "--digest-cache",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="MLSPEC_ATTEST_DIGEST_CACHE",
    help="Reuse digests of files unchanged since the last sign (device, inode, size, "
    "mtime, ctime); opt-in, never used by verify [env MLSPEC_ATTEST_DIGEST_CACHE].",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar while hashing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def sign(
    stage: str,
    kind: str | None,
    key: Path | None,
    passphrase_env: str | None,
    use_sigstore: bool,
    identity_token: str | None,
    trust_config: Path | None,
    staging: bool,
    materials: tuple[Path, ...],
    products: tuple[Path, ...],
    roles: tuple[str, ...],
    splits: tuple[str, ...],
    exclude_columns: tuple[str, ...],
    conversions: tuple[str, ...],
    details: tuple[str, ...],
    metrics: Path | None,
    params: tuple[str, ...],
    infra: tuple[str, ...],
    store: Path | None,
    run_id: str | None,
    new_run: bool,
    policy_path: Path | None,
    base_dir: Path | None,
    oms_signature: Path | None,
    oms_model: Path | None,
    oms_public_key: Path | None,
    oms_chain: tuple[Path, ...],
    started_on: str | None,
    algorithm: str,
    serialization: str,
    shard_size: int,
    digest_cache: Path | None,
    quiet: bool,
    as_json: bool,
    command: tuple[str, ...],
) -> None:
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
    from mlspec_attest.attestation.stage import HashingOptions, StageRecord, parse_param, sign_stage
    from mlspec_attest.cli.options import open_store
    from mlspec_attest.cli.progress import progress_for
    from mlspec_attest.digest.cache import cache_from_option
    from mlspec_attest.digest.manifest import DigestScheme
    from mlspec_attest.errors import UsageError

    if started_on:
        from mlspec_attest.formats.rfc3339 import parse_rfc3339

        try:
            parse_rfc3339(started_on)
        except ValueError as exc:
            raise UsageError(f"--started-on {started_on!r} is not an RFC 3339 instant") from exc
    if command and command[0] == "--":
        command = command[1:]
    if run_id:
        from mlspec_attest.store.ledger import check_run_id

        check_run_id(run_id)
    if algorithm == "blake3":
        from mlspec_attest.digest.engine import import_blake3

        import_blake3()  # a missing package is exit 4 now, not after the stage command
    signer = _signer(key, passphrase_env, use_sigstore, identity_token, trust_config, staging)
    record = StageRecord(stage=stage, kind=kind, materials=list(materials), products=list(products))
    record.parameters = dict(parse_param(p) for p in params)
    record.infrastructure = {
        k: parse_param(f"{k}={v}")[1] for k, v in split_pairs(infra, "--infra").items()
    }
    record.roles = {role: Path(p) for role, p in split_pairs(roles, "--role").items()}
    record.metrics_file = metrics
    record.splits = {role: Path(p) for role, p in split_pairs(splits, "--split").items()}
    record.split_exclude_columns = exclude_columns
    record.conversions = {
        fmt: Path(p) for fmt, p in split_pairs(conversions, "--conversion").items()
    }
    record.detail_files = {name: Path(p) for name, p in split_pairs(details, "--detail").items()}
    if started_on:
        record.started_on = started_on
    _check_roles(record)
    if oms_signature:
        record.evidence.append(
            (
                "omsSignature",
                _oms_producer(oms_signature, oms_model, oms_public_key, oms_chain, record.products),
            )
        )
    if policy_path:
        from mlspec_attest.policy.signed import load_signed_policy

        record.policy_digest = load_signed_policy(policy_path).digest
    result = sign_stage(
        record,
        signer,
        open_store(store),
        run_id=run_id,
        new_run=new_run,
        base_dir=base_dir,
        command=command,
        quiet_stdout=as_json,
        hashing=HashingOptions(
            scheme=DigestScheme(algorithm, serialization, shard_size),
            progress=progress_for(quiet),
            cache=cache_from_option(digest_cache),
        ),
    )
    summary = {
        "schemaVersion": "https://mlspec-attest.dev/sign-result/v1",
        "stage": stage,
        "runId": result.run_id,
        "attestation": os.fspath(result.path),
        **_signer_summary(signer),
        "subjects": [p.to_json() for p in result.statement.products],
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        keyless = summary.get("sigstore")
        who = f" as {keyless['identity']} (keyless, issuer {keyless['issuer']})" if keyless else ""
        click.echo(
            f"signed stage {stage!r}{who} (run {result.run_id}, {len(result.statement.materials)} material(s), "
            f"{len(result.statement.products)} product(s)) -> {result.path}",
            err=True,
        )


def _signer(
    key: Path | None,
    passphrase_env: str | None,
    use_sigstore: bool,
    identity_token: str | None,
    trust_config: Path | None,
    staging: bool,
) -> Signer | BundleSigner:
    """A local key signer, or with --sigstore a keyless one (checked before any work starts)."""
    from mlspec_attest.errors import UsageError
    from mlspec_attest.signing.keys import load_private_key

    source = click.get_current_context().get_parameter_source
    if not use_sigstore:
        if key is None:
            raise UsageError(
                "no signing key", remedy="pass --key KEY (or set MLSPEC_ATTEST_KEY), or --sigstore"
            )
        if staging or source("identity_token") is ParameterSource.COMMANDLINE:
            raise UsageError("--identity-token and --staging go with --sigstore")
        return load_private_key(key, passphrase=passphrase_from_env(passphrase_env))
    if key is not None and source("key") is ParameterSource.COMMANDLINE:
        raise UsageError("choose one: --key KEY or --sigstore")
    if staging and source("trust_config") is not ParameterSource.COMMANDLINE:
        trust_config = None  # an environment default does not override --staging
    from mlspec_attest.signing.sigstore.sign import SigstoreSigner

    return SigstoreSigner.create(
        identity_token=identity_token, trust_config=trust_config, staging=staging
    )


def _check_roles(record: StageRecord) -> None:
    """A --role naming a path no option names fails before the stage command runs.

    sign_stage checks the recorded names again after hashing (a --conversion inside a
    directory product is no product of its own, for one); this catches the rest early.
    """
    from mlspec_attest.errors import UsageError

    named = {
        os.path.abspath(p)
        for p in (
            *record.materials,
            *record.products,
            *record.splits.values(),
            *record.conversions.values(),
        )
    }
    for role, path in record.roles.items():
        if os.path.abspath(path) not in named:
            raise UsageError(f"--role {role}={path}: not one of this stage's materials or products")


def _signer_summary(signer: Signer | BundleSigner) -> dict[str, Any]:
    from mlspec_attest.formats.bundle import BundleSigner

    if not isinstance(signer, BundleSigner):
        return {"keyid": signer.public_key.keyid}
    out: dict[str, Any] = {"keyid": signer.keyid}
    signed_as = getattr(signer, "signed_as", None)
    if signed_as is not None:
        out["sigstore"] = {
            "identity": signed_as.primary,
            "issuer": signed_as.issuer,
            "instance": getattr(signer, "source", ""),
        }
    return out


def _oms_producer(
    signature: Path,
    model: Path | None,
    public_key: Path | None,
    chain: tuple[Path, ...],
    products: list[Path],
) -> Callable[[], Any]:
    """Verify an existing model-signing signature once the stage's outputs exist."""
    from mlspec_attest.errors import UsageError

    if (public_key is None) == (not chain):
        raise UsageError(
            "--oms-signature needs exactly one of --oms-public-key or --oms-certificate-chain"
        )

    def produce() -> Any:
        from mlspec_attest.interop.oms.signature import CertificateTrust, KeyTrust, oms_evidence

        target = model
        if target is None:
            dirs = [p for p in products if p.is_dir()]
            if len(dirs) != 1:
                raise UsageError("--oms-signature: name the model directory with --oms-model")
            target = dirs[0]
        trust = KeyTrust.from_file(public_key) if public_key else CertificateTrust.from_files(chain)
        return oms_evidence(target, signature, trust)

    return produce
