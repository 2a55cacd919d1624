"""``mlspec-attest log verify|prove|trace``: the tamper-evident inference log."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mlspec_attest.cli.options import PATH, file_option, json_option
from mlspec_attest.errors import ExitCode, UsageError
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.formats.printable import printable, printable_lines
from mlspec_attest.log.audit import OK, UNREADABLE, LogAudit, verify_log
from mlspec_attest.log.findings import Finding
from mlspec_attest.log.note import NoteKey, load_verifier
from mlspec_attest.log.proof import (
    CONSISTENCY_SCHEMA,
    consistency_proof,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from mlspec_attest.log.trace import Trace, trace_request
from mlspec_attest.signing.keys import LocalPublicKey

KEY_HELP = (
    "The log's public key: a PEM file (log.pub) or a signed-note verifier key (log.vkey) "
    "[env MLSPEC_ATTEST_LOG_KEY]. Take it from where you trust, not from the log directory."
)
_EXIT = {OK: ExitCode.PASSED, UNREADABLE: ExitCode.BAD_INPUT}


def _key_option(required: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return file_option(
        "--key", "key_path", envvar="MLSPEC_ATTEST_LOG_KEY", required=required, help=KEY_HELP
    )


_name_option = click.option(
    "--key-name", help="The key's name in checkpoint signatures (default: the log's origin)."
)
_origin_option = click.option(
    "--origin", help="The origin every checkpoint must name (default: the log's own)."
)


@click.group()
def log() -> None:
    """Verify, prove and trace the tamper-evident inference log a server writes."""


@log.command("verify")
@click.argument("directory", metavar="DIR", type=PATH)
@_key_option(required=True)
@_name_option
@_origin_option
@click.option(
    "--exact",
    is_flag=True,
    help="Decode, check and render every record, not only those after the last checkpoint "
    "(slower; the same verdict).",
)
@file_option(
    "--known-checkpoint",
    "known",
    multiple=True,
    help="A checkpoint of this log kept from before (a witness's copy, an earlier audit's; "
    "repeatable): a log rolled back below it is tampered, not an unsigned tail.",
)
@json_option("Print one JSON result on stdout.")
def verify(
    directory: Path,
    key_path: Path,
    key_name: str | None,
    origin: str | None,
    exact: bool,
    known: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Audit the log in DIR against its key. Exit 0 ok, 1 tampered, 3 unreadable.

    \b
    Checks every signed checkpoint (grammar, signature, origin), the records against the
    roots the checkpoints signed, the prev chain, sequence numbers, and every access.log
    line against its record. Names each problem with seq and request id: edited,
    deleted, inserted, reordered, truncated-signed, bad-checkpoint, access-log-mismatch.
    A crash's traces (unsigned-tail, torn-tail) are warnings: the log is still ok.

    \b
    Example:
      mlspec-attest log verify /var/log/mlspec/iris --key keys/log.pub
    """
    audit = verify_log(
        directory,
        load_verifier(key_path),
        key_name=key_name,
        origin=origin,
        exact=exact,
        known=known,
    )
    if as_json:
        click.echo(json.dumps(audit.to_json(), indent=2))
    else:
        click.echo(_audit_text(audit))
    code = _EXIT.get(audit.result, ExitCode.DENIED)
    if code:
        raise SystemExit(code)


def _audit_text(audit: LogAudit) -> str:
    # Request ids, paths and access.log lines come from the log directory: no character
    # of theirs breaks or reorders a line of the verdict.
    if audit.result == UNREADABLE:
        return printable(f"log verification UNREADABLE: {audit.problem}")
    head = (
        f"log verification {'PASSED' if audit.ok else 'FAILED'}: {audit.directory} "
        f"({audit.records} records, {audit.signed} covered by a checkpoint signed by "
        f"{audit.key_name!r}, origin {audit.origin!r})"
    )
    lines = [head, f"  root:      {audit.root.hex()}"]
    lines += _findings("problem", audit.problems)
    lines += _findings("warning", audit.warnings)
    return printable_lines(lines)


def _findings(label: str, findings: tuple[Finding, ...]) -> list[str]:
    out: list[str] = []
    for f in findings:
        out.append(f"  {label}: {f.describe()}")
        out.append(f"      fix: {f.remedy}")
    return out


def _load_key(key_path: Path | None) -> LocalPublicKey | NoteKey | None:
    return None if key_path is None else load_verifier(key_path)


@log.command("prove")
@click.argument("request_id", required=False)
@click.option("--log", "directory", type=PATH, required=True, help="The log directory.")
@_key_option(required=False)
@_name_option
@_origin_option
@click.option(
    "--seq", type=click.IntRange(min=0), help="The record's seq, when a request id repeats."
)
@click.option(
    "--consistency",
    nargs=2,
    type=click.IntRange(min=0),
    metavar="OLD NEW",
    help="Prove the checkpoint of OLD records a prefix of that of NEW (0 for NEW: the latest).",
)
@file_option("--check", help="Check a saved proof document offline instead (needs --key).")
@json_option("Print the proof document (with 'verified') on stdout.")
def prove(
    request_id: str | None,
    directory: Path,
    key_path: Path | None,
    key_name: str | None,
    origin: str | None,
    seq: int | None,
    consistency: tuple[int, int] | None,
    check: Path | None,
    as_json: bool,
) -> None:
    """Print the inclusion proof of REQUEST_ID under the log's latest signed checkpoint.

    \b
    With --key the checkpoint's signature, and the proof itself, are verified before
    anything is printed (exit 1 if they do not hold). The document carries the record,
    its leaf index, the signed checkpoint and the RFC 6962 audit path: anyone with the
    log's public key can check it offline (--check, or verify_inclusion in Python).

    \b
    Examples:
      mlspec-attest log prove 4f1c-... --log /var/log/mlspec/iris --key keys/log.pub --json
      mlspec-attest log prove --log /var/log/mlspec/iris --consistency 1000 0 --key keys/log.pub
      mlspec-attest log prove --log . --check proof.json --key keys/log.pub
    """
    key = _load_key(key_path)
    if check is not None:
        _check_saved(check, key, key_name, origin, as_json)
        return
    names: dict[str, Any] = {"public_key": key, "key_name": key_name, "origin": origin}
    if consistency is not None:
        old, new = consistency
        proof = consistency_proof(directory, old, new or None, **names)
        doc = proof.to_json()
        if key is not None:
            verify_consistency(doc, key, key_name=key_name, origin=origin)
        text = f"consistency proof: checkpoint {proof.old.size} is a prefix of checkpoint {proof.new.size}"
    else:
        if not request_id:
            raise UsageError(
                "name the request to prove (REQUEST_ID), or give --consistency OLD NEW"
            )
        inclusion = inclusion_proof(directory, request_id, seq=seq, **names)
        doc = inclusion.to_json()
        if key is not None:
            verify_inclusion(doc, key, key_name=key_name, origin=origin)
        text = (
            f"inclusion proof: request {request_id} is record {inclusion.index} of the "
            f"{inclusion.checkpoint.size} the checkpoint signed (root {inclusion.checkpoint.root.hex()})"
        )
    doc["verified"] = key is not None
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    note = "verified with the given key" if key is not None else "NOT verified: pass --key"
    # The JSON document below is escaped by JSON itself (ASCII only).
    click.echo(f"{printable_lines([text, f'  {note}'])}\n{json.dumps(doc, indent=2)}")


def _check_saved(
    path: Path,
    key: LocalPublicKey | NoteKey | None,
    key_name: str | None,
    origin: str | None,
    as_json: bool,
) -> None:
    if key is None:
        raise UsageError("checking a proof needs the log's public key (--key)")
    doc = load_file(path, what=f"proof {path}")
    names: dict[str, Any] = {"key_name": key_name, "origin": origin}
    if isinstance(doc, dict) and doc.get("schemaVersion") == CONSISTENCY_SCHEMA:
        c = verify_consistency(doc, key, **names)
        text = f"consistency proof PASSED: checkpoint {c.old.size} is a prefix of checkpoint {c.new.size}"
    else:
        i = verify_inclusion(doc, key, **names)
        text = (
            f"inclusion proof PASSED: request {i.record.request_id} is record {i.index} of "
            f"{i.checkpoint.size} signed by the key"
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "schemaVersion": "https://mlspec-attest.dev/log-proof-check/v1",
                    "result": "PASSED",
                    "proof": str(path),
                },
                indent=2,
            )
        )
    else:
        click.echo(printable(text))  # the request id comes from the proof document


@log.command("trace")
@click.argument("request_id")
@click.option("--log", "directory", type=PATH, required=True, help="The log directory.")
@_key_option(required=True)
@_name_option
@_origin_option
@click.option(
    "--seq", type=click.IntRange(min=0), help="The record's seq, when a request id repeats."
)
@click.option(
    "--store",
    type=click.Path(path_type=Path, file_okay=False),
    help="The attestation store: show the verification summary the request was served under.",
)
@json_option("Print one JSON result on stdout.")
def trace(
    request_id: str,
    directory: Path,
    key_path: Path,
    key_name: str | None,
    origin: str | None,
    seq: int | None,
    store: Path | None,
    as_json: bool,
) -> None:
    """Which model, and which verified pipeline, served REQUEST_ID?

    \b
    Verifies the log, proves the request's record included under the latest signed
    checkpoint, and prints the record with its model digest and the digest of the
    verification summary the server was gated with. With --store, prints what that
    summary says (run id, policy digest, input attestations); a summary that is not in
    the store is reported, not an error. Exit 1 if the log does not verify, the record
    is not signed yet, or the stored summary is not the one the record names.

    \b
    Example:
      mlspec-attest log trace 4f1c-... --log /var/log/mlspec/iris --key keys/log.pub --store .mlspec
    """
    result = trace_request(
        directory,
        request_id,
        load_verifier(key_path),
        store=store,
        seq=seq,
        key_name=key_name,
        origin=origin,
    )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(_trace_text(result))
    if not result.passed:
        raise SystemExit(ExitCode.DENIED)


def _trace_text(t: Trace) -> str:
    r, c = t.proof.record, t.proof.checkpoint
    lines = [
        f"trace {'PASSED' if t.passed else 'FAILED'}: request {r.request_id} is record {r.seq} of "
        f"{t.audit.directory}, included in the checkpoint of {c.size} records (root {c.root.hex()[:16]}…)",
        f"  time:      {r.time}",
        f"  request:   {r.method} {r.path} -> {r.status} in {r.latency_us} µs",
        f"  model:     {r.model} {r.model_version} (sha256 {r.model_digest})",
        f"  summary:   sha256 {r.vsa_digest} (the verification summary the server was gated with)",
        f"  input:     {r.input_digest}",
        f"  output:    {json.dumps(r.output, sort_keys=True)[:200]}",
    ]
    s = t.summary
    if s is None:
        lines.append("  (pass --store to show what the verification summary says)")
    elif not s.found or not s.matches:
        lines.append(f"  summary file: {s.problem}")
    else:
        f = s.fields
        lines.append(f"  summary file: {s.path}")
        lines.append(f"    run id:   {f.get('runId')}")
        lines.append(f"    result:   {f.get('verificationResult')} at {f.get('timeVerified')}")
        lines.append(
            f"    policy:   sha256 {f['policy'].get('sha256')} {f['policy'].get('uri') or ''}".rstrip()
        )
        for i in f.get("inputAttestations", []):
            lines.append(f"    input:    {i.get('name')} {i.get('uri')} (sha256 {i.get('sha256')})")
    # Request ids, paths, model names and the summary's fields come from the log and the
    # store: no character of theirs breaks or reorders a line.
    return printable_lines(lines)
