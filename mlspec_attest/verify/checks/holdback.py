"""Hold-back content: no stage in ``notReadBy`` read rows of the hold-back split.

The hold-back split's row digest sets (signed by the split stage) are intersected
with the row sets of every material of those stages (signed by each stage,
``details.materialRows``), in any file or format. Stages the policy orders before
the split are exempt (they read the data before it was split).

A material that is one of the split stage's own proven splits (``train.csv``,
``validation.csv``) is compared through the split stage's record instead: every
other split of that record is intersected here with the hold-back split, whatever
the policy's ``leakage`` section compares (or whether it has one), and a split that
shares more rows with the hold-back split than the tolerance (the ``leakage``
tolerance when that section governs the split stage, else 0) denies the split stage
and every ``notReadBy`` stage that read it. The overlap the record attests must be
the recomputed one. Evidence that is missing or unusable denies too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec import Struct

from mlspec_attest.evidence.digest_sets import RowDigestSet, Unusable, is_count, load_digest_set
from mlspec_attest.evidence.holdback_rows import (
    ContentFinding,
    HoldbackRows,
    holdback_sets,
    stage_findings,
)
from mlspec_attest.evidence.records import pair_key
from mlspec_attest.policy.model import Policy
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.accepted import AcceptedAttestation
from mlspec_attest.verify.checks.digests import same_content
from mlspec_attest.verify.checks.records import Chosen
from mlspec_attest.verify.report import Check, VerificationReport


class SplitOverlap(Struct, frozen=True):
    """What one other split of the split stage shares with the hold-back split."""

    role: str
    artifact: str
    shared: int  # recomputed: the most rows shared under any two projections
    attested: Any  # the signed ``overlaps`` count of the pair (unchecked type)


class Proven(Struct, frozen=True):
    """The split stage's proven splits: each one's product digest and hold-back overlap."""

    holdback: HoldbackRows
    digests: Mapping[str, Mapping[str, str]]  # role -> digest of the product it names
    overlaps: Mapping[str, SplitOverlap]  # role -> overlap (hold-back split itself absent)
    tolerance: int


def check_holdback_content(
    policy: Policy, chosen: Chosen, store: AttestationStore, report: VerificationReport
) -> None:
    rule = policy.separation
    split = chosen.get(rule.split) if rule else None
    if rule is None or split is None or rule.holdback_role not in split.statement.metadata.roles:
        return  # the separation check reports these
    stages = content_stages(policy, chosen)
    metadata = split.statement.metadata
    products = {p.name: p.digest for p in split.statement.products}
    holdback = holdback_sets(
        metadata.details.get("leakage"),
        store,
        role=rule.holdback_role,
        products=products,
        roles=metadata.roles,
    )
    if not isinstance(holdback, HoldbackRows):
        if stages:  # nothing read after the split could hold hold-back rows otherwise
            report_content(report, rule.split, holdback)
        return
    # The record is schema-checked by holdback_sets.
    record: Mapping[str, Any] = metadata.details["leakage"]
    overlaps, problems = split_overlaps(record, holdback, store)
    for problem in problems:
        report_content(report, rule.split, problem)
    proven = Proven(
        holdback,
        {
            role: products[entry["artifact"]]
            for role, entry in record["splits"].items()
            if entry["artifact"] in products
        },
        overlaps,
        holdback_tolerance(policy),
    )
    read: set[str] = set()
    for name, att in stages:
        read |= check_stage_content(name, att, proven, store, report)
    report_split_overlaps(rule.split, proven, read, report)


def holdback_tolerance(policy: Policy) -> int:
    """Rows a split may share with the hold-back split: the ``leakage`` tolerance when
    that section governs the split stage, else none."""
    rule, leakage = policy.separation, policy.leakage
    if rule is not None and leakage is not None and leakage.stage == rule.split:
        return leakage.tolerance
    return 0


def content_stages(policy: Policy, chosen: Chosen) -> list[tuple[str, AcceptedAttestation]]:
    """The chosen stages that may not read the hold-back split, by name; upstream exempt."""
    rule = policy.separation
    assert rule is not None
    banned = set(rule.not_read_by)
    upstream = policy.predecessors(rule.split) | {rule.split, rule.test}
    return [
        (name, att)
        for name, att in sorted(chosen.items())
        if (name in banned or att.statement.metadata.kind in banned) and name not in upstream
    ]


def split_sets(
    entry: Mapping[str, Any], store: AttestationStore, what: str
) -> tuple[RowDigestSet, ...] | ContentFinding:
    """A split's proof set, then its content sets, loaded by their signed addresses (a
    projection that coincides with another names the same set: loaded once)."""
    content = entry["contentSets"]
    items = [{"digestSet": entry["digestSet"], "unique": entry["unique"]}]
    items += [content[name] for name in ("all", "varying") if name in content]
    loaded: list[RowDigestSet] = []
    seen: set[tuple[str, int]] = set()
    for item in items:
        if (item["digestSet"], item["unique"]) in seen:
            continue
        seen.add((item["digestSet"], item["unique"]))
        got = load_digest_set(
            store, item["digestSet"], rows=entry["rows"], unique=item["unique"], what=what
        )
        if isinstance(got, Unusable):
            return ContentFinding(
                "evidence", f"{got.message} [{got.kind}]", got.expected, got.found, what
            )
        loaded.append(got)
    return tuple(loaded)


def split_overlaps(
    record: Mapping[str, Any], holdback: HoldbackRows, store: AttestationStore
) -> tuple[dict[str, SplitOverlap], list[ContentFinding]]:
    """Every other split's overlap with the hold-back split, recomputed from the stored
    sets; and the evidence problems: a set unusable, an attested count not recomputed."""
    overlaps: dict[str, SplitOverlap] = {}
    problems: list[ContentFinding] = []
    for role, entry in sorted(record["splits"].items()):
        if role == holdback.role:
            continue
        sets = split_sets(entry, store, f"split {role!r}")
        if isinstance(sets, ContentFinding):
            problems.append(sets)
            continue
        key = pair_key(role, holdback.role)
        proof = sets[0].intersection_count(holdback.sets[0])  # both proof sets come first
        shared = max(s.intersection_count(h) for s in sets for h in holdback.sets)
        attested = record["overlaps"].get(key)
        overlaps[role] = SplitOverlap(role, entry["artifact"], shared, attested)
        if not is_count(attested) or attested != proof:
            problems.append(
                ContentFinding(
                    "evidence",
                    f"{key}: the stored digest sets share {proof} rows, "
                    f"the split stage's record says {attested!r} [attested-count-wrong]",
                    str(proof),
                    "absent" if attested is None else repr(attested),
                )
            )
    return overlaps, problems


_SPLIT_REMEDY = (
    "hold-back rows were copied into another split: de-duplicate before splitting, "
    "re-split, and re-run every stage from split"
)


def report_split_overlaps(
    stage: str, proven: Proven, read: set[str], report: VerificationReport
) -> None:
    """The split stage put more hold-back rows into another split than the tolerance,
    and no ``notReadBy`` stage was denied for reading that split (``read``)."""
    holdback = proven.holdback
    for overlap in proven.overlaps.values():
        if overlap.shared <= proven.tolerance or overlap.role in read:
            continue
        report.fail(
            Check.HOLDBACK_READ,
            stage,
            f"split {overlap.role!r} ({overlap.artifact}) holds {overlap.shared} row(s) of the "
            f"hold-back split {holdback.artifact} (tolerance {proven.tolerance})",
            expected=f"at most {proven.tolerance} row(s) shared with the {holdback.role!r} split",
            found=f"{overlap.shared} recomputed from the stored digest sets, "
            f"{overlap.attested!r} attested",
            remedy=_SPLIT_REMEDY,
        )


def check_stage_content(
    name: str,
    att: AcceptedAttestation,
    proven: Proven,
    store: AttestationStore,
    report: VerificationReport,
) -> set[str]:
    """One ``notReadBy`` stage: its materials by their row sets, except the split stage's
    own splits, which are judged by their recomputed overlap with the hold-back split.
    Returns the roles of the splits it was denied for reading."""
    materials = {m.name: m.digest for m in att.statement.materials}
    exempt = {
        material: role
        for material, digest in materials.items()
        for role, output in sorted(proven.digests.items())
        if same_content(digest, output)
    }
    findings = stage_findings(
        att.statement.metadata.details, materials, proven.holdback, store, exempt=list(exempt)
    )
    for finding in findings:
        report_content(report, name, finding)
    denied: set[str] = set()
    for material, role in sorted(exempt.items()):
        overlap = proven.overlaps.get(role)
        if overlap is not None and overlap.shared > proven.tolerance:
            report_split_read(report, name, material, overlap, proven)
            denied.add(role)
    return denied


def report_split_read(
    report: VerificationReport, stage: str, material: str, overlap: SplitOverlap, proven: Proven
) -> None:
    holdback = proven.holdback
    report.fail(
        Check.HOLDBACK_READ,
        stage,
        f"stage read {overlap.shared} row(s) of the hold-back split {holdback.artifact} "
        f"in material {material} (the split stage's {overlap.role!r} split)",
        expected=f"at most {proven.tolerance} row(s) of the {holdback.role!r} split "
        f"({holdback.artifact}) in a split the stage reads",
        found=f"{overlap.shared} hold-back row(s) in {material}",
        remedy=_READ_REMEDY,
    )


_READ_REMEDY = (
    "hold-back data may only be read by the test stage; re-split, retrain and re-evaluate "
    "without it"
)
_EVIDENCE_REMEDY = (
    "re-sign the stage with this version of mlspec-attest, which records the row digest "
    "sets of every split and material (docs/leakage.md)"
)


def report_content(report: VerificationReport, stage: str, finding: ContentFinding) -> None:
    """Rows of the hold-back set read (``holdback-read``), or evidence that cannot tell
    (``holdback-evidence``)."""
    read = finding.kind == "rows-read"
    report.fail(
        Check.HOLDBACK_READ if read else Check.HOLDBACK_EVIDENCE,
        stage,
        finding.message,
        expected=finding.expected,
        found=finding.found,
        remedy=_READ_REMEDY if read else _EVIDENCE_REMEDY,
    )
