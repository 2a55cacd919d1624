"""``mlspec-attest bundle verify``: check any Sigstore bundle offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mlspec_attest.cli.options import FILE, file_option, json_option
from mlspec_attest.errors import ExitCode, SigstoreVerificationError
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.formats.printable import printable_lines
from mlspec_attest.signing.sigstore.bundle_check import BundleCheck
from mlspec_attest.signing.sigstore.result import VerifiedBundle

SCHEMA = "https://mlspec-attest.dev/bundle-verification/v1"


@click.group()
def bundle() -> None:
    """Work with Sigstore bundles (any producer: cosign, sigstore-python, gh, mlspec-attest)."""


@bundle.command("verify")
@click.argument("bundle_path", metavar="BUNDLE", type=FILE)
@file_option("--artifact", help="The signed file (for an in-toto attestation: a subject).")
@click.option("--digest", metavar="sha256:HEX", help="The signed artifact's digest, instead of it.")
@file_option("--trusted-root", help="Sigstore TrustedRoot JSON to verify keyless bundles against.")
@file_option(
    "--trust-config",
    envvar="MLSPEC_ATTEST_TRUST_CONFIG",
    help="Sigstore ClientTrustConfig JSON (its trusted root is used) [env MLSPEC_ATTEST_TRUST_CONFIG].",
)
@click.option(
    "--instance",
    type=click.Choice(["production", "staging"]),
    help="The public-good instance's trusted root as embedded in sigstore-python (offline).",
)
@click.option(
    "--refresh-trust",
    is_flag=True,
    help="With --instance: fetch its current trusted root over TUF first (network).",
)
@file_option(
    "--key",
    help="Public key (PEM) for bundles signed with a key; with a trust root, its "
    "transparency-log entry is checked too.",
)
@click.option("--identity", help="Keyless: the signer's identity (a certificate SAN), exactly.")
@click.option(
    "--identity-regex",
    metavar="RE",
    help="Keyless: a regular expression the whole identity must match.",
)
@click.option("--issuer", help="Keyless: the OIDC issuer of the signer's identity, exactly.")
@json_option("Print one JSON result on stdout.")
def verify(bundle_path: Path, as_json: bool, **options: Any) -> None:
    """Verify a Sigstore bundle offline. Exit 0 passed, 1 denied, 3 malformed input.

    \b
    Keyless bundles: the certificate must chain to the trusted root, the log entry
    (inclusion proof, checkpoint, promise) or a signed timestamp must verify under
    it, and the certificate must belong to --identity/--identity-regex at --issuer.
    Nothing is fetched unless --refresh-trust is given.
    Key bundles: --key; with a trust root too, the log entry is verified as well.
    In-toto attestations: a subject's sha256 must be the artifact's.

    \b
    Examples:
      mlspec-attest bundle verify model.whl.sigstore.json --artifact model.whl \\
          --instance production --identity https://github.com/org/repo/.github/workflows/release.yml@refs/tags/v1 \\
          --issuer https://token.actions.githubusercontent.com
      mlspec-attest bundle verify .mlspec/runs/R/train.1a2b3c4d.sigstore.json \\
          --artifact model/weights.bin --key keys/trainer.pub
    """
    check = BundleCheck.from_options(**options)  # the options, named as it names them
    doc = load_file(bundle_path, what=f"bundle {bundle_path}")
    result = _result_head(bundle_path, options["artifact"], check)
    try:
        verified = check.verify(doc, what=str(bundle_path))
    except SigstoreVerificationError as exc:
        result.update(result="FAILED", reason=exc.message, remedy=exc.remedy or "")
        _echo_failure(result, exc, as_json)
        raise SystemExit(ExitCode.DENIED) from None
    result.update(result="PASSED", **verified.to_json())
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    _echo_passed(bundle_path, verified)


def _result_head(bundle_path: Path, artifact: Path | None, check: BundleCheck) -> dict[str, Any]:
    return {
        "schemaVersion": SCHEMA,
        "bundle": str(bundle_path),
        "artifact": {"path": str(artifact) if artifact else None, "sha256": check.artifact_sha256},
        "trustRoot": check.trust.describe() if check.trust else None,
    }


def _echo_failure(result: dict[str, Any], exc: SigstoreVerificationError, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    lines = [f"bundle verification FAILED: {exc.message}"]
    if exc.remedy:
        lines.append(f"  fix: {exc.remedy}")
    click.echo(printable_lines(lines))  # the message quotes the bundle's fields


def _echo_passed(bundle_path: Path, verified: VerifiedBundle) -> None:
    if verified.identity is not None:
        who = verified.identity.describe()
    else:
        who = f"key {verified.keyid[:16] if verified.keyid else '?'}"
    lines = [f"bundle verification PASSED: {bundle_path} signed by {who}"]
    lines += [f"  signed time {t.time.isoformat()} ({t.source})" for t in verified.times]
    lines += [f"  note: {note}" for note in verified.notes]
    # The identity is the certificate's, the notes quote the bundle: no character of
    # theirs breaks or reorders a line.
    click.echo(printable_lines(lines))
