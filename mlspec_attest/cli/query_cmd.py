"""``mlspec-attest query``: questions over the store's index (runs, lineage, signers, diffs).

Every answer is what the indexed bundles claim; verify a run before relying on it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mlspec_attest.cli.options import FILE, PATH, json_option, store_option, store_url_option
from mlspec_attest.cli.output import echo_result
from mlspec_attest.cli.store_cmd import QUERY_SCHEMA, open_index
from mlspec_attest.errors import UsageError
from mlspec_attest.formats.printable import printable, printable_lines
from mlspec_attest.formats.vsa import VerificationSummary
from mlspec_attest.log.note import load_verifier
from mlspec_attest.log.trace import trace_request
from mlspec_attest.signing.keys import load_public_key
from mlspec_attest.store.index_query import AttestationIndex, parse_digest
from mlspec_attest.store.index_rows import read_bundle
from mlspec_attest.store.ledger import open_store
from mlspec_attest.store.run_diff import diff_runs


def _answer(
    where: tuple[Path | None, str | None],
    name: str,
    ask: Callable[[AttestationIndex], Any],
    render: Callable[[Any], str],
    as_json: bool,
    **fields: Any,
) -> None:
    index, build = open_index(*where)
    try:
        with index.snapshot():
            result = ask(index)
    finally:
        index.close()
    doc = {
        "schemaVersion": QUERY_SCHEMA,
        "query": name,
        **fields,
        "reindexed": build is not None,
        "result": result,
    }
    echo_result(doc, render(result), as_json)


@click.group()
def query() -> None:
    """Ask the store's index: runs, lineage, signers, differences between runs.

    \b
    The index (STORE/index.sqlite3, or PostgreSQL with --store-url) is brought up to
    date with the bundles before it answers. Answers are what the bundles claim, not
    verified: run `mlspec-attest verify` before relying on one.
    """


@query.command("runs")
@store_option()
@store_url_option()
@json_option("Print one JSON result on stdout.")
def runs(store: Path | None, store_url: str | None, as_json: bool) -> None:
    """List the runs: stages, malformed bundles, time span, verification results."""
    _answer((store, store_url), "runs", lambda i: i.runs(), _text_runs, as_json)


@query.command("run")
@click.argument("run_id", metavar="RUN")
@store_option()
@store_url_option()
@json_option("Print one JSON result on stdout.")
def run(run_id: str, store: Path | None, store_url: str | None, as_json: bool) -> None:
    """Show RUN's attestations: stage, kind, signer, products and materials with digests."""
    _answer((store, store_url), "run", lambda i: i.run(run_id), _text_run, as_json, runId=run_id)


@query.command("models")
@click.option("--dataset", required=True, metavar="ALG:HEX", help="The dataset's digest.")
@store_option()
@store_url_option()
@json_option("Print one JSON result on stdout.")
def models(dataset: str, store: Path | None, store_url: str | None, as_json: bool) -> None:
    """Models whose data chain read the dataset (split/train/package, by digest).

    \b
    Example:
      mlspec-attest query models --dataset sha256:1ec1a4f3...
    """
    digest = parse_digest(dataset)
    _answer(
        (store, store_url),
        "models",
        lambda i: i.models_from(digest),
        _text_models,
        as_json,
        dataset=dataset,
    )


@query.command("datasets")
@click.option("--model", "model", metavar="ALG:HEX", help="The model's digest.")
@click.option("--vsa", "vsa", type=FILE, help="A verification summary: its model subject.")
@store_option()
@store_url_option()
@json_option("Print one JSON result on stdout.")
def datasets(
    model: str | None, vsa: Path | None, store: Path | None, store_url: str | None, as_json: bool
) -> None:
    """The stages, data and commands behind a model digest (or a summary's model)."""
    if (model is None) == (vsa is None):
        raise UsageError("give exactly one of --model and --vsa")
    digest, run_id = parse_digest(model) if model else None, None
    if vsa is not None:
        digest, run_id = _vsa_model(vsa)
    assert digest is not None
    shown = f"{digest[0]}:{digest[1]}"
    _answer(
        (store, store_url),
        "datasets",
        lambda i: i.inputs_of(digest, run_id),
        _text_datasets,
        as_json,
        model=shown,
    )


def _vsa_model(path: Path) -> tuple[tuple[str, str], str | None]:
    """The summary's model subject digest and run (read, not verified: the gate verifies)."""
    bundle = read_bundle(path, str(path))
    summary = VerificationSummary.from_payload(bundle.envelope.payload, what=str(path))
    subject = summary.subject("model") or summary.subjects[0]
    algorithm = "sha256" if "sha256" in subject.digest else sorted(subject.digest)[0]
    return (algorithm, subject.digest[algorithm]), summary.run_id


@query.command("signed-by")
@click.option("--key", "key", type=FILE, help="A public key (PEM): runs it signed.")
@click.option("--identity", help="A Sigstore identity (email or URI): runs it signed.")
@store_option()
@store_url_option()
@json_option("Print one JSON result on stdout.")
def signed_by(
    key: Path | None, identity: str | None, store: Path | None, store_url: str | None, as_json: bool
) -> None:
    """Every run with an attestation the key or Sigstore identity signed (as claimed)."""
    if (key is None) == (identity is None):
        raise UsageError("give exactly one of --key and --identity")
    keyid = load_public_key(key).keyid if key is not None else None
    signer = {"keyid": keyid} if keyid else {"identity": identity}
    _answer(
        (store, store_url),
        "signed-by",
        lambda i: i.signed_by(keyid=keyid, identity=identity),
        _text_signed_by,
        as_json,
        signer=signer,
    )


@query.command("diff")
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="RUN_B")
@store_option()
@store_url_option()
@json_option("Print one JSON result on stdout.")
def diff(run_a: str, run_b: str, store: Path | None, store_url: str | None, as_json: bool) -> None:
    """Parameters, data digests and metrics that differ between two runs, per stage."""
    _answer((store, store_url), "diff", lambda i: diff_runs(i, run_a, run_b), _text_diff, as_json)


@query.command("request")
@click.option("--log", "log_dir", type=PATH, required=True, help="The inference log directory.")
@click.option("--log-key", type=FILE, required=True, help="The log's public key (PEM or vkey).")
@click.option("--request-id", required=True, help="The request to trace.")
@store_option()
@store_url_option()
@json_option("Print one JSON result on stdout.")
def request(
    log_dir: Path,
    log_key: Path,
    request_id: str,
    store: Path | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """What served a request: the proven log record, its summary, and the data behind it.

    \b
    The log is audited and the record proven included (as `log trace` does); the
    model digest the record names is then looked up in the index.
    """
    root = open_store(store).root
    trace = trace_request(log_dir, request_id, load_verifier(log_key), store=root)
    record = trace.proof.record
    run_id = trace.summary.fields.get("runId") if trace.summary else None

    def ask(index: AttestationIndex) -> Any:
        return {
            "trace": trace.to_json(),
            "lineage": index.inputs_of(("sha256", record.model_digest), run_id),
        }

    _answer((store, store_url), "request", ask, _text_request, as_json, requestId=request_id)


# text renderers -------------------------------------------------------------------
# Run ids, stage names, file and artifact names, identities and commands are what the
# indexed bundles (and the files of the store) claim: every line goes through
# printable_lines, so none of their characters breaks or reorders a terminal line.


def _digest(doc: dict[str, Any]) -> str:
    digests = doc.get("digest") or {}
    algorithm = "sha256" if "sha256" in digests else next(iter(sorted(digests)), "")
    return f"{algorithm}:{digests[algorithm]}" if algorithm else "(no digest)"


def _summaries(items: list[dict[str, Any]]) -> str:
    return ", ".join(f"{s['result'] or '?'} {str(s['digest'])[:12]}" for s in items) or "none"


def _text_runs(result: list[dict[str, Any]]) -> str:
    if not result:
        return "no runs"
    lines = [f"{'RUN':<40} {'STAGES':>6} {'BAD':>4}  FINISHED              SUMMARIES"]
    for r in result:
        lines.append(
            f"{r['runId']:<40} {r['stages']:>6} {r['malformed']:>4}  "
            f"{r['finishedOn'] or '-':<21} {_summaries(r['summaries'])}"
        )
    return printable_lines(lines)


def _signer(signer: dict[str, Any]) -> str:
    return signer["identity"] or (f"key {signer['keyid'][:16]}" if signer["keyid"] else "?")


def _text_run(result: dict[str, Any]) -> str:
    lines = [f"run {result['runId']}  summaries: {_summaries(result['summaries'])}"]
    for s in result["summaries"]:
        lines.append(f"  summary {s['result'] or '?'} {s['digest']}  by {_signer(s['signer'])}")
        lines += [f"      subject  {a['name']}  {_digest(a)}" for a in s["subjects"]]
        lines += [f"      input    {i['stage']}  sha256:{i['sha256']}" for i in s["inputs"]]
    for s in result["stages"]:
        who = _signer(s["signer"])
        lines.append(f"  {s['stage'] or '?':<12} {s['kind'] or '?':<11} {who}  {s['file']}")
        if s["error"]:
            lines.append(f"      malformed: {s['error']}")
        for side in ("materials", "products"):
            for a in s[side]:
                lines.append(f"      {side[:-1]:<8} {a['name']}  {_digest(a)}")
    return printable_lines(lines)


def _text_models(result: list[dict[str, Any]]) -> str:
    lines = [f"{m['runId']}  {m['stage']:<10} {m['name']}  {_digest(m)}" for m in result]
    return printable_lines(lines) or "no model's chain read that dataset"


def _dataset_lines(result: list[dict[str, Any]]) -> list[str]:
    lines = []
    for run in result:
        lines.append(f"run {run['runId']}")
        for s in run["stages"]:
            command = " ".join(s["command"])
            lines.append(f"  {s['stage']} ({s['kind']})" + (f"  $ {command}" if command else ""))
            for m in s["materials"]:
                source = f"  from {m['producedBy']}" if m["producedBy"] else "  (external)"
                lines.append(f"      read {m['name']}  {_digest(m)}{source}")
    return lines


def _text_datasets(result: list[dict[str, Any]]) -> str:
    return printable_lines(_dataset_lines(result)) or "no stage of the index produced that digest"


def _text_signed_by(result: list[dict[str, Any]]) -> str:
    lines = [
        f"{r['runId']}  {', '.join(str(a['stage']) for a in r['attestations'])}" for r in result
    ]
    return printable_lines(lines) or "no attestation claims that signer"


def _text_diff(result: dict[str, Any]) -> str:
    if result["identical"]:
        return printable(f"{result['runA']} and {result['runB']}: no difference")
    lines = [f"--- {result['runA']}", f"+++ {result['runB']}"]
    for s in result["stages"]:
        if "onlyIn" in s:
            lines.append(f"{s['stage']}: only in {s['onlyIn']}")
            continue
        lines.append(f"{s['stage']}:")
        for field_name in ("parameters", "artifacts", "metrics"):
            for key, change in s.get(field_name, {}).items():
                lines.append(f"  {field_name[:-1]} {key}: {change['a']!r} -> {change['b']!r}")
    return printable_lines(lines)


def _text_request(result: dict[str, Any]) -> str:
    trace = result["trace"]
    summary = trace.get("summary") or {}
    lines = [
        f"request {trace['requestId']} (seq {trace['seq']}), proven in the log",
        f"  model {trace['model']['name']} sha256:{trace['model']['digest']}",
        f"  summary sha256:{trace['vsaDigest']} run {summary.get('runId') or '?'} "
        f"{summary.get('verificationResult') or ''}".rstrip(),
    ]
    lineage = _dataset_lines(result["lineage"]) or ["no stage of the index produced that digest"]
    return printable_lines([*lines, *lineage])
