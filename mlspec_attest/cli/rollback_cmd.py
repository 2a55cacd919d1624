"""``mlspec-attest rollback``: switch to an earlier model only through the gate."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import click

from mlspec_attest.cli.gate_cmd import echo_denied, gate_inputs, gate_options
from mlspec_attest.cli.options import PATH, directory_option, file_option, json_option
from mlspec_attest.errors import ExitCode, GateDeniedError, PolicySignatureError, UsageError
from mlspec_attest.policy.model import Policy
from mlspec_attest.policy.signed import load_signed_policy
from mlspec_attest.serve.rollback import check_rollback, pinned_target
from mlspec_attest.signing.keys import load_public_key

SCHEMA = "https://mlspec-attest.dev/rollback/v1"


@click.command()
@gate_options("--to", "--vsa", vsa_help="The target's signed verification summary (bundle).")
@click.option("--model", type=PATH, required=True, help="The target model's files.")
@file_option(
    "--policy",
    "policy_path",
    help="The signed policy in force: its rollback.summary must name this summary.",
)
@file_option(
    "--policy-key",
    "policy_keys",
    multiple=True,
    help="Owner public key of --policy (repeatable; each must have signed it).",
)
@directory_option("--copy-to", help="Write the target's verified files here (as gate does).")
@json_option("Print one versioned JSON result on stdout.")
def rollback(
    vsa: Path,
    model: Path,
    policy_path: Path | None,
    policy_keys: tuple[Path, ...],
    copy_to: Path | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Roll back to the model --to covers, if its summary still passes the gate.

    The target's summary must be signed by a trusted verifier and say PASSED, the
    files of --model must hash to its subject, and with --policy (verified with
    --policy-key) the summary must be the one the policy's rollback.summary names.
    Then it prints the command that serves the target (the switch is a restart
    through the gate: `serve`, or your server behind `gate -- CMD`, on the target's
    summary; its requests go to a log of their own). Exit 0 ready, 1 refused,
    3 malformed summary, 4 no usable trust.
    """
    policy_files = [("--policy", policy_path), *(("--policy-key", k) for k in policy_keys)]
    trust, expect = gate_inputs(options, *policy_files)
    pinned = pinned_target(_policy(policy_path, policy_keys))
    try:
        target = check_rollback(vsa, model, trust, pinned=pinned, expect=expect, copy_to=copy_to)
    except GateDeniedError as exc:
        echo_denied(exc, vsa, model, as_json)
        raise SystemExit(ExitCode.DENIED) from None
    serve = _serve_command(vsa, target.files.copy or model, options)
    doc = {
        "schemaVersion": SCHEMA,
        "result": "READY",
        "target": target.to_json(),
        "pinnedByPolicy": pinned is not None,
        "serve": serve,
    }
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"rollback target PASSED the gate: sha256:{target.checked.digest}")
    click.echo(
        f"  model sha256:{target.checked.model_digest} (run {target.checked.summary.run_id})"
    )
    if pinned is not None:
        click.echo("  it is the rollback target the signed policy names")
    click.echo(f"  serve it:  {shlex.join(serve)}")


def _serve_command(vsa: Path, model: Path, options: dict[str, Any]) -> list[str]:
    """``serve`` on the target with the same trust this check used."""
    argv = ["mlspec-attest", "serve", "--vsa", str(vsa), "--model", str(model)]
    for key in options["verifier_keys"]:
        argv += ["--verifier-key", str(key)]
    flags = ("verifier_identity", "verifier_issuer", "trusted_root", "trust_config")
    for flag in (*flags, "policy_digest", "resource_uri", "max_age"):  # the same expectations
        if options[flag] is not None:
            argv += ["--" + flag.replace("_", "-"), str(options[flag])]
    return [*argv, "--log-dir", "LOG_DIR", "--log-key", "SERVER_KEY"]


def _policy(path: Path | None, keys: tuple[Path, ...]) -> Policy | None:
    if path is None:
        if keys:
            raise UsageError("--policy-key goes with --policy")
        return None
    if not keys:
        raise UsageError("--policy needs --policy-key: an unverified policy pins nothing")
    signed = load_signed_policy(path)
    missing = signed.unsigned_by([load_public_key(k) for k in keys])
    if missing:
        raise PolicySignatureError(
            f"{path}: not signed by owner key {missing[0].keyid[:16]}",
            remedy="pass the policy in force and its owners' keys",
        )
    return signed.policy
