"""``mlspec-attest analyze``, ``mlspec-attest schema infer`` and ``mlspec-attest validate``.

The reports these commands write (``--out``) are meant to be products of the
analyze and validate stages, so ``sign`` attests them with the data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mlspec_attest.cli.options import (
    PATH,
    F,
    choice_option,
    count_option,
    file_option,
    json_option,
    repeatable_option,
)
from mlspec_attest.cli.output import deny_unless
from mlspec_attest.evidence.analysis import analyze_dataset
from mlspec_attest.evidence.dataschema import load_data_schema, validate_dataset
from mlspec_attest.evidence.schema_inference import infer_schema
from mlspec_attest.evidence.violations import ValidationResult
from mlspec_attest.formats.fsutil import atomic_write
from mlspec_attest.formats.printable import printable, printable_lines
from mlspec_attest.formats.yamlio import dump_yaml

_DATA = PATH


def _out_option(help: str) -> Callable[[F], F]:
    """``--out FILE``: where a command also writes its document."""
    return file_option("--out", default=None, help=help)


def _document(doc: Any) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _write(path: Path, text: str) -> None:
    atomic_write(path, text.encode("utf-8"))
    click.echo(printable(f"wrote {path}"), err=True)


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.6g}"


# ----------------------------------------------------------------------------- analyze
def _analysis_text(path: Path, report: dict[str, Any]) -> str:
    # Column names, values and slice keys come from the data: each line is made printable
    # (column names first, so the table stays aligned).
    dataset = report["dataset"]
    lines = [
        f"{path}: {dataset['rows']} rows, {len(dataset['columns'])} columns "
        f"({dataset['format']}, sha256:{dataset['sha256']})",
        "",
    ]
    names = {column: printable(column) for column in report["features"]}
    width = max([len(c) for c in names.values()] + [7])
    lines.append(
        f"{'feature':<{width}}  {'type':<6} {'count':>7} {'missing':>7} "
        f"{'mean':>10} {'std':>10} {'min':>10} {'p50':>10} {'max':>10}"
    )
    for column, stats in report["features"].items():
        name = names[column]
        head = f"{name:<{width}}  {stats['type']:<6} {stats['count']:>7} {stats['missing']:>7} "
        if stats["type"] == "number":
            lines.append(
                head + f"{_num(stats['mean']):>10} {_num(stats['std']):>10} "
                f"{_num(stats['min']):>10} {_num(stats['quantiles']['p50']):>10} "
                f"{_num(stats['max']):>10}"
            )
        else:
            top = ", ".join(f"{v} ({n})" for v, n in stats["top"][:3])
            lines.append(head + f"{stats['distinct']} distinct; top: {top}")
    for column, family in report["slices"].items():
        members = ", ".join(f"{key} ({entry['rows']} rows)" for key, entry in family.items())
        lines += ["", f"slice {column}: {members}"]
    found = report["outliers"]
    flagged = ", ".join(f"{c} {n}" for c, n in found["perFeature"].items() if n)
    lines += [
        "",
        f"outliers ({found['method']}, threshold {found['threshold']:g}): "
        f"{found['count']} rows" + (f"; {flagged}" if flagged else ""),
    ]
    return printable_lines(lines)


@click.command()
@click.argument("data", type=_DATA)
@repeatable_option(
    "--slice",
    "slices",
    metavar="COL",
    help="Also report statistics per value of this categorical column (repeatable).",
)
@choice_option(
    "--outliers",
    choices=["iqr", "zscore"],
    default="iqr",
    help="iqr: outside [p25 - k*IQR, p75 + k*IQR]; zscore: |x - mean| / std > k.",
)
@click.option(
    "--threshold",
    type=float,
    default=None,
    metavar="K",
    help="Outlier threshold k [default: 1.5 for iqr, 3 for zscore].",
)
@repeatable_option(
    "--exclude-column",
    "exclude",
    metavar="COL",
    help="Leave this column (ids, labels) out of features and outliers (repeatable).",
)
@_out_option("Write the JSON report here (a stage product).")
@json_option("Print the JSON report on stdout.")
def analyze(
    data: Path,
    slices: tuple[str, ...],
    outliers: str,
    threshold: float | None,
    exclude: tuple[str, ...],
    out: Path | None,
    as_json: bool,
) -> None:
    """Descriptive statistics of DATA (CSV, TSV or JSON Lines) per feature and slice; outliers.

    Numeric features get count, missing, mean, std, min, max and quantiles
    (p01 … p99); other features get distinct and top values. Outlier rows are
    listed by 0-based index.

    \b
      mlspec-attest analyze data.csv --slice sex --out analysis.json
      mlspec-attest sign --stage analyze --material data.csv --product analysis.json
    """
    report = analyze_dataset(
        data, slices=slices, outliers=outliers, threshold=threshold, exclude_columns=exclude
    )
    if out is not None:
        _write(out, _document(report) + "\n")
    if as_json:
        click.echo(_document(report))
    else:
        click.echo(_analysis_text(data, report))


# ----------------------------------------------------------------------------- schema
def _schema_yaml(doc: dict[str, Any], comment: str | None) -> str:
    return dump_yaml(doc, comment=comment, flow_lists=("enum",))


@click.group()
def schema() -> None:
    """Data schemas: infer a first version from data (check data with `validate`)."""


@schema.command("infer")
@click.argument("data", type=_DATA)
@count_option(
    "--rows",
    minimum=1,
    default=30,
    help="Infer from this many leading rows (like `select * from foo limit N`).",
)
@click.option("--name", required=True, help="Schema name, e.g. diabetes-features.")
@click.option("--version", "schema_version", default="1", show_default=True, help="Schema version.")
@_out_option("Write the schema here: JSON if it ends in .json, else YAML.")
@json_option("Print JSON instead of YAML on stdout.")
def infer(
    data: Path,
    rows: int,
    name: str,
    schema_version: str,
    out: Path | None,
    as_json: bool,
) -> None:
    """Infer a first data schema from the leading rows of DATA.

    Types, nullability, ranges and small value sets are those of the sample:
    review the schema, widen bounds, then commit it and bump --version on change.
    Without --out the schema is printed (YAML, or JSON with --json).
    """
    doc = infer_schema(data, rows=rows, name=name, version=schema_version)
    # The file name escaped: a CR, NEL or line separator in it would end the YAML comment
    # and start a key of the schema.
    comment = (
        f"Inferred by mlspec-attest from the first {doc['inferredFrom']['rows']} rows of "
        f"{printable(data.name)}.\nReview types, bounds and enums before validating with it."
    )
    if out is not None:
        text = (
            _document(doc) + "\n" if out.suffix.lower() == ".json" else _schema_yaml(doc, comment)
        )
        _write(out, text)
        if as_json:
            click.echo(_document(doc))
    elif as_json:
        click.echo(_document(doc))
    else:
        click.echo(_schema_yaml(doc, comment), nl=False)


# ----------------------------------------------------------------------------- validate
def _validation_text(data: Path, result: ValidationResult) -> str:
    # The schema's name and the violations (which quote values and column names) come
    # from the schema and the data.
    label = f"{result.schema_name} version {result.schema_version}"
    if result.passed:
        return printable(f"PASSED  {data} matches data schema {label} ({result.rows} rows)")
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(result.violations_by_kind.items()))
    lines = [
        f"FAILED  {data} against data schema {label}: "
        f"{result.violation_count} violations ({kinds}) in {result.rows} rows"
    ]
    shown = result.violations[:20]
    for v in shown:
        lines.append(f"  - [{v['kind']}] {v['message']}")
    if result.violation_count > len(shown):
        lines.append(f"  … {result.violation_count - len(shown)} more (see --json or --out)")
    return printable_lines(lines)


@click.command()
@click.argument("data", type=_DATA)
@file_option(
    "--schema",
    "schema_path",
    required=True,
    help="Data schema (YAML, or JSON if it ends in .json).",
)
@_out_option("Write the JSON record here (a stage product).")
@json_option("Print the JSON record on stdout.")
def validate(data: Path, schema_path: Path, out: Path | None, as_json: bool) -> None:
    """Validate DATA against a versioned data schema. Exit 0 if it passes, 1 on violations.

    Every violation is counted (the first 1000 are listed): missing or
    unexpected columns, wrong types, missing values, values out of range or
    not allowed, and a dataset listed in the schema's deprecatedDatasets.
    A deprecated schema still validates, with a warning; the record carries
    the flag so a policy can refuse to train on such data.
    """
    result = validate_dataset(data, load_data_schema(schema_path))
    record = result.to_json()
    if out is not None:
        _write(out, _document(record) + "\n")
    if result.deprecated:
        click.echo(
            printable(
                f"warning: data schema {result.schema_name} version {result.schema_version} is "
                "deprecated; data validated only against it must not be used for training"
            ),
            err=True,
        )
    if as_json:
        click.echo(_document(record))
    else:
        click.echo(_validation_text(data, result))
    deny_unless(result.passed)
