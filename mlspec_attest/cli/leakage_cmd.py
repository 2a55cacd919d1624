"""``mlspec-attest leakage check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .options import split_pairs

LEAKAGE_CHECK_SCHEMA = "https://mlspec-attest.dev/leakage-check/v1"
# Kept literal so that `--help` does not import the row readers (see rows.FORMATS).
FORMAT_CHOICES = ("auto", "csv", "tsv", "jsonl", "parquet", "files")


@click.group()
def leakage() -> None:
    """Row-level leakage between dataset splits (the split stage's overlap proof).

    \b
    Rows are canonicalized (mlspec-rows/v1: column order, surrounding whitespace
    and number spelling do not matter) and hashed; two splits leak when they
    share a row digest. Near-duplicates are not caught. See docs/leakage.md.
    """


@leakage.command("check")
@click.argument("splits", nargs=-1, required=True, metavar="SPLIT=PATH...")
@click.option(
    "--exclude-column",
    "exclude_columns",
    multiple=True,
    metavar="NAME",
    help="Leave a column out of every row, e.g. a row id that makes each row unique (repeatable).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMAT_CHOICES),
    default="auto",
    show_default=True,
    help="How to read the splits; auto = by file suffix, per-file digests for directories.",
)
@click.option(
    "--tolerance",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Overlapping rows allowed per pair of splits.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one versioned JSON document.")
def check(
    splits: tuple[str, ...],
    exclude_columns: tuple[str, ...],
    fmt: str,
    tolerance: int,
    as_json: bool,
) -> None:
    """Count rows shared by each pair of local splits (exit 0 none, 1 overlap, 3 bad input).

    \b
    Example:
      mlspec-attest leakage check train=train.csv holdback=holdback.csv --exclude-column id

    Nothing is stored. The split stage's attestation records the same numbers
    (details.leakage), which `verify` recomputes from the stored digest sets.
    """
    from itertools import combinations

    from ..errors import ExitCode, UsageError
    from ..leakage import pair_key, row_digests
    from ..rows import CANONICALIZATION, resolve_format

    paths = {role: Path(p) for role, p in split_pairs(splits, "SPLIT=PATH").items()}
    if len(paths) < 2:
        raise UsageError("give at least two splits as SPLIT=PATH", remedy="see --help")
    sets = {}
    formats = {}
    for role, path in paths.items():
        formats[role] = resolve_format(path, fmt)
        sets[role] = row_digests(path, fmt=formats[role], exclude_columns=exclude_columns)
    overlaps = {
        pair_key(a, b): sets[a].intersection_count(sets[b]) for a, b in combinations(paths, 2)
    }
    exceeding = sorted(k for k, n in overlaps.items() if n > tolerance)
    if as_json:
        doc: dict[str, Any] = {
            "schemaVersion": LEAKAGE_CHECK_SCHEMA,
            "result": "FAILED" if exceeding else "PASSED",
            "canonicalization": CANONICALIZATION,
            "excludeColumns": sorted({c.strip() for c in exclude_columns}),
            "tolerance": tolerance,
            "splits": {
                role: {
                    "path": str(paths[role]),
                    "format": formats[role],
                    "rows": s.rows,
                    "unique": s.unique,
                    "duplicatesWithin": s.rows - s.unique,
                }
                for role, s in sets.items()
            },
            "overlaps": dict(sorted(overlaps.items())),
            "exceedingTolerance": exceeding,
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        width = max(len(r) for r in paths)
        click.echo(f"{'split':<{width}}  {'rows':>10}  {'unique':>10}  {'dup-within':>10}  path")
        for role, s in sets.items():
            click.echo(
                f"{role:<{width}}  {s.rows:>10}  {s.unique:>10}  {s.rows - s.unique:>10}  "
                f"{paths[role]} ({formats[role]})"
            )
        click.echo("rows in both splits:")
        key_width = max(len(k) for k in overlaps)
        for key, count in sorted(overlaps.items()):
            verdict = "LEAK" if count > tolerance else "ok"
            click.echo(f"  {key:<{key_width}}  {count:>10}  {verdict}")
        excluded = ", ".join(sorted({c.strip() for c in exclude_columns})) or "none"
        summary = (
            f"FAILED: {len(exceeding)} pair(s) over tolerance {tolerance}"
            if exceeding
            else f"PASSED: no pair over tolerance {tolerance}"
        )
        click.echo(f"{summary} ({CANONICALIZATION}; excluded columns: {excluded})")
    if exceeding:
        raise SystemExit(ExitCode.DENIED)
