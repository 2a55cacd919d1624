"""Row fingerprints of the data a stage reads, and the hold-back content check.

Signing side (:func:`fingerprint_materials`): every material a stage reads is
opened as a dataset (:func:`mlspec_attest.digest.datasets.open_material`: by suffix, else
by content) and its rows hashed with the same engine as the split proof, into
the same content sets (every column; and without the columns constant in the
material). The sets go to the store by content address; ``details.materialRows``
records, per material, the addresses and counts, or why it holds no rows.

Verifier side (:func:`holdback_sets`, :func:`stage_findings`): the hold-back
split's sets are loaded by the addresses the split stage signed, each material
set of a stage that must not read the hold-back data by the addresses that
stage signed, and any shared row is a finding naming the stage, the material
and the count. Evidence that is missing, malformed, not bound to the stage's
signed materials, or unreadable is a finding too: a check that cannot look
does not pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlspec_attest.digest.artifact import ArtifactDigest
from mlspec_attest.digest.datasets import open_material
from mlspec_attest.errors import BadInputError
from mlspec_attest.evidence.content_sets import content_record, hash_content
from mlspec_attest.evidence.digest_sets import RowDigestSet, Unusable, load_digest_set
from mlspec_attest.evidence.records import (
    LEAKAGE_SCHEMA,
    check_own_record,
    retired_problem,
    schema_problem,
)
from mlspec_attest.formats.fsutil import artifact_name
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.rowform import CANONICALIZATION
from mlspec_attest.store.ledger import AttestationStore

MATERIAL_ROWS_SCHEMA = "https://mlspec-attest.dev/material-rows/v1"
#: The ``details`` key of the record.
DETAILS_KEY = "materialRows"


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


# --- verification ----------------------------------------------------------------
@dataclass(frozen=True)
class ContentFinding:
    """One reason a stage may have read hold-back rows.

    ``kind`` is ``rows-read`` (it did: ``count`` rows of the hold-back split are
    in ``material``) or ``evidence`` (the row evidence needed to tell is missing,
    malformed, unbound or unreadable).
    """

    kind: str
    message: str
    expected: str
    found: str
    material: str | None = None
    count: int = 0


def _evidence(
    message: str, expected: str, found: str, material: str | None = None
) -> ContentFinding:
    return ContentFinding("evidence", message, expected, found, material)


def _unusable(what: str, unusable: Unusable) -> ContentFinding:
    return _evidence(
        f"{unusable.message} [{unusable.kind}]", unusable.expected, unusable.found, what
    )


@dataclass(frozen=True)
class HoldbackRows:
    """The hold-back split's digest sets, as the split stage signed them."""

    role: str
    artifact: str
    rows: int
    sets: tuple[RowDigestSet, ...]


def _set_entries(entry: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = entry["contentSets"]
    return [content[name] for name in ("all", "varying") if name in content]


def _load_sets(
    store: AttestationStore, entries: Sequence[Mapping[str, Any]], rows: int, what: str
) -> tuple[RowDigestSet, ...] | ContentFinding:
    loaded: list[RowDigestSet] = []
    for item in entries:
        got = load_digest_set(store, item["digestSet"], rows=rows, unique=item["unique"], what=what)
        if isinstance(got, Unusable):
            return _unusable(what, got)
        loaded.append(got)
    return tuple(loaded)


def holdback_sets(
    record: Any,
    store: AttestationStore,
    *,
    role: str,
    products: Mapping[str, Mapping[str, str]],
    roles: Mapping[str, str],
) -> HoldbackRows | ContentFinding:
    """The hold-back sets of a split stage's leakage record, bound to its signed products."""
    problem = _leakage_problem(record)
    if problem:
        return _evidence(problem, f"details.leakage ({LEAKAGE_SCHEMA})", "unusable record")
    entry = record["splits"].get(role)
    if entry is None:
        return _evidence(
            f"the split stage's leakage record has no {role!r} split, so its rows cannot be "
            "recognised in what other stages read",
            f"a digest set for the {role!r} split ({named('split', role=role)})",
            "splits " + ", ".join(sorted(record["splits"])),
        )
    artifact = entry["artifact"]
    if artifact not in products or roles.get(role) != artifact:
        return _evidence(
            f"the leakage record's {role!r} split {artifact!r} is not the stage's {role!r} product",
            f"the product with role {role!r}: {roles.get(role)!r}",
            repr(artifact),
        )
    entries = [{"digestSet": entry["digestSet"], "unique": entry["unique"]}, *_set_entries(entry)]
    sets = _load_sets(store, entries, entry["rows"], f"split {role!r}")
    if isinstance(sets, ContentFinding):
        return sets
    return HoldbackRows(role, artifact, entry["rows"], sets)


def _leakage_problem(record: Any) -> str | None:
    if not isinstance(record, Mapping):
        return "the split stage carries no leakage record (details.leakage), so the hold-back rows are unknown"
    retired = retired_problem(record, LEAKAGE_SCHEMA)
    if retired:
        return retired
    problem = schema_problem("leakage-v2", record)
    return f"the leakage record does not match leakage/v2: {problem}" if problem else None


def stage_findings(
    details: Mapping[str, Any],
    materials: Mapping[str, Mapping[str, str]],
    holdback: HoldbackRows,
    store: AttestationStore,
    *,
    exempt: Sequence[str] = (),
) -> list[ContentFinding]:
    """Every finding for one stage that must not read the hold-back data.

    ``materials`` are the stage's signed materials (name -> digests);
    ``exempt`` names materials compared elsewhere (the split stage's own
    products: their overlaps are the leakage proof's, under its tolerance).
    """
    checked = {n: d for n, d in materials.items() if n not in exempt}
    if not checked:
        return []
    record: Any = details.get(DETAILS_KEY)
    problem = _record_problem(record, materials)
    if problem:
        return [problem]
    findings: list[ContentFinding] = []
    for name in sorted(checked):
        finding = _material_finding(name, record["materials"][name], holdback, store)
        if finding:
            findings.append(finding)
    return findings


def _record_problem(record: Any, materials: Mapping[str, Any]) -> ContentFinding | None:
    expected = f"details.{DETAILS_KEY} ({MATERIAL_ROWS_SCHEMA}) naming every signed material"
    if not isinstance(record, Mapping):
        return _evidence(
            "the stage records no row fingerprints of its materials, so hold-back rows in "
            "them cannot be recognised",
            expected,
            "none",
        )
    problem = schema_problem("material-rows-v1", record)
    if problem:
        return _evidence(f"the material row record is malformed: {problem}", expected, "malformed")
    named = set(record["materials"])
    if named != set(materials):
        unknown, unfingerprinted = sorted(named - set(materials)), sorted(set(materials) - named)
        return _evidence(
            "the material row record does not match the stage's signed materials"
            + (f"; names {', '.join(unknown)}, which the stage did not read" if unknown else "")
            + (f"; has no entry for {', '.join(unfingerprinted)}" if unfingerprinted else ""),
            expected,
            "materials " + (", ".join(sorted(named)) or "none"),
        )
    return None


def _material_finding(
    name: str, entry: Mapping[str, Any], holdback: HoldbackRows, store: AttestationStore
) -> ContentFinding | None:
    if entry["format"] == "none":
        return None
    if entry["format"] == "unreadable":
        return _evidence(
            f"material {name} looks like rows but could not be read when the stage was signed "
            f"({entry['reason']}), so it may hold hold-back rows",
            "a readable dataset (or no such material)",
            "unreadable",
            name,
        )
    sets = _load_sets(store, _set_entries(entry), entry["rows"], f"material {name}")
    if isinstance(sets, ContentFinding):
        return sets
    count = max(m.intersection_count(h) for m in sets for h in holdback.sets)
    if not count:
        return None
    return ContentFinding(
        "rows-read",
        f"stage read {count} row(s) of the hold-back split {holdback.artifact} in material {name}",
        f"no row of the {holdback.role!r} split ({holdback.artifact}) in any material",
        f"{count} hold-back row(s) in {name} ({entry['format']}, {entry['rows']} rows)",
        name,
        count,
    )


__all__ = [
    "DETAILS_KEY",
    "MATERIAL_ROWS_SCHEMA",
    "ContentFinding",
    "HoldbackRows",
    "fingerprint_materials",
    "holdback_sets",
    "stage_findings",
]
