"""``mlspec-attest digest``."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="List per-file digests and the root as JSON.")
def digest(path: Path, as_json: bool) -> None:
    """Print the digest `sign` records for PATH (file sha256, or directory manifest root).

    For a directory the root is the OpenSSF model-signing digest (sha256 over the
    per-file sha256 digests in path-component order); manifest-sha256 also covers
    the file names.
    """
    from ..digest import digest_path

    result = digest_path(path)
    if as_json:
        doc: dict[str, object] = {
            "schemaVersion": "https://mlspec-attest.dev/digest/v1",
            "path": str(path),
            "kind": result.kind,
            "digest": result.digest_set(),
            "size": result.size,
        }
        if result.manifest is not None:
            doc["root"] = result.manifest.root
            doc["files"] = [
                {"path": e.path, "sha256": e.sha256, "size": e.size}
                for e in result.manifest.entries
            ]
        click.echo(json.dumps(doc, indent=2))
        return
    if result.kind == "directory":
        click.echo(
            f"sha256:{result.sha256}  {path}/  ({result.files} files, {result.size} bytes; "
            f"manifest-sha256:{result.manifest_address})"
        )
    else:
        click.echo(f"sha256:{result.sha256}  {path}")
