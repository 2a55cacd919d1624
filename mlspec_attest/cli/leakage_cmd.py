"""``mlspec-attest leakage check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mlspec_attest.cli.options import (
    choice_option,
    count_option,
    json_option,
    repeatable_option,
    split_pairs,
)
from mlspec_attest.cli.output import deny_unless
from mlspec_attest.cli.scale_options import dask_options, dask_session
from mlspec_attest.digest.datasets import FORMATS
from mlspec_attest.errors import UsageError
from mlspec_attest.evidence.leakage import prove_splits
from mlspec_attest.formats.printable import printable_lines

LEAKAGE_CHECK_SCHEMA = "https://mlspec-attest.dev/leakage-check/v1"


@click.group()
def leakage() -> None:
    """Row-level leakage between dataset splits (the split stage's overlap proof).

    \b
    Rows are canonicalized (mlspec-rows/v2: format, compression, column order,
    header case, surrounding whitespace, number spelling, Unicode normalization
    and invisible characters do not matter) and hashed over the columns all
    splits share; two splits leak when they share a row digest. Near-duplicates
    are not caught. See docs/leakage.md.
    """


@leakage.command("check")
@click.argument("splits", nargs=-1, required=True, metavar="SPLIT=PATH...")
@repeatable_option(
    "--exclude-column",
    "exclude_columns",
    metavar="NAME",
    help="Leave a column out of every row, e.g. a row id that makes each row unique (repeatable).",
)
@choice_option(
    "--format",
    "fmt",
    choices=FORMATS,
    default="auto",
    help="How to read the splits; auto = by file suffix, directories of shards as rows, "
    "directories of images (and other per-example files) as per-file digests.",
)
@count_option(
    "--tolerance", minimum=0, default=0, help="Overlapping rows allowed per pair of splits."
)
@dask_options()
@json_option("Print one versioned JSON document.")
def check(
    splits: tuple[str, ...],
    exclude_columns: tuple[str, ...],
    fmt: str,
    tolerance: int,
    dask_scheduler: str | None,
    dask_workers: int | None,
    as_json: bool,
) -> None:
    """Count rows shared by each pair of local splits (exit 0 none, 1 overlap, 3 bad input).

    \b
    Example:
      mlspec-attest leakage check train=train.csv holdback=holdback.csv --exclude-column id

    Nothing is stored. The split stage's attestation records the same numbers
    (details.leakage), which `verify` recomputes from the stored digest sets.
    With --dask-scheduler or --dask-workers, the shards of directory splits are
    read by Dask workers, with the same result (docs/scale.md).
    """
    paths = {role: Path(p) for role, p in split_pairs(splits, "SPLIT=PATH").items()}
    if len(paths) < 2:
        raise UsageError("give at least two splits as SPLIT=PATH", remedy="see --help")
    with dask_session(dask_scheduler, dask_workers):  # shards of a split read by its workers
        record = prove_splits(paths, exclude_columns=exclude_columns, fmt=fmt).record
    overlaps: dict[str, int] = record["overlaps"]
    exceeding = sorted(k for k, n in overlaps.items() if n > tolerance)
    if as_json:
        click.echo(json.dumps(_document(record, paths, tolerance, exceeding), indent=2))
    else:
        _print_table(record, paths, tolerance, exceeding)
    deny_unless(not exceeding)


def _document(
    record: dict[str, Any], paths: dict[str, Path], tolerance: int, exceeding: list[str]
) -> dict[str, Any]:
    return {
        "schemaVersion": LEAKAGE_CHECK_SCHEMA,
        "result": "FAILED" if exceeding else "PASSED",
        "canonicalization": record["canonicalization"],
        "excludeColumns": record["excludeColumns"],
        "columns": record["columns"],
        "tolerance": tolerance,
        "splits": {
            role: {
                "path": str(paths[role]),
                "format": entry["format"],
                "files": entry["files"],
                "rows": entry["rows"],
                "unique": entry["unique"],
                "duplicatesWithin": entry["duplicatesWithin"],
                "droppedColumns": entry["droppedColumns"],
            }
            for role, entry in record["splits"].items()
        },
        "overlaps": record["overlaps"],
        "exceedingTolerance": exceeding,
    }


def _print_table(
    record: dict[str, Any], paths: dict[str, Path], tolerance: int, exceeding: list[str]
) -> None:
    splits: dict[str, Any] = record["splits"]
    width = max(len(r) for r in splits)
    lines = [f"{'split':<{width}}  {'rows':>10}  {'unique':>10}  {'dup-within':>10}  path"]
    for role, entry in splits.items():
        lines.append(
            f"{role:<{width}}  {entry['rows']:>10}  {entry['unique']:>10}  "
            f"{entry['duplicatesWithin']:>10}  {paths[role]} ({entry['format']})"
        )
    dropped = sorted(
        {f"{n} ({why})" for e in splits.values() for n, why in e["droppedColumns"].items()}
    )
    if dropped:
        lines.append("columns left out: " + ", ".join(dropped))
    lines.append("rows in both splits:")
    overlaps: dict[str, int] = record["overlaps"]
    key_width = max(len(k) for k in overlaps)
    for key, count in overlaps.items():
        verdict = "LEAK" if count > tolerance else "ok"
        lines.append(f"  {key:<{key_width}}  {count:>10}  {verdict}")
    excluded = ", ".join(record["excludeColumns"]) or "none"
    summary = (
        f"FAILED: {len(exceeding)} pair(s) over tolerance {tolerance}"
        if exceeding
        else f"PASSED: no pair over tolerance {tolerance}"
    )
    lines.append(f"{summary} ({record['canonicalization']}; excluded columns: {excluded})")
    # Column names come from the data, paths from its folders: no character of theirs
    # breaks or reorders a line.
    click.echo(printable_lines(lines))
