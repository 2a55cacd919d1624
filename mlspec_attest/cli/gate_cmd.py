"""``mlspec-attest gate``: serve a model only if a signed verification summary covers its bytes.

The trust and expectation options (:func:`gate_options`) and their reading
(:func:`trust_from_options`, :func:`expectations_from_options`) are shared with ``serve``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from mlspec_attest.cli.options import PATH, compose, directory_option, file_option, json_option
from mlspec_attest.errors import ExitCode, GateDeniedError, UsageError
from mlspec_attest.formats.limits import format_size, require_regular
from mlspec_attest.formats.printable import printable_lines
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.serve.gate import VerifiedFiles, read_verified
from mlspec_attest.serve.loaders import choose_entry
from mlspec_attest.serve.vsa_check import (
    CheckedSummary,
    GateExpectations,
    GateReason,
    VerifierTrust,
    check_summary,
)
from mlspec_attest.signing.keys import load_public_key
from mlspec_attest.signing.sigstore.identity import SigstoreIdentity
from mlspec_attest.signing.sigstore.trust_root import TrustRoot

SCHEMA = "https://mlspec-attest.dev/gate/v1"
F = TypeVar("F", bound=Callable[..., Any])
_DURATION = re.compile(
    r"(?:([0-9]{1,9})w)?(?:([0-9]{1,9})d)?(?:([0-9]{1,9})h)?(?:([0-9]{1,9})m)?(?:([0-9]{1,12})s)?",
    re.ASCII,
)
#: The longest ``--max-age`` (a hundred years: longer is no bound at all, and is refused).
MAX_AGE_LIMIT = timedelta(days=36_500)


# ------------------------------------------------------------------ shared with `serve`
def gate_options(
    *vsa_flags: str, vsa_help: str = "The signed verification summary (bundle)."
) -> Callable[[F], F]:
    """``--vsa`` (or ``vsa_flags``) and the trust and expectation options of every gated
    command."""
    return compose(
        file_option(*(vsa_flags or ("--vsa",)), "vsa", required=True, help=vsa_help),
        file_option(
            "--verifier-key",
            "verifier_keys",
            multiple=True,
            help="Public key of a trusted verifier (repeatable).",
        ),
        click.option("--verifier-identity", help="Keyless: the verifier's identity, exactly."),
        click.option("--verifier-issuer", help="Keyless: the OIDC issuer of that identity."),
        file_option("--trusted-root", help="Keyless: the Sigstore TrustedRoot JSON."),
        file_option(
            "--trust-config",
            envvar="MLSPEC_ATTEST_TRUST_CONFIG",
            help="Keyless: a Sigstore ClientTrustConfig JSON [env MLSPEC_ATTEST_TRUST_CONFIG].",
        ),
        click.option("--policy-digest", metavar="SHA256", help="The policy the run must have met."),
        click.option("--resource-uri", metavar="URI", help="Where this model is served from."),
        click.option(
            "--max-age", metavar="DURATION", help="Oldest summary accepted: 90m, 24h, 7d, 1d12h."
        ),
    )


def trust_from_options(
    verifier_keys: Sequence[Path],
    verifier_identity: str | None,
    verifier_issuer: str | None,
    trusted_root: Path | None,
    trust_config: Path | None,
) -> VerifierTrust:
    """The verifiers these options trust (nothing when none is named: the gate refuses)."""
    if (verifier_identity is None) != (verifier_issuer is None):
        raise UsageError("--verifier-identity and --verifier-issuer go together")
    if trusted_root is not None and trust_config is not None:
        raise UsageError("choose one of --trusted-root and --trust-config")
    identities: tuple[SigstoreIdentity, ...] = ()
    if verifier_identity is not None and verifier_issuer is not None:
        try:
            identities = (SigstoreIdentity(verifier_issuer, identity=verifier_identity),)
        except ValueError as exc:
            raise UsageError(f"--verifier-identity/--verifier-issuer: {exc}") from exc
    root_file = trusted_root or trust_config
    return VerifierTrust(
        keys=tuple(load_public_key(path) for path in verifier_keys),
        identities=identities,
        trust_root=TrustRoot.from_file(root_file) if root_file is not None else None,
    )


def gate_inputs(
    options: dict[str, Any], *also: tuple[str, Path | None]
) -> tuple[VerifierTrust, GateExpectations]:
    """The trust and expectations named by :func:`gate_options` (their parameters).

    First, a FIFO, a device or a socket named for a trust file, or for one of the
    command's own files in ``also`` (``(option, path)``), is refused as such (exit 3),
    not read as empty and reported as a key or document that does not parse (and a
    FIFO nobody writes to never hangs the command). The summary is refused by its own
    reader (:func:`~mlspec_attest.serve.vsa_check.check_summary`)."""
    trust_files = [("--verifier-key", key) for key in options["verifier_keys"]]
    trust_files += [
        ("--trusted-root", options["trusted_root"]),
        ("--trust-config", options["trust_config"]),
    ]
    for option, path in (*trust_files, *also):
        if path is not None:
            require_regular(path, what=f"{option} {path}")
    trust = trust_from_options(
        options["verifier_keys"],
        options["verifier_identity"],
        options["verifier_issuer"],
        options["trusted_root"],
        options["trust_config"],
    )
    expect = expectations_from_options(
        options["policy_digest"], options["resource_uri"], options["max_age"]
    )
    return trust, expect


def parse_duration(text: str) -> timedelta:
    """``90m``, ``24h``, ``7d``, ``1d12h``, ``2w`` as a duration."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise UsageError(
            f"--max-age {text!r} is not a duration", remedy="write it as 90m, 24h, 7d or 1d12h"
        )
    w, d, h, m, s = (int(g or 0) for g in match.groups())
    try:
        age = timedelta(weeks=w, days=d, hours=h, minutes=m, seconds=s)
    except OverflowError:
        age = None
    if age is None or age > MAX_AGE_LIMIT:
        raise UsageError(
            f"--max-age {text!r} is longer than {MAX_AGE_LIMIT.days} days",
            remedy="give how old a summary may be, e.g. 7d",
        )
    return age


def expectations_from_options(
    policy_digest: str | None, resource_uri: str | None, max_age: str | None
) -> GateExpectations:
    age = parse_duration(max_age) if max_age is not None else None
    return GateExpectations(policy_digest=policy_digest, resource_uri=resource_uri, max_age=age)


# ------------------------------------------------------------------ the command
@click.command(context_settings={"allow_interspersed_args": False})
@gate_options()
@click.option(
    "--model", type=PATH, required=True, help="The model directory (or file) to be served."
)
@directory_option(
    "--copy-to", help="Write the verified files here (new or empty; files 0400, folders 0500)."
)
@click.option("--entry", metavar="NAME", help="The model file a loader opens (checked present).")
@json_option("Print one versioned JSON result on stdout.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[-- SERVER COMMAND...]")
def gate(
    vsa: Path,
    model: Path,
    copy_to: Path | None,
    entry: str | None,
    as_json: bool,
    command: tuple[str, ...],
    **options: Any,
) -> None:
    """Check a signed verification summary and the model's bytes; then run the server.

    Exit 0 only if the summary is signed by a trusted verifier, says PASSED, meets
    the expectations given, and every file of --model hashes to its model subject
    (root and names). Exit 1 denied, 3 malformed summary, 4 no usable trust.
    After `--`, the server command is executed in place of the gate (only when it
    passed), with MLSPEC_GATE_MODEL_DIR (the copy, or --model),
    MLSPEC_GATE_MODEL_DIGEST, MLSPEC_GATE_VSA_DIGEST, MLSPEC_GATE_POLICY_DIGEST
    and MLSPEC_GATE_RUN_ID set.

    \b
    Wrapper (the gate is the container's entrypoint):
      mlspec-attest gate --vsa /vsa/model.vsa.json --verifier-key /keys/verifier.pub \\
          --model /models/iris --policy-digest sha256:... --max-age 7d \\
          -- python -m myserver --model /models/iris
    Init container (the server mounts the copy read-only; see docs/serving.md):
      mlspec-attest gate --vsa ... --verifier-key ... --model /downloaded \\
          --copy-to /verified-model
    The server should load from the copy: files re-read from --model later are not
    what was checked.
    """
    trust, expect = gate_inputs(options)
    try:
        checked = check_summary(vsa, trust, expect)
        files = read_verified(model, checked.subject.digest, copy_to=copy_to, keep=False)
    except GateDeniedError as exc:
        echo_denied(exc, vsa, model, as_json)
        raise SystemExit(ExitCode.DENIED) from None
    chosen = choose_entry(files.names, entry) if entry is not None else None
    doc = _passed(vsa, model, checked, files, chosen, command)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(_text(doc), err=bool(command))
    if command:
        _exec(command, _environment(model, checked, files))


def _passed(
    vsa: Path,
    model: Path,
    checked: CheckedSummary,
    files: VerifiedFiles,
    entry: str | None,
    command: tuple[str, ...],
) -> dict[str, Any]:
    s = checked.summary
    return {
        "schemaVersion": SCHEMA,
        "result": "PASSED",
        "exitCode": 0,
        "vsa": {"path": str(vsa), "digest": checked.digest, "signer": checked.signer},
        "summary": {
            "result": s.result.value,
            "policyDigest": s.policy_digest,
            "runId": s.run_id,
            "timeVerified": format_rfc3339(s.time_verified),
            "ageSeconds": int(checked.age.total_seconds()),
            "resourceUri": s.resource_uri,
            "verifier": s.verifier_id,
            "levels": list(s.levels),
        },
        "model": {
            "path": str(model),
            "kind": files.kind,
            "digest": files.digest,
            "manifestDigest": files.address,
            "files": len(files.names),
            "bytes": files.size,
            "entry": entry,
            "copy": str(files.copy) if files.copy is not None else None,
        },
        "command": list(command),
        "reasons": [],
    }


def _text(doc: dict[str, Any]) -> str:
    s, m, v = doc["summary"], doc["model"], doc["vsa"]
    lines = [
        f"gate PASSED: {m['path']} is what the verification summary {v['path']} covers",
        f"  result         {s['result']} (signed by {v['signer']})",
        f"  vsa digest     sha256:{v['digest']}",
        f"  policy digest  sha256:{s['policyDigest']}",
        f"  model digest   sha256:{m['digest']} ({m['files']} files, {format_size(m['bytes'])})",
        f"  run id         {s['runId'] or '(none)'}",
        f"  verified       {s['timeVerified']} ({_age(s['ageSeconds'])})",
        f"  resource       {s['resourceUri']}",
    ]
    if m["entry"]:
        lines.append(f"  entry          {m['entry']}")
    if m["copy"]:
        lines.append(f"  verified copy  {m['copy']}")
    # The run id, resource URI and signer come from the summary: no character of theirs
    # breaks or reorders a line.
    return printable_lines(lines)


def _age(seconds: int) -> str:
    if seconds < 0:
        return f"{-seconds}s ahead of this clock"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def echo_denied(exc: GateDeniedError, vsa: Path, model: Path, as_json: bool) -> None:
    reasons = [
        r.to_json() if isinstance(r, GateReason) else {"message": str(r)} for r in exc.reasons
    ]
    if as_json:
        doc = {
            "schemaVersion": SCHEMA,
            "result": "DENIED",
            "exitCode": int(ExitCode.DENIED),
            "vsa": {"path": str(vsa)},
            "model": {"path": str(model)},
            "message": exc.message,
            "reasons": reasons,
        }
        click.echo(json.dumps(doc, indent=2))
    lines = [f"gate DENIED: {exc.message}"]
    for r in reasons:
        lines.append(f"  - {r.get('check', '')}: {r['message']}")
        if r.get("expected") or r.get("found"):
            lines.append(f"      expected: {r.get('expected') or '-'}")
            lines.append(f"      found:    {r.get('found') or '-'}")
        if r.get("remedy"):
            lines.append(f"      fix:      {r['remedy']}")
    click.echo(printable_lines(lines), err=True)  # reasons quote the summary's fields


def _environment(model: Path, checked: CheckedSummary, files: VerifiedFiles) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MLSPEC_GATE_MODEL_DIR=str((files.copy or model).resolve()),
        MLSPEC_GATE_MODEL_DIGEST=checked.model_digest,
        MLSPEC_GATE_VSA_DIGEST=checked.digest,
        MLSPEC_GATE_POLICY_DIGEST=checked.summary.policy_digest,
        MLSPEC_GATE_RUN_ID=checked.summary.run_id or "",
    )
    return env


def _exec(command: tuple[str, ...], env: dict[str, str]) -> None:
    """Replace this process with the server (output flushed first: exec discards buffers)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], list(command), env)  # noqa: S606 - the operator's command
    except OSError as exc:
        raise UsageError(
            f"cannot run the server command {command[0]!r}: {exc.strerror}",
            remedy="check the command after --",
        ) from exc
