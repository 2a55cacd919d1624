"""``mlspec-attest model verify|sign``: OpenSSF model-signing signatures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mlspec_attest.cli.options import (
    PATH,
    F,
    choice_option,
    compose,
    file_option,
    json_option,
    passphrase_env_option,
    passphrase_from_env,
    shard_size_option,
    sigstore_signing_options,
    workers_option,
)
from mlspec_attest.cli.output import detail_lines, echo_result, echo_verdict
from mlspec_attest.digest.scheme import ALGORITHMS, SERIALIZATIONS
from mlspec_attest.errors import UsageError
from mlspec_attest.formats.printable import printable_lines
from mlspec_attest.interop.oms.sign import serialization_for
from mlspec_attest.interop.oms.signature import (
    ModelSignature,
    ModelVerification,
    check_model,
    sign_model,
)
from mlspec_attest.interop.oms.trust import trust_from_options
from mlspec_attest.signing.keys import LocalKeySigner, load_private_key
from mlspec_attest.signing.sigstore.sign import SigstoreSigner


@click.group()
def model() -> None:
    """Verify and make OpenSSF model-signing (`model_signing`) signatures.

    \b
    Signatures are Sigstore bundles holding a DSSE in-toto statement with
    predicate https://model_signing/signature/v1.0 (or the legacy Digests/v0.1).
    Exit codes: 0 verified/signed · 1 denied · 2 usage · 3 bad input · 4 backend.
    """


def _ignore_options(paths_help: str, **git_paths: Any) -> Callable[[F], F]:
    """``--ignore-paths`` (help ``paths_help``) and ``--ignore-git-paths`` (``git_paths``)."""
    return compose(
        click.option("--ignore-paths", multiple=True, type=PATH, help=paths_help),
        click.option("--ignore-git-paths/--no-ignore-git-paths", **git_paths),
    )


def _model_relative(paths: tuple[Path, ...], model_path: Path) -> list[str]:
    """--ignore-paths are paths on disk (relative to the working directory), as in model_signing."""
    root = model_path.resolve()
    out: list[str] = []
    for p in paths:
        candidate = (p if p.is_absolute() else Path.cwd() / p).resolve()
        try:
            rel = candidate.relative_to(root)
        except ValueError:
            click.echo(f"note: --ignore-paths {p} is not inside {model_path}; not used", err=True)
            continue
        out.append(rel.as_posix() if rel.parts else ".")
    return out


def _signer_text(signer: dict[str, Any]) -> str:
    method = signer.get("method")
    if method == "key":
        return f"key {str(signer.get('keyid', ''))[:16]}… ({signer.get('keyDetails', '')})"
    if method == "certificate":
        root = signer.get("root", {}).get("subject", "?") if "root" in signer else "?"
        return f"certificate {signer.get('subject')} (root {root})"
    return f"Sigstore identity {signer.get('identity')} via {signer.get('issuer')}"


def report_text(report: ModelVerification) -> str:
    verdict = "PASSED" if report.passed else "DENIED"
    lines = [f"model signature {verdict}: {report.model} ({_signer_text(report.signer)})"]
    if report.serialization is not None:
        s = report.serialization
        how = f"{s.method}/{s.hash_type}" + (f"/{s.shard_size}" if s.shard_size else "")
        lines.append(f"  predicate {report.predicate_type}  {how}  {report.resources} resources")
        if report.subject_digest:
            lines.append(f"  root      sha256:{report.subject_digest}")
    if report.problems:
        lines.append(f"  {len(report.problems)} problem(s):")
        for i, p in enumerate(report.problems, 1):
            lines.append(f"    {i}. [{p.check}] {p.message}")
            lines += detail_lines("         ", p.expected, p.found, p.remedy)
    lines += [f"  note: {n}" for n in report.notes]
    # File names come from the model folder: none of their characters breaks a line.
    return printable_lines(lines)


@model.command("verify")
@click.argument("model_path", metavar="MODEL", type=PATH)
@file_option(
    "--signature",
    required=True,
    help="The model-signing signature (Sigstore bundle), e.g. model.sig.",
)
@file_option(
    "--public-key", help="Trust this EC public key (PEM); for `model_signing sign key` signatures."
)
@file_option(
    "--certificate-chain",
    multiple=True,
    help="Trust certificates chaining to this self-signed root CA (PEM; repeatable).",
)
@file_option(
    "--trust-config",
    help="Sigstore ClientTrustConfig or TrustedRoot JSON (verification stays offline).",
)
@click.option("--identity", help="Sigstore: the signer's identity (certificate SAN).")
@click.option("--issuer", help="Sigstore: the OIDC issuer of the signer's identity.")
@_ignore_options(
    "A path inside MODEL to leave out, besides those the signature records (repeatable).",
    default=None,
    help="Leave out .git, .gitattributes, .github, .gitignore [default: only when the "
    "signature records no ignore paths].",
)
@workers_option()
@json_option("Print one JSON report on stdout.")
def verify(
    model_path: Path,
    signature: Path,
    public_key: Path | None,
    certificate_chain: tuple[Path, ...],
    trust_config: Path | None,
    identity: str | None,
    issuer: str | None,
    ignore_paths: tuple[Path, ...],
    ignore_git_paths: bool | None,
    workers: int | None,
    as_json: bool,
) -> None:
    """Verify MODEL (a folder or one file) against its model-signing SIGNATURE.

    Checks the signature under the trust named, the signed statement, then
    re-hashes MODEL as the signature's serialization records (files or shards;
    sha256, blake2b or blake3) and lists every file added, removed or changed.
    """
    trust = trust_from_options(public_key, certificate_chain, trust_config, identity, issuer)
    ignored = _model_relative(ignore_paths, model_path) if ignore_paths else []
    report = check_model(
        model_path,
        signature,
        trust,
        ignore_paths=ignored,
        ignore_git_paths=ignore_git_paths,
        workers=workers,
    )
    echo_verdict(report, report_text, as_json)


def _signature_text(result: ModelSignature) -> str:
    m = result.manifest
    s = m.serialization
    how = f"{s.method}/{s.hash_type}" + (f"/{s.shard_size}" if s.shard_size else "")
    return (
        f"signed {m.model_name}: {len(m.resources)} resources ({how}), root sha256:"
        f"{m.root_digest}\n  signature {result.path} ({_signer_text(result.signer)})"
    )


@model.command("sign")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path, exists=True))
@file_option(
    "--signature",
    required=True,
    help="Where to write the signature (Sigstore bundle), e.g. MODEL/model.sig.",
)
@file_option(
    "--key",
    help="EC private key (P-256/P-384/P-521, PEM) — `model_signing verify key` checks it.",
)
@passphrase_env_option()
@sigstore_signing_options(
    sigstore_help="Sign keyless with Sigstore.",
    oidc_help="OIDC identity token for --sigstore [env SIGSTORE_ID_TOKEN].",
    trust_config_help="--sigstore: ClientTrustConfig naming the instance [default: public-good "
    "production].",
    staging_help="--sigstore: use the public-good staging instance.",
)
@_ignore_options(
    "A path inside MODEL to leave out; recorded in the signature (repeatable).",
    default=True,
    show_default=True,
    help="Leave out (and record) .git, .gitattributes, .github, .gitignore.",
)
@choice_option(
    "--serialization",
    choices=list(SERIALIZATIONS),
    default="files",
    help="files: one digest per file; shards: one per --shard-size byte range.",
)
@choice_option(
    "--hash",
    "hash_type",
    choices=list(ALGORITHMS),
    default="sha256",
    help="Digest algorithm (`model_signing verify` checks sha256 only; we check all).",
)
@shard_size_option(help="Shard length for --serialization shards.")
@click.option("--allow-symlinks", is_flag=True, help="Follow symbolic links inside MODEL.")
@workers_option()
@json_option("Print the result as JSON.")
def sign(
    model_path: Path,
    signature: Path,
    key: Path | None,
    passphrase_env: str | None,
    use_sigstore: bool,
    identity_token: str | None,
    trust_config: Path | None,
    staging: bool,
    ignore_paths: tuple[Path, ...],
    ignore_git_paths: bool,
    serialization: str,
    hash_type: str,
    shard_size: int,
    allow_symlinks: bool,
    workers: int | None,
    as_json: bool,
) -> None:
    """Sign MODEL (a folder or one file) in the OpenSSF model-signing v1.0 format.

    With --key the signature is what `model_signing sign key` writes (the
    bundle's publicKey.hint names the key); with --sigstore it is a keyless
    Sigstore bundle (needs the network and an identity token: --identity-token,
    SIGSTORE_ID_TOKEN or ambient CI credentials).
    """
    if use_sigstore == (key is not None):
        raise UsageError("choose one: --key KEY or --sigstore")
    spec = serialization_for(serialization, hash_type, allow_symlinks, shard_size)
    ignored = _model_relative(ignore_paths, model_path) if ignore_paths else []
    signer: LocalKeySigner | SigstoreSigner
    if key is not None:
        signer = load_private_key(key, passphrase=passphrase_from_env(passphrase_env))
    else:
        signer = SigstoreSigner.create(
            identity_token=identity_token, trust_config=trust_config, staging=staging
        )
    result = sign_model(
        model_path,
        signature,
        signer,
        serialization=spec,
        ignore_paths=ignored,
        ignore_git_paths=ignore_git_paths,
        workers=workers,
    )
    echo_result(result.to_json(), _signature_text(result), as_json)
