"""Leakage: the split stage's proof that its splits share no more rows than allowed.

The signed record (``details.leakage``) must cover products of the stage under their
roles; the overlaps are then recomputed from the row digest sets in the store
(:func:`mlspec_attest.evidence.overlaps.check_leakage`), never taken from the record.
"""

from __future__ import annotations

from typing import Any

from mlspec_attest.errors import MlspecError
from mlspec_attest.evidence.overlaps import check_leakage as recompute
from mlspec_attest.formats.inputs import named
from mlspec_attest.policy.model import Policy
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.accepted import AcceptedAttestation
from mlspec_attest.verify.checks.records import Chosen
from mlspec_attest.verify.report import Check, VerificationReport

_REMEDIES = {
    "overlap-exceeds-tolerance": "rows are shared between splits: de-duplicate before splitting "
    "and re-run from split",
    "attested-count-wrong": "the signed overlap counts do not match the stored digest sets; "
    "re-run the split stage",
    "digest-set-missing": "copy the store with its blobs/ folder, or re-run the split stage",
    "digest-set-corrupt": "the stored digest set is damaged; re-run the split stage",
    "canonicalization-retired": "re-run the split stage, and every stage after it, with this "
    "version of mlspec-attest (mlspec-rows/v2; docs/leakage.md, backward compatibility)",
    "record-malformed": "the signed leakage record is not a leakage/v2 document; re-run the "
    "split stage",
}


def leakage_remedy(kind: str) -> str:
    """What to do about a leakage finding of ``kind``, in the caller's terms."""
    if kind == "split-missing":
        return f"sign the split stage with {named('splits')} for every split the policy names"
    return _REMEDIES.get(kind, f"re-sign the split stage with {named('splits')}")


def check_leakage(
    policy: Policy, chosen: Chosen, store: AttestationStore, report: VerificationReport
) -> None:
    rule = policy.leakage
    if rule is None:
        return
    att = chosen.get(rule.stage)
    if att is None:
        # A section naming a stage is a demand: no proof is no pass (an optional
        # stage left out included; a required one is also `stage-missing`).
        report.fail(
            Check.LEAKAGE,
            rule.stage,
            "no verified split stage: the leakage proof cannot be checked",
            expected=f"an accepted attestation of {rule.stage!r} carrying details.leakage",
            found="none",
            remedy=f"run and sign the {rule.stage!r} stage the policy's leakage section names "
            "(or fix its failures above)",
        )
        return
    record = att.statement.metadata.details.get("leakage")
    if not isinstance(record, dict):
        report.fail(
            Check.LEAKAGE,
            rule.stage,
            "the split attestation carries no leakage proof",
            expected="details.leakage with per-split row digest sets",
            found="none",
            remedy=f"sign the split stage with {named('splits')} for each split",
        )
        return
    check_leakage_binding(att, record, rule.stage, report)
    try:
        findings = recompute(
            record,
            store,
            pairs=rule.pairs,
            tolerance=rule.tolerance,
            roles=set(att.statement.metadata.roles),
        )
    except MlspecError as exc:
        report.fail(
            Check.LEAKAGE,
            rule.stage,
            f"leakage proof unreadable: {exc.message}",
            remedy="re-sign the split stage",
        )
        return
    for f in findings:
        report.fail(
            Check.LEAKAGE,
            rule.stage,
            f"{f.message} [{f.kind}]",
            expected=f.expected,
            found=f.found,
            remedy=leakage_remedy(f.kind),
        )


def check_leakage_binding(
    att: AcceptedAttestation, record: dict[str, Any], stage: str, report: VerificationReport
) -> None:
    """Every split of the proof is a signed product of the stage, under its role."""
    products = {p.name for p in att.statement.products}
    roles = att.statement.metadata.roles
    splits = record.get("splits")
    for role, split in sorted(splits.items() if isinstance(splits, dict) else []):
        artifact = split.get("artifact") if isinstance(split, dict) else None
        if roles.get(role) != artifact:
            report.fail(
                Check.LEAKAGE,
                stage,
                f"leakage proof for {role!r} covers {artifact!r}, "
                f"but the stage's {role!r} role is {roles.get(role)!r}",
                expected=str(roles.get(role)),
                found=str(artifact),
                remedy="re-sign the split stage",
            )
        if artifact not in products:
            report.fail(
                Check.LEAKAGE,
                stage,
                f"leakage proof for {role!r} names {artifact!r}, not a product",
                expected="each proven split is a product of the split stage",
                found=str(sorted(products)),
                remedy="re-sign the split stage",
            )
