"""``mlspec-attest policy verify``: a signed policy checked by itself, before it is handed out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from mlspec_attest.cli.options import FILE, file_option, json_option
from mlspec_attest.errors import ExitCode
from mlspec_attest.formats.printable import printable
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.policy.signed import load_signed_policy
from mlspec_attest.policy.signed_check import SignedPolicyCheck, check_signed_policy
from mlspec_attest.signing.keys import load_public_key

SCHEMA = "https://mlspec-attest.dev/policy-verify/v1"


@click.command("verify")
@click.argument("file", type=FILE)
@file_option(
    "--policy-key",
    "keys",
    multiple=True,
    required=True,
    help="Owner public key that must have signed it (repeat for several owners).",
)
@json_option("Print the result as JSON.")
def verify_policy(file: Path, keys: tuple[Path, ...], as_json: bool) -> None:
    """Check a signed policy alone: signed by every owner key given, not expired,
    embedded keys well-formed, content lint-clean. No store or run is read.

    Exit 0 if it holds (warnings, such as an expiry within 30 days, are printed),
    1 if a signature is missing or it has expired (verify would deny every run
    under it), 3 if the file is not a valid signed policy.

    \b
      mlspec-attest policy verify policy.signed.json --policy-key owner.pub
    """
    signed = load_signed_policy(file)
    owners = [load_public_key(k) for k in keys]
    result = check_signed_policy(signed, owners, datetime.now(UTC))
    if as_json:
        click.echo(json.dumps(_document(file, result), indent=2))
    else:
        _print(file, result)
    if not result.passed:
        raise SystemExit(ExitCode.DENIED)


def _document(file: Path, result: SignedPolicyCheck) -> dict[str, object]:
    return {
        "schemaVersion": SCHEMA,
        "file": str(file),
        "result": "PASSED" if result.passed else "FAILED",
        "digest": result.digest,
        "signedBy": list(result.signed_by),
        "expires": format_rfc3339(result.expires),
        "problems": [
            {"path": p.path, "severity": p.severity, "code": p.code, "message": p.message}
            for p in result.problems
        ],
    }


def _print(file: Path, result: SignedPolicyCheck) -> None:
    for p in result.problems:  # messages quote the signed policy's names and values
        field = f"{p.path}: " if p.path else ""
        click.echo(printable(f"{file}: {p.severity}: {field}{p.message}"), err=True)
    if result.passed:
        click.echo(
            printable(
                f"{file}: ok: signed by {len(result.signed_by)} owner key(s), expires "
                f"{format_rfc3339(result.expires)}, digest {result.digest}"
            ),
            err=True,
        )
    else:
        click.echo(
            printable(f"{file}: FAILED: verify would deny every run under this policy"), err=True
        )
