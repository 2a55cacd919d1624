"""``mlspec-attest metrics compute|validate``: the documents that ``sign --metrics`` records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mlspec_attest.cli.options import (
    PATH,
    count_option,
    file_option,
    json_option,
    repeatable_option,
)
from mlspec_attest.evidence.metrics import metrics_from_csv
from mlspec_attest.evidence.metrics_file import validate_metrics_document
from mlspec_attest.formats.fsutil import atomic_write
from mlspec_attest.formats.jsonio import load_file, pretty
from mlspec_attest.formats.printable import printable

VALIDATION_SCHEMA = "https://mlspec-attest.dev/metrics-validation/v1"


@click.group()
def metrics() -> None:
    """Compute metrics from predictions, or check a metrics document.

    The document is what `mlspec-attest sign --metrics FILE` records: overall
    metrics, metrics per slice with counts, optional bootstrap confidence
    intervals. See docs/metrics.md.
    """


@metrics.command()
@click.argument("csv_path", metavar="CSV", type=PATH)
@click.option(
    "--task",
    type=click.Choice(["regression", "classification"]),
    required=True,
    help="What the predictions are.",
)
@click.option("--label", required=True, metavar="COL", help="Column of true values or labels.")
@click.option("--prediction", required=True, metavar="COL", help="Column of predictions.")
@click.option(
    "--score",
    metavar="COL",
    help="Classification: positive-class probability or score (adds roc_auc, log_loss).",
)
@repeatable_option(
    "--slice",
    "slices",
    metavar="COL",
    help="Also compute metrics per value of COL (repeatable).",
)
@click.option(
    "--positive-label",
    metavar="V",
    help="Classification: the positive class for precision/recall/f1/AUC [default: 1].",
)
@count_option(
    "--bootstrap",
    minimum=0,
    default=0,
    metavar="N",
    help="Bootstrap resamples for confidence intervals (0: none).",
)
@click.option(
    "--confidence",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    metavar="LEVEL",
    help="Confidence level of the intervals [default: 0.95; needs --bootstrap].",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**32 - 1),
    default=0,
    show_default=True,
    metavar="N",
    help="Seed of the bootstrap resampling (same seed, same intervals).",
)
@file_option(
    "--out",
    default=None,
    metavar="FILE",
    help="Write the document to FILE (atomically) instead of stdout.",
)
@json_option("Print the document on stdout even with --out.")
def compute(csv_path: Path, out: Path | None, as_json: bool, **options: Any) -> None:
    """Compute the metrics document of a CSV of predictions.

    CSV has a header row and one row per prediction.

    \b
    Regression:     count mae mse rmse r2 max_error median_absolute_error
    Classification: count accuracy precision recall f1 (+ roc_auc log_loss with --score)
    A metric undefined for a slice (AUC with one class) is left out and the reason
    recorded under "omitted". The output is a valid `sign --metrics FILE`.
    """
    doc = metrics_from_csv(csv_path, **options)  # the options, named as it names them
    text = pretty(doc) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    atomic_write(out, text.encode("utf-8"))
    if as_json:
        click.echo(text, nl=False)
        return
    families = ", ".join(f"{f} ({len(v)})" for f, v in doc["slices"].items()) or "none"
    # Slice names come from the predictions' columns and values.
    click.echo(printable(f"wrote {out}: {doc['metrics']['count']} rows; slices: {families}"))


@metrics.command()
@click.argument("path", metavar="FILE", type=PATH)
@json_option("Print the result as a JSON document.")
def validate(path: Path, as_json: bool) -> None:
    """Check a metrics document against the v1 schema (exit 0 valid, 3 invalid).

    Every problem is listed: schema violations, NaN or infinite numbers,
    non-integer counts, intervals with low above high.
    """
    what = f"metrics file {path}"
    doc = load_file(path, what=what)
    validate_metrics_document(doc, what=what)
    slices = doc.get("slices", {})
    if as_json:
        result = {
            "schemaVersion": VALIDATION_SCHEMA,
            "file": str(path),
            "valid": True,
            "metrics": sorted(doc["metrics"]),
            "slices": {family: sorted(members) for family, members in slices.items()},
        }
        click.echo(json.dumps(result, indent=2))
        return
    families = ", ".join(f"{f} ({len(v)})" for f, v in slices.items()) or "none"
    click.echo(
        printable(
            f"{path}: valid metrics document; {len(doc['metrics'])} metrics; slices: {families}"
        )
    )
