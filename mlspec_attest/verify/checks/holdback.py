"""Hold-back content: no stage in ``notReadBy`` read rows of the hold-back split.

The hold-back split's row digest sets (signed by the split stage) are intersected
with the row sets of every material of those stages (signed by each stage,
``details.materialRows``), in any file or format. Stages the policy orders before
the split are exempt (they read the data before it was split), and so are materials
that are the split stage's own products (the leakage proof governs those).
Evidence that is missing or unusable denies too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mlspec_attest.evidence.holdback_rows import (
    ContentFinding,
    HoldbackRows,
    holdback_sets,
    stage_findings,
)
from mlspec_attest.policy.model import Policy
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.accepted import AcceptedAttestation
from mlspec_attest.verify.checks.digests import same_content
from mlspec_attest.verify.checks.records import Chosen
from mlspec_attest.verify.report import Check, VerificationReport


def check_holdback_content(
    policy: Policy, chosen: Chosen, store: AttestationStore, report: VerificationReport
) -> None:
    rule = policy.separation
    split = chosen.get(rule.split) if rule else None
    if rule is None or split is None or rule.holdback_role not in split.statement.metadata.roles:
        return  # the separation check reports these
    stages = content_stages(policy, chosen)
    if not stages:
        return
    metadata = split.statement.metadata
    holdback = holdback_sets(
        metadata.details.get("leakage"),
        store,
        role=rule.holdback_role,
        products={p.name: p.digest for p in split.statement.products},
        roles=metadata.roles,
    )
    if not isinstance(holdback, HoldbackRows):
        report_content(report, rule.split, holdback)
        return
    # The splits the proof covers (the record is schema-checked by holdback_sets).
    proven = {entry["artifact"] for entry in metadata.details["leakage"]["splits"].values()}
    outputs = [p.digest for p in split.statement.products if p.name in proven]
    for name, att in stages:
        check_stage_content(name, att, holdback, outputs, store, report)


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


def check_stage_content(
    name: str,
    att: AcceptedAttestation,
    holdback: HoldbackRows,
    outputs: Sequence[Mapping[str, str]],
    store: AttestationStore,
    report: VerificationReport,
) -> None:
    materials = {m.name: m.digest for m in att.statement.materials}
    exempt = [n for n, d in materials.items() if any(same_content(d, o) for o in outputs)]
    findings = stage_findings(
        att.statement.metadata.details, materials, holdback, store, exempt=exempt
    )
    for finding in findings:
        report_content(report, name, finding)


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
