"""What ``sign`` records in ``details`` besides what the stage supplies.

After the stage's command has run: its metrics file, its ``--detail`` files and
evidence producers, its splits and conversions as products. Once the products
are hashed: the conversions' digests, the objectives document (kept in the
store), the leakage proof of the splits, and the materials' row fingerprints.
Computed evidence can never be supplied (:func:`set_computed`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlspec_attest import evidence
from mlspec_attest.attestation.artifacts import conversion_sha256, local_paths
from mlspec_attest.attestation.record import StageRecord
from mlspec_attest.digest.artifact import ArtifactDigest
from mlspec_attest.errors import UsageError
from mlspec_attest.evidence.metrics_file import read_metrics_document
from mlspec_attest.formats.fsutil import artifact_name
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.formats.limits import MAX_DSSE_PAYLOAD_BYTES
from mlspec_attest.store.ledger import AttestationStore


def collect_outputs(record: StageRecord) -> None:
    """Fold what the stage's command left behind into ``record`` (after it ran)."""
    if record.metrics_file is not None:
        # Read after the command: the command is usually what writes it.
        doc = read_metrics_document(record.metrics_file)
        record.metrics = {**doc.metrics, **record.metrics}
        record.slices = {**doc.slices, **record.slices}
        if doc.intervals:
            record.details.setdefault("confidenceIntervals", doc.intervals)
        if doc.omitted:
            record.details.setdefault("omittedMetrics", doc.omitted)
    for role, path in record.splits.items():
        # Each split is a product with its role; the leakage proof covers them.
        if path not in record.products:
            record.products.append(path)
        record.roles.setdefault(role, path)
    for path in record.conversions.values():
        # A conversion inside a directory product is covered by that product's
        # manifest; only a conversion written elsewhere becomes a product itself.
        inside = any(
            p.is_dir() and Path(os.path.abspath(path)).is_relative_to(os.path.abspath(p))
            for p in local_paths(record.products)
        )
        if not inside and path not in record.products:
            record.products.append(path)
    for name, path in record.detail_files.items():
        record.details[name] = load_file(
            path,
            what=named("detail", name=name, path=path),
            max_bytes=MAX_DSSE_PAYLOAD_BYTES,
            kind="a detail record (it is signed inside the statement)",
        )
    for name, produce in record.evidence:
        record.details[name] = produce()
    record.details["predecessors"] = record.predecessors


def add_computed(
    record: StageRecord,
    *,
    objectives_stage: bool,
    base: Path,
    store: AttestationStore,
    blobs: list[bytes],
    product_digests: Mapping[str, ArtifactDigest],
    material_rows: dict[str, Any] | None,
) -> None:
    """The evidence computed from the hashed products and materials, into ``record.details``."""
    if record.conversions:
        record.details["conversions"] = [
            {
                "format": fmt,
                "artifact": artifact_name(path, base),
                "sha256": conversion_sha256(product_digests, path, base),
            }
            for fmt, path in sorted(record.conversions.items())
        ]
    if objectives_stage:
        record.details.update(store_objectives(local_paths(record.products), base, store))
    if record.splits:
        set_computed(record.details, "leakage", split_proof(record, base, blobs))
    if material_rows is not None:
        set_computed(record.details, "materialRows", material_rows)


def store_objectives(
    products: Sequence[Path], base: Path, store: AttestationStore
) -> dict[str, Any]:
    """Validate the objectives document among ``products`` and keep its bytes in the store.

    The verifier reads the document back by the digest the signature covers, so
    the criteria it evaluates are exactly the ones signed here.
    """
    # Start-up: only an objectives stage pays for the policy package and the YAML parser.
    from mlspec_attest.policy import objectives as documents

    found: dict[str, Any] = {}
    for path in products:
        if path.is_dir() or path.suffix not in (".yaml", ".yml", ".json"):
            continue
        data = path.read_bytes()
        if not documents.looks_like_objectives(data):
            continue
        if found:
            raise UsageError("an objectives stage may carry only one objectives document")
        objectives = documents.load_objectives_text(data, what=str(path))
        found = {
            "objectives": {
                "artifact": artifact_name(path, base),
                "sha256": store.put_blob(data),
                "name": objectives.name,
                "version": objectives.version,
                "criteria": len(objectives.criteria),
            }
        }
    if not found:
        raise UsageError(
            "an objectives stage must produce an objectives document (kind: Objectives)",
            remedy="see docs/objectives.md; `mlspec-attest objectives init` prints a template",
        )
    return found


def split_proof(record: StageRecord, base: Path, blobs: list[bytes]) -> dict[str, Any]:
    """The leakage proof of ``--split``s (docs/leakage.md); its digest sets join ``blobs``."""
    proof = evidence.prove_splits(
        record.splits, base_dir=base, exclude_columns=record.split_exclude_columns
    )
    blobs.extend(proof.blobs.values())
    return proof.record


def material_rows(
    paths: Sequence[Path],
    base: Path,
    blobs: list[bytes],
    digests: Mapping[str, ArtifactDigest],
) -> dict[str, Any] | None:
    """Row fingerprints of the materials (``details.materialRows``); their sets join ``blobs``.

    They let the verifier recognise hold-back rows in whatever a stage read,
    under any name, format or compression (docs/leakage.md).
    """
    if not paths:
        return None
    found, material_blobs = evidence.fingerprint_materials(paths, base, digests)
    blobs.extend(material_blobs.values())
    return found


def set_computed(details: dict[str, Any], key: str, value: Any) -> None:
    """Put evidence ``sign`` computes into ``details``; a supplied copy is refused."""
    if key in details:
        raise UsageError(
            f"details.{key} is computed by sign and cannot be supplied ({named('detail_any')})",
            remedy=f"remove the {key!r} detail; sign records it from the files themselves",
        )
    details[key] = value
