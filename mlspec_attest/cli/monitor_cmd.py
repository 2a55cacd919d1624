"""``mlspec-attest monitor``: drift and live metrics over a window of the verified inference log."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from mlspec_attest.cli.gate_cmd import gate_inputs, gate_options
from mlspec_attest.cli.options import directory_option, file_option, json_option
from mlspec_attest.errors import BadInputError, UsageError
from mlspec_attest.formats.cells import TabularReader
from mlspec_attest.formats.fsutil import atomic_write
from mlspec_attest.formats.jsonio import pretty
from mlspec_attest.serve.monitor import MonitorRequest, monitor_window
from mlspec_attest.serve.vsa_check import check_summary
from mlspec_attest.signing.keys import load_public_key


@click.command()
@directory_option("--log", "log_dir", required=True, help="The inference log directory.")
@file_option("--log-key", required=True, help="Public key that signs the log's checkpoints.")
@gate_options()
@file_option(
    "--train-data",
    required=True,
    help="The training split (CSV/TSV/JSON Lines); must equal the summary's train-data subject.",
)
@click.option(
    "--feature",
    "features",
    multiple=True,
    help="A feature, in the model's input order (repeatable). Default: every column of "
    "--train-data but --target.",
)
@click.option("--target", default="target", show_default=True, help="The label column to skip.")
@click.option("--window", type=click.IntRange(min=1), help="Only the last N requests.")
@file_option("--labels", help="True values that arrived later: a CSV of request_id,label.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Write the metrics document here (sign it: sign --stage monitor --metrics FILE).",
)
@json_option("Print the metrics document on stdout.")
def monitor(
    log_dir: Path,
    log_key: Path,
    train_data: Path,
    features: tuple[str, ...],
    target: str,
    window: int | None,
    labels: Path | None,
    out: Path,
    as_json: bool,
    **gate: Any,
) -> None:
    """Measure a window of the inference log against the verified pipeline.

    The log must verify (its signed records only are used), the summary must be
    signed by a trusted verifier, and --train-data must be the training split it
    names. Per feature: PSI and the two-sample KS test of the logged inputs (logged
    when the server runs with --log-inputs) against the training column; traffic,
    error rate, latency and the prediction distribution; with --labels the live
    error. The metrics document it writes is what the monitor stage signs; policy
    requirements then bound it, e.g. stages.monitor.metrics["drift.psi_max"] < 0.25.
    """
    files = (("--log-key", log_key), ("--train-data", train_data), ("--labels", labels))
    trust, expect = gate_inputs(gate, *files)
    checked = check_summary(gate["vsa"], trust, expect)
    names = features or _columns(train_data, target)
    request = MonitorRequest(
        log_dir=log_dir,
        log_key=load_public_key(log_key),
        summary=checked.summary,
        summary_digest=checked.digest,
        train_data=train_data,
        features=tuple(names),
        window=window,
        labels=_labels(labels) if labels is not None else {},
    )
    document = monitor_window(request)
    atomic_write(out, (pretty(document) + "\n").encode())
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    metrics = document["metrics"]
    click.echo(f"monitor: {int(metrics['window.requests'])} request(s) -> {out}")
    for name, value in metrics.items():
        click.echo(f"  {name:<24} {value:g}")
    for feature, entry in document["slices"].get("feature", {}).items():
        m = entry["metrics"]
        click.echo(
            f"  feature {feature:<16} psi {m['psi']:.4f}  ks {m['ks_statistic']:.4f} "
            f"(p {m['ks_pvalue']:.3g})"
        )
    for name, reason in document.get("omitted", {}).items():
        click.echo(f"  {name:<24} {reason}")


def _columns(path: Path, target: str) -> list[str]:
    with TabularReader(path, limit=1) as reader:
        for _ in reader:
            pass
        columns = [c for c in reader.columns if c != target]
    if not columns:
        raise UsageError(f"{path}: no feature columns", remedy="name them with --feature")
    return columns


def _labels(path: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    with TabularReader(path) as reader:
        for row in reader:
            rid, label = row.get("request_id"), row.get("label")
            if rid is None or label is None:
                raise BadInputError(f"{path}:{reader.line}: needs request_id and label")
            try:
                value = float(label)
            except (TypeError, ValueError) as exc:
                raise BadInputError(
                    f"{path}:{reader.line}: label {label!r} is not a number"
                ) from exc
            if not math.isfinite(value):
                raise BadInputError(f"{path}:{reader.line}: label {label!r} is not a finite number")
            if str(rid) in out:
                # Which of two labels counts must not depend on their order in the file.
                raise BadInputError(f"{path}:{reader.line}: request {rid!r} is labelled twice")
            out[str(rid)] = value
    return out
