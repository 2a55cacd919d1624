"""``mlspec-attest export``: hand a run to other tools.

``export intoto`` writes a legacy in-toto layout and links that the reference
``in-toto-verify`` accepts; ``export jsonl`` writes the stage envelopes as an
``.intoto.jsonl`` bundle (witness, Archivista, GUAC). See docs/in-toto.md.
``export cyclonedx`` writes a verified run as a CycloneDX 1.6 ML-BOM and ``export spdx3``
as SPDX 3 (AI and Dataset profiles); see docs/exports.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mlspec_attest.cli.options import (
    directory_option,
    file_option,
    json_option,
    passphrase_env_option,
    passphrase_from_env,
    repeatable_option,
    run_options,
    split_pairs,
)
from mlspec_attest.cli.output import echo_result
from mlspec_attest.cli.report_render import report_text
from mlspec_attest.errors import ExitCode
from mlspec_attest.formats.printable import printable, printable_lines
from mlspec_attest.interop.cyclonedx import export_cyclonedx
from mlspec_attest.interop.intoto import (
    IntotoExport,
    export_intoto,
    export_jsonl,
    functionary_signers,
)
from mlspec_attest.interop.spdx3 import export_spdx3
from mlspec_attest.interop.verified_run import VerifiedExport
from mlspec_attest.policy.signed import load_signed_policy
from mlspec_attest.signing.keys import load_private_key, load_public_key
from mlspec_attest.store.ledger import open_store
from mlspec_attest.verify.report import VerificationReport

EXPORT_SCHEMA = "https://mlspec-attest.dev/export/v1"
_JSON_HELP = "Print one versioned JSON document."


@click.group()
def export() -> None:
    """Export a run for other tools: in-toto, .intoto.jsonl, CycloneDX, SPDX 3."""


@export.command("intoto")
@run_options("export", policy_help="Signed policy (from `policy sign`).")
@file_option(
    "--key",
    "key_path",
    required=True,
    help="The policy owner's private key; signs the exported layout.",
)
@passphrase_env_option("Env var holding the --key passphrase.")
@repeatable_option(
    "--functionary-key",
    "functionary_keys",
    metavar="NAME=KEYFILE",
    help="Private key of functionary NAME; re-signs its stages as legacy links (repeatable).",
)
@directory_option(
    "--functionary-key-dir",
    help="Directory of functionary private keys (*.key, unencrypted), matched by public key.",
)
@repeatable_option(
    "--artifact",
    "artifacts",
    metavar="ROLE=PATH",
    help="A deploy artifact to re-hash while verifying before export (repeatable).",
)
@directory_option(
    "--out",
    "out_dir",
    required=True,
    help="New or empty directory for the layout and the <stage>.<keyid8>.link files.",
)
@click.option("--layout-name", default="root.layout", show_default=True, help="Layout file name.")
@json_option(_JSON_HELP)
def intoto_cmd(
    policy_path: Path,
    policy_keys: tuple[Path, ...],
    store: Path | None,
    run_id: str | None,
    key_path: Path,
    passphrase_env: str | None,
    functionary_keys: tuple[str, ...],
    functionary_key_dir: Path | None,
    artifacts: tuple[str, ...],
    out_dir: Path,
    layout_name: str,
    as_json: bool,
) -> None:
    """Verify a run, then write it as a legacy in-toto layout and links.

    The layout (one step per stage: functionary keys, threshold, artifact
    rules) is signed with --key; each stage's attestation is re-signed as a
    legacy link with its functionary's key, so this works for local-key
    pipelines. A denied run is not exported (exit 1). Check the result with
    `in-toto-verify --layout OUT/root.layout --verification-keys OWNER.pub
    --link-dir OUT`.
    """
    signed = load_signed_policy(policy_path)
    owner_keys = [load_public_key(k) for k in policy_keys]
    layout_signer = load_private_key(key_path, passphrase=passphrase_from_env(passphrase_env))
    named = split_pairs(functionary_keys, "--functionary-key")
    signers = functionary_signers(signed.policy, named, functionary_key_dir)
    deploy = {role: Path(p) for role, p in split_pairs(artifacts, "--artifact").items()}
    result = export_intoto(
        signed,
        owner_keys,
        open_store(store),
        layout_signer=layout_signer,
        functionary_signers=signers,
        out_dir=out_dir,
        run_id=run_id,
        artifacts=deploy,
        layout_name=layout_name,
    )
    if result.layout is None:
        echo_result(result.report.to_json(), report_text(result.report), as_json)
        raise SystemExit(ExitCode.DENIED)
    echo_result(*_exported(result, policy_keys[0], out_dir), as_json)


def _exported(result: IntotoExport, owner: Path, out_dir: Path) -> tuple[dict[str, Any], str]:
    """The JSON document and the text of a written export."""
    doc = {
        "schemaVersion": EXPORT_SCHEMA,
        "result": "EXPORTED",
        "format": "in-toto-layout",
        "runId": result.report.run_id,
        "layout": str(result.layout),
        "layoutKeyid": result.layout_keyid,
        "links": [str(p) for p in result.links],
        "notes": list(result.report.notes),
    }
    # The run id, link names (stage names) and notes come from the run's attestations.
    text = printable_lines(
        [
            f"exported run {result.report.run_id}: {result.layout} and {len(result.links)} link(s)",
            *(f"  {p.name}" for p in result.links),
            *(f"  note: {n}" for n in result.report.notes),
            f"check: in-toto-verify --layout {result.layout} --verification-keys {owner} "
            f"--link-dir {out_dir}",
        ]
    )
    return doc, text


@export.command("jsonl")
@run_options("export")
@file_option("--out", "out", required=True, help="Output file, by convention NAME.intoto.jsonl.")
@json_option(_JSON_HELP)
def jsonl_cmd(store: Path | None, run_id: str | None, out: Path, as_json: bool) -> None:
    """Write a run's stage envelopes as .intoto.jsonl (one DSSE envelope a line).

    The envelopes are copied as signed (nothing is verified or re-signed), for
    tools such as witness, Archivista and GUAC.
    """
    result = export_jsonl(open_store(store), out, run_id=run_id)
    doc = {
        "schemaVersion": EXPORT_SCHEMA,
        "result": "EXPORTED",
        "format": "intoto-jsonl",
        "runId": result.run_id,
        "file": str(result.path),
        "envelopes": len(result.sources),
        "sources": list(result.sources),
    }
    text = printable(
        f"wrote {len(result.sources)} envelope(s) of run {result.run_id} to {result.path}"
    )
    echo_result(doc, text, as_json)


def _bom_options(func: Any) -> Any:
    """The options of a bill-of-materials export (the run, deploy artifacts, output)."""
    for decorator in reversed(
        (
            run_options("export", policy_help="Signed policy (from `policy sign`)."),
            repeatable_option(
                "--artifact",
                "artifacts",
                metavar="ROLE=PATH",
                help="A deploy artifact to re-hash while verifying before export (repeatable).",
            ),
            file_option("--out", "out", required=True, help="Output file (JSON)."),
            json_option(_JSON_HELP),
        )
    ):
        func = decorator(func)
    return func


@export.command("cyclonedx")
@_bom_options
def cyclonedx_cmd(
    policy_path: Path,
    policy_keys: tuple[Path, ...],
    store: Path | None,
    run_id: str | None,
    artifacts: tuple[str, ...],
    out: Path,
    as_json: bool,
) -> None:
    """Verify a run, then write it as a CycloneDX 1.6 ML-BOM.

    The model (with a model card of the evaluation and test metrics per slice), the
    datasets with their digests, the pipeline's formulation and every attestation by
    digest; validated against the CycloneDX 1.6 schema. A denied run is not exported
    (exit 1).
    """
    _export_bom(export_cyclonedx, "cyclonedx-1.6", policy_path, policy_keys, store, run_id,
                artifacts, out, as_json)  # fmt: skip


@export.command("spdx3")
@_bom_options
def spdx3_cmd(
    policy_path: Path,
    policy_keys: tuple[Path, ...],
    store: Path | None,
    run_id: str | None,
    artifacts: tuple[str, ...],
    out: Path,
    as_json: bool,
) -> None:
    """Verify a run, then write it as SPDX 3.0.1 JSON-LD (AI and Dataset profiles).

    The model as an AI package (hyperparameters, metrics per slice), the datasets as
    dataset packages with their digests, trainedOn/testedOn relationships, and every
    attestation by digest as evidence. A denied run is not exported (exit 1).
    """
    _export_bom(export_spdx3, "spdx-3.0.1", policy_path, policy_keys, store, run_id,
                artifacts, out, as_json)  # fmt: skip


def _export_bom(
    exporter: Callable[..., VerifiedExport],
    fmt: str,
    policy_path: Path,
    policy_keys: tuple[Path, ...],
    store: Path | None,
    run_id: str | None,
    artifacts: tuple[str, ...],
    out: Path,
    as_json: bool,
) -> None:
    """Verify, then write the bill of materials; a denial prints the report, exit 1."""
    deploy = {role: Path(p) for role, p in split_pairs(artifacts, "--artifact").items()}
    result = exporter(
        load_signed_policy(policy_path),
        [load_public_key(k) for k in policy_keys],
        open_store(store),
        out=out,
        run_id=run_id,
        artifacts=deploy,
    )
    if result.document is None:
        echo_result(result.report.to_json(), report_text(result.report), as_json)
        raise SystemExit(ExitCode.DENIED)
    _bom_written(fmt, result.report, out, as_json)


def _bom_written(fmt: str, report: VerificationReport, out: Path, as_json: bool) -> None:
    doc = {
        "schemaVersion": EXPORT_SCHEMA,
        "result": "EXPORTED",
        "format": fmt,
        "runId": report.run_id,
        "file": str(out),
        "notes": list(report.notes),
    }
    text = printable_lines(
        [f"exported run {report.run_id} as {fmt} to {out}", *(f"  note: {n}" for n in report.notes)]
    )
    echo_result(doc, text, as_json)
