"""``mlspec-attest tune``: measure how this machine reads large files fastest, and remember it."""

from __future__ import annotations

from pathlib import Path

import click

from mlspec_attest.cli.options import count_option, json_option
from mlspec_attest.cli.output import echo_result
from mlspec_attest.digest import read_strategy
from mlspec_attest.errors import StoreError
from mlspec_attest.formats.fsutil import atomic_write
from mlspec_attest.formats.jsonio import pretty
from mlspec_attest.formats.limits import MiB


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the scratch file (default: the temp directory); use the disk "
    "your data lives on.",
)
@count_option("--size-mib", minimum=64, default=256, help="Scratch file size in MiB.")
@count_option("--reps", minimum=1, default=3, help="Rounds per candidate (the best is kept).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save here (default: $MLSPEC_ATTEST_READ_STRATEGY, else "
    "~/.cache/mlspec-attest/read-strategy.json).",
)
@click.option("--dry-run", is_flag=True, help="Measure and print, save nothing.")
@click.option("--show", is_flag=True, help="Print the strategy in force and why; measure nothing.")
@json_option("Print the result as JSON.")
def tune(
    directory: Path | None,
    size_mib: int,
    reps: int,
    out: Path | None,
    dry_run: bool,
    show: bool,
    as_json: bool,
) -> None:
    """Measure how the digest engine should read large files on this machine.

    Times the engine's own reader on a scratch file held in the page cache:
    read() with buffers of 256 KiB to 16 MiB against memory maps handed to the
    hash 4 to 64 MiB at a time; from which size on mapping wins; and how many
    threads hash the shards of a file. The fastest of each is saved and used by
    every later digest, sign and verify on this machine (the same machine, kernel
    and Python only: anything else falls back to the defaults). Digests never
    depend on it, only speed. Takes about 10 s.
    """
    if show:
        loaded = read_strategy.current()
        doc = {"strategy": loaded.strategy._asdict(), "source": loaded.source}
        echo_result(doc, f"{loaded.strategy.describe()}\nsource: {loaded.source}", as_json)
        return
    from mlspec_attest.digest.tuning import measure

    say = None if as_json else click.echo
    result = measure(directory, size_mib * MiB, reps, say)
    target = None if dry_run else (out or read_strategy.configured_path())
    if target is not None:
        _save(target, result.document())
    saved = f"saved to {target}" if target else "not saved"
    echo_result(
        {**result.document(), "saved": str(target) if target else None},
        f"chosen: {result.strategy.describe()}\n{saved}",
        as_json,
    )


def _save(target: Path, doc: dict[str, object]) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{target.parent}: cannot create ({exc.strerror})") from exc
    atomic_write(target, pretty(doc).encode() + b"\n")
