"""The hold-back content check: which stages read rows of the hold-back split.

The verifier's side of :mod:`mlspec_attest.evidence.rowsets` (which fingerprints the
rows a stage reads when it is signed): the hold-back split's sets are loaded by the
addresses the split stage signed, each material set of a stage that must not read the
hold-back data by the addresses that stage signed, and any shared row is a finding
naming the stage, the material and the count. Evidence that is missing, malformed, not
bound to the stage's signed materials, or unreadable is a finding too: a check that
cannot look does not pass. Only stored sets are read: the row engine is not loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from msgspec import Struct

from mlspec_attest.evidence.digest_sets import RowDigestSet, Unusable, load_digest_set
from mlspec_attest.evidence.records import LEAKAGE_SCHEMA, retired_problem, schema_problem
from mlspec_attest.formats.inputs import named
from mlspec_attest.store.ledger import AttestationStore

MATERIAL_ROWS_SCHEMA = "https://mlspec-attest.dev/material-rows/v1"
#: The ``details`` key of the record.
DETAILS_KEY = "materialRows"


class ContentFinding(Struct, frozen=True):
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


class HoldbackRows(Struct, frozen=True):
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
    "holdback_sets",
    "stage_findings",
]
