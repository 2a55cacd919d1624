"""``mlspec-attest inspect``: show a document without making a trust decision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mlspec_attest.cli.options import FILE, json_option, store_option
from mlspec_attest.errors import MalformedDocumentError, UsageError
from mlspec_attest.formats.bundle import Bundle, is_bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.formats.fsutil import atomic_write
from mlspec_attest.formats.jsonio import load_file, loads_strict
from mlspec_attest.formats.printable import printable, printable_lines
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.formats.vsa import VSA_PREDICATE_TYPE, VerificationSummary, summary_digest
from mlspec_attest.policy.load import read_policy_any
from mlspec_attest.policy.signed import POLICY_PAYLOAD_TYPE, parse_signed_policy
from mlspec_attest.store.ledger import open_store
from mlspec_attest.verify.html_report import summary_html


def describe(path: Path) -> dict[str, Any]:
    """A JSON description of an attestation bundle, DSSE envelope, signed policy or YAML policy."""
    if path.suffix in (".yaml", ".yml"):
        return {
            "schemaVersion": "https://mlspec-attest.dev/inspect/v1",
            "file": str(path),
            "type": "policy",
            "signed": False,
            "trust": "unsigned YAML policy",
            "policy": read_policy_any(path)[0].to_json(),
        }
    doc = load_file(path)
    out: dict[str, Any] = {
        "schemaVersion": "https://mlspec-attest.dev/inspect/v1",
        "file": str(path),
        "trust": "NOT VERIFIED: inspect makes no trust decision",
    }
    if is_bundle(doc):
        bundle = Bundle.from_json(doc, what=str(path))
        envelope = bundle.envelope
        out.update(
            type="bundle",
            mediaType=bundle.media_type,
            keyHint=bundle.key_hint,
            verificationMaterial=sorted(bundle.verification_material),
        )
    elif isinstance(doc, dict) and "payloadType" in doc:
        envelope = Envelope.from_json(doc, what=str(path))
        out["type"] = "dsse"
    else:
        raise MalformedDocumentError(f"{path}: not a bundle, DSSE envelope or policy")
    out["payloadType"] = envelope.payload_type
    out["signatures"] = [{"keyid": s.keyid, "bytes": len(s.sig)} for s in envelope.signatures]
    if envelope.payload_type == POLICY_PAYLOAD_TYPE:
        signed = parse_signed_policy(doc, what=str(path))
        out.update(type="signed-policy", policyDigest=signed.digest, policy=signed.document)
    elif envelope.payload_type == INTOTO_PAYLOAD_TYPE:
        statement_doc = loads_strict(envelope.payload, what=f"{path}: payload")
        out["statement"] = statement_doc
        if (
            isinstance(statement_doc, dict)
            and statement_doc.get("predicateType") == VSA_PREDICATE_TYPE
        ):
            out["type"] = "verification-summary"
            summary = VerificationSummary.from_json(statement_doc, what=f"{path}: payload")
            out["summaryDigest"] = "sha256:" + summary_digest(envelope.payload)
            out["summary"] = _summary_facts(summary)
            return out
        try:
            st = StageStatement.from_json(statement_doc, what=str(path))
            out["stage"] = {"name": st.name, "kind": st.metadata.kind, "runId": st.metadata.run_id}
        except MalformedDocumentError as exc:
            out["stage"] = None
            out["notMlspec"] = exc.message
    return out


def _summary_facts(summary: VerificationSummary) -> dict[str, Any]:
    checks = summary.details.get("checks", [])
    return {
        "result": summary.result.value,
        "runId": summary.run_id,
        "timeVerified": format_rfc3339(summary.time_verified),
        "verifier": summary.verifier_id,
        "resourceUri": summary.resource_uri,
        "policy": {"uri": summary.policy_uri, "sha256": summary.policy_digest},
        "verifiedLevels": list(summary.levels),
        "subjects": [s.to_json() for s in summary.subjects],
        "inputAttestations": len(summary.inputs),
        "checks": checks if isinstance(checks, list) else [],
        "failures": len(summary.details.get("failures", []) or []),
    }


def _summary_lines(info: dict[str, Any]) -> list[str]:
    facts = info["summary"]
    lines = [
        f"  verification summary: {facts['result']}  run {facts['runId']}  "
        f"verified {facts['timeVerified']} by {facts['verifier']}",
        f"  digest:   {info['summaryDigest']}",
        f"  resource: {facts['resourceUri']}",
        f"  policy:   sha256:{facts['policy']['sha256']}  ({facts['policy']['uri']})",
        f"  levels:   {', '.join(facts['verifiedLevels'])}",
    ]
    for subject in facts["subjects"]:
        lines.append(
            f"  subject   {subject['name']}  sha256:{subject['digest'].get('sha256', '?')}"
        )
    for check in facts["checks"]:
        if isinstance(check, dict):
            lines.append(f"  check     {check.get('level')}: {check.get('result')}")
    lines.append(f"  inputs:   {facts['inputAttestations']} stage attestation(s)")
    if facts["failures"]:
        lines.append(f"  failures: {facts['failures']} (see --json)")
    return lines


def _text(info: dict[str, Any]) -> str:
    lines = [f"{info.get('file', '')}: {info['type']} ({info.get('trust', 'unsigned YAML')})"]
    if info.get("keyHint"):
        lines.append(f"  signer key hint: {info['keyHint']}")
    if "payloadType" in info:
        lines.append(
            f"  payload type:    {info['payloadType']}  ({len(info['signatures'])} signature(s))"
        )
    if info["type"] in ("signed-policy", "policy"):
        pol = info["policy"]
        lines.append(
            f"  policy: {pol.get('metadata', {}).get('name', '(unnamed)')} expires {pol['expires']}"
        )
        lines.append(f"  stages: {', '.join(s['name'] for s in pol['stages'])}")
        if "policyDigest" in info:
            lines.append(f"  digest: {info['policyDigest']}")
    stage = info.get("stage")
    statement = info.get("statement")
    if info["type"] == "verification-summary":
        lines.extend(_summary_lines(info))
    elif stage:
        assert statement is not None
        meta = statement["predicate"]["byproducts"]["mlspec"]
        lines.append(f"  stage: {stage['name']} [{stage['kind']}]  run {stage['runId']}")
        lines.append(f"  time:  {meta['startedOn']} -> {meta['finishedOn']}")
        if statement["predicate"].get("command"):
            lines.append(f"  command: {' '.join(statement['predicate']['command'])}")
        for label, items in (
            ("material", statement["predicate"]["materials"]),
            ("product", statement["subject"]),
        ):
            for item in items:
                lines.append(
                    f"  {label:<9} {item['name']}  sha256:{item['digest'].get('sha256', '?')[:16]}…"
                )
        for section in ("parameters", "metrics", "roles", "infrastructure"):
            if meta.get(section):
                lines.append(f"  {section}: {json.dumps(meta[section], sort_keys=True)}")
        if meta.get("slices"):
            lines.append(f"  slices: {', '.join(meta['slices'])}")
    elif statement:
        lines.append(f"  statement predicateType: {statement.get('predicateType')}")
    # Subject, stage, command and policy names come from the (unverified) document: no
    # character of theirs breaks or reorders a line.
    return printable_lines(lines)


@click.command()
@click.argument("file", type=FILE)
@json_option("Print the decoded document as JSON.")
@click.option(
    "--report",
    "report_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A verification summary: also write it as the HTML audit report (docs/report.md), "
    "marked as read without a trust decision.",
)
@store_option()
def inspect(file: Path, as_json: bool, report_out: Path | None, store: Path | None) -> None:
    """Show an attestation, bundle or policy: signer, stage, subjects, metadata.

    Nothing is verified: use `verify` for a trust decision. With --report, a
    verification summary's stage attestations are looked up in --store by digest
    for the lineage and per-slice metrics.
    """
    info = describe(file)
    if report_out is not None:
        if info["type"] != "verification-summary":
            raise UsageError(
                f"--report needs a verification summary; {file} is a {info['type']}",
                remedy="pass the file `verify --vsa-out` wrote, or use `verify --report`",
            )
        summary = VerificationSummary.from_json(info["statement"], what=str(file))
        atomic_write(report_out, summary_html(summary, open_store(store)).encode("utf-8"))
        click.echo(
            printable(f"report ({summary.result.value}, not verified) -> {report_out}"), err=True
        )
    click.echo(json.dumps(info, indent=2) if as_json else _text(info))
