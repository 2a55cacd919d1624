"""Row fingerprints of the data a stage reads (the hold-back content check's evidence).

Signing side (:func:`fingerprint_materials`): every material a stage reads is
opened as a dataset (:func:`mlspec_attest.digest.datasets.open_material`: by suffix, else
by content) and its rows hashed with the same engine as the split proof, into
the same content sets (every column; and without the columns constant in the
material). The sets go to the store by content address; ``details.materialRows``
records, per material, the addresses and counts, or why it holds no rows.

The verifier reads the stored sets in :mod:`mlspec_attest.evidence.holdback_rows`,
without the row engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from msgspec.structs import replace

from mlspec_attest.digest.artifact import ArtifactDigest
from mlspec_attest.digest.datasets import open_material
from mlspec_attest.errors import BadInputError
from mlspec_attest.evidence.content_sets import content_record, hash_content
from mlspec_attest.evidence.holdback_rows import DETAILS_KEY, MATERIAL_ROWS_SCHEMA
from mlspec_attest.evidence.records import check_own_record
from mlspec_attest.formats.fsutil import artifact_name
from mlspec_attest.formats.rowform import CANONICALIZATION


# --- signing -------------------------------------------------------------------
def fingerprint_materials(
    paths: Sequence[Path],
    base_dir: Path,
    digests: Mapping[str, ArtifactDigest] | None = None,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The ``details.materialRows`` record of a stage's materials, and the blobs it names.

    ``digests`` (by artifact name, from hashing the materials) spare hashing
    per-example files a second time.
    """
    blobs: dict[str, bytes] = {}
    materials: dict[str, Any] = {}
    for path in paths:
        name = artifact_name(path, base_dir)
        if name not in materials:
            known = _known_digests(path, (digests or {}).get(name))
            materials[name] = _material_entry(path, name, known, blobs)
    record = {
        "schemaVersion": MATERIAL_ROWS_SCHEMA,
        "canonicalization": CANONICALIZATION,
        "materials": dict(sorted(materials.items())),
    }
    check_own_record("material-rows-v1", record)
    return record, blobs


def _known_digests(path: Path, digest: ArtifactDigest | None) -> dict[str, bytes]:
    """``str(file) -> SHA-256`` of the files a default-scheme artifact digest covers."""
    if digest is None or not digest.scheme.is_default:
        return {}
    if digest.kind == "file":
        return {str(path): bytes.fromhex(digest.digest)}
    entries = digest.manifest.entries if digest.manifest is not None else ()
    return {str(path / entry.path): bytes.fromhex(entry.digest) for entry in entries}


def _material_entry(
    path: Path, name: str, known: Mapping[str, bytes], blobs: dict[str, bytes]
) -> dict[str, Any]:
    opened = open_material(path)
    if isinstance(opened, str):
        return {"format": "none", "reason": opened}
    try:
        hashed = hash_content(replace(opened, known=known))
    except BadInputError as exc:
        # Named by the artifact name: no signer-local path in a signed claim.
        return {"format": "unreadable", "reason": exc.message.replace(str(path), name)}
    return {
        "format": opened.format,
        "files": hashed.profile.files,
        "ignoredFiles": len(opened.ignored),
        "rows": hashed.profile.rows,
        "contentSets": content_record(hashed, blobs),
    }


__all__ = ["DETAILS_KEY", "MATERIAL_ROWS_SCHEMA", "fingerprint_materials"]
