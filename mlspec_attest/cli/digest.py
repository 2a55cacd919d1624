"""``mlspec-attest digest``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mlspec_attest.cli.options import digest_scheme_options


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@digest_scheme_options(prefix="")
@click.option(
    "--scheme",
    "layout",
    type=click.Choice(["mlspec", "intoto-dir"]),
    default="mlspec",
    show_default=True,
    help="intoto-dir: the in-toto `dir:` artifact hash of a directory (sha256 only).",
)
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="PATTERN",
    help="Leave out a relative path (and all below it), or a glob such as '*.tmp' (repeatable).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Hashing workers: threads, or helper processes for many files (default: one per core).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="List per-file digests and the root as JSON.")
def digest(
    path: Path,
    algorithm: str,
    serialization: str,
    shard_size: int,
    layout: str,
    ignore: tuple[str, ...],
    workers: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Print the digest `sign` records for PATH (file sha256, or directory manifest root).

    For a directory the root is the OpenSSF model-signing digest (sha256 over the
    per-file sha256 digests in path-component order); manifest-sha256 also covers
    the file names. --serialization shards gives model-signing's "shards" root
    (files cut into --shard-size byte ranges, hashed in parallel).
    """
    from mlspec_attest.cli.progress import progress_for
    from mlspec_attest.digest.manifest import DigestScheme, digest_path, intoto_dir_digest
    from mlspec_attest.errors import UsageError

    if layout == "intoto-dir":
        if (algorithm, serialization) != ("sha256", "files"):
            raise UsageError("--scheme intoto-dir is sha256 over files only")
        value = intoto_dir_digest(path, ignore=ignore, workers=workers)
        if as_json:
            doc = {
                "schemaVersion": "https://mlspec-attest.dev/digest/v1",
                "path": str(path),
                "kind": "directory",
                "scheme": "intoto-dir",
                "digest": {"sha256": value},
            }
            click.echo(json.dumps(doc, indent=2))
        else:
            click.echo(f"sha256:{value}  dir:{path}")
        return

    scheme = DigestScheme(algorithm, serialization, shard_size)
    result = digest_path(
        path, ignore=ignore, scheme=scheme, workers=workers, progress=progress_for(quiet)
    )
    key = scheme.key
    if as_json:
        out: dict[str, object] = {
            "schemaVersion": "https://mlspec-attest.dev/digest/v1",
            "path": str(path),
            "kind": result.kind,
            "digest": result.digest_set(),
            "size": result.size,
        }
        if result.manifest is not None:
            out["root"] = result.manifest.root
            out["files"] = result.manifest.to_json()["files"]
            if not scheme.is_default:
                out["algorithm"] = scheme.algorithm
                out["serialization"] = result.manifest.to_json()["serialization"]
        click.echo(json.dumps(out, indent=2))
        return
    if result.kind == "directory":
        click.echo(
            f"{key}:{result.digest}  {path}/  ({result.files} files, {result.size} bytes; "
            f"manifest-sha256:{result.manifest_address})"
        )
    elif result.manifest_address is not None:
        click.echo(
            f"{key}:{result.digest}  {path}  ({result.size} bytes; "
            f"manifest-sha256:{result.manifest_address})"
        )
    else:
        click.echo(f"{key}:{result.digest}  {path}")
