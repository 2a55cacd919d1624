"""``mlspec-attest digest``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mlspec_attest.cli.options import (
    choice_option,
    digest_scheme_options,
    json_option,
    quiet_option,
    repeatable_option,
    workers_option,
)
from mlspec_attest.cli.output import echo_result
from mlspec_attest.cli.progress import progress_for
from mlspec_attest.cli.scale_options import ARTIFACT, dask_options, dask_session
from mlspec_attest.digest.artifact import ArtifactDigest, digest_path, intoto_dir_digest
from mlspec_attest.digest.scheme import DigestScheme
from mlspec_attest.errors import UsageError

DIGEST_SCHEMA = "https://mlspec-attest.dev/digest/v1"


@click.command()
@click.argument("path", type=ARTIFACT)
@digest_scheme_options(prefix="")
@choice_option(
    "--scheme",
    "layout",
    choices=["mlspec", "intoto-dir"],
    default="mlspec",
    help="intoto-dir: the in-toto `dir:` artifact hash of a directory (sha256 only).",
)
@repeatable_option(
    "--ignore",
    metavar="PATTERN",
    help="Leave out a relative path (and all below it), or a glob such as '*.tmp' (repeatable).",
)
@workers_option(
    "Hashing workers on this machine: threads, or helper processes for many files "
    "(default: one per core; for an object store URL, requests at once, default 8)."
)
@dask_options()
@quiet_option("No progress bar.")
@json_option("List per-file digests and the root as JSON.")
def digest(
    path: Path | str,
    algorithm: str,
    serialization: str,
    shard_size: int,
    layout: str,
    ignore: tuple[str, ...],
    workers: int | None,
    dask_scheduler: str | None,
    dask_workers: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Print the digest `sign` records for PATH (file sha256, or directory manifest root).

    For a directory the root is the OpenSSF model-signing digest (sha256 over the
    per-file sha256 digests in path-component order); manifest-sha256 also covers
    the file names. --serialization shards gives model-signing's "shards" root
    (files cut into --shard-size byte ranges, hashed in parallel).

    PATH may be an object store URL (s3://bucket/key, or a prefix: every object
    under it, as a directory), read streaming: the digest is the one the same
    bytes get on disk. --dask-scheduler or --dask-workers hash on a Dask cluster,
    with the same result (docs/scale.md).
    """
    if layout == "intoto-dir":
        if (algorithm, serialization) != ("sha256", "files"):
            raise UsageError("--scheme intoto-dir is sha256 over files only")
        if not isinstance(path, Path):
            raise UsageError("--scheme intoto-dir hashes a local directory, not a URL")
        _echo_intoto_dir(path, intoto_dir_digest(path, ignore=ignore, workers=workers), as_json)
        return
    scheme = DigestScheme(algorithm, serialization, shard_size)
    with dask_session(dask_scheduler, dask_workers):
        result = digest_path(
            path, ignore=ignore, scheme=scheme, workers=workers, progress=progress_for(quiet)
        )
    if as_json:
        click.echo(json.dumps(_digest_document(path, scheme, result), indent=2))
    else:
        click.echo(_digest_line(path, scheme, result))


def _echo_intoto_dir(path: Path, value: str, as_json: bool) -> None:
    doc = {
        "schemaVersion": DIGEST_SCHEMA,
        "path": str(path),
        "kind": "directory",
        "scheme": "intoto-dir",
        "digest": {"sha256": value},
    }
    echo_result(doc, f"sha256:{value}  dir:{path}", as_json)


def _digest_document(
    path: Path | str, scheme: DigestScheme, result: ArtifactDigest
) -> dict[str, object]:
    out: dict[str, object] = {
        "schemaVersion": DIGEST_SCHEMA,
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
    return out


def _digest_line(path: Path | str, scheme: DigestScheme, result: ArtifactDigest) -> str:
    key = scheme.key
    if result.kind == "directory":
        return (
            f"{key}:{result.digest}  {path}/  ({result.files} files, {result.size} bytes; "
            f"manifest-sha256:{result.manifest_address})"
        )
    if result.manifest_address is not None:
        return (
            f"{key}:{result.digest}  {path}  ({result.size} bytes; "
            f"manifest-sha256:{result.manifest_address})"
        )
    return f"{key}:{result.digest}  {path}"
