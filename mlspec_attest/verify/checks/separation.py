"""Separation: evaluation and the hold-back test are provably separate.

The hold-back split the split stage produced is the test stage's material, and no
stage the rule names in ``notReadBy`` read it (by name or content digest); test and
evaluation used the same model, different data, and the test started after
evaluation finished. The row-level check of what those stages read is
:mod:`mlspec_attest.verify.checks.holdback`.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlspec_attest.formats.inputs import named
from mlspec_attest.policy.model import Policy, SeparationRule
from mlspec_attest.verify.accepted import AcceptedAttestation, StageEvidence
from mlspec_attest.verify.checks.digests import same_content, short
from mlspec_attest.verify.checks.records import Chosen
from mlspec_attest.verify.report import Check, VerificationReport

Digest = dict[str, str]


def role_digest(att: AcceptedAttestation, role: str, side: str) -> tuple[str | None, Digest | None]:
    """The artifact name of ``role`` in the stage's record and its digest on ``side``."""
    name = att.statement.metadata.roles.get(role)
    if name is None:
        return None, None
    items = att.statement.materials if side == "materials" else att.statement.products
    found = next((dict(i.digest) for i in items if i.name == name), None)
    return name, found


def check_separation(
    policy: Policy,
    chosen: Chosen,
    report: VerificationReport,
    evidence: Mapping[str, StageEvidence],
) -> None:
    rule = policy.separation
    if rule is None:
        return
    split, evaluate, test = (
        chosen.get(rule.split),
        chosen.get(rule.evaluate),
        chosen.get(rule.test),
    )
    if split is None or test is None or evaluate is None:
        missing = [
            n
            for n, a in ((rule.split, split), (rule.evaluate, evaluate), (rule.test, test))
            if a is None
        ]
        report.fail(
            Check.HOLDBACK_NOT_TESTED,
            rule.test,
            "cannot prove evaluation/test separation",
            expected=f"verified attestations of {rule.split}, {rule.evaluate} and {rule.test}",
            found=f"missing: {', '.join(missing)}",
            remedy="fix the stage failures above",
        )
        return
    hb_name, hb_digest = role_digest(split, rule.holdback_role, "products")
    if hb_digest is None:
        report.fail(
            Check.HOLDBACK_NOT_TESTED,
            rule.split,
            f"split records no {rule.holdback_role!r} product",
            expected=f"{named('role_path', role=rule.holdback_role, path='PATH')} on a product of {rule.split}",
            found=f"roles {sorted(split.statement.metadata.roles)}",
            remedy="sign the split stage with "
            + named("role_path", role=rule.holdback_role, path="<hold-back file>"),
        )
        return
    t_digest = check_holdback_tested(rule, test, hb_name, hb_digest, report)
    check_holdback_not_read(rule, chosen, hb_name, hb_digest, report)
    check_same_model(rule, evaluate, test, report)
    check_test_after_evaluation(rule, evidence[rule.evaluate], evidence[rule.test], report)
    check_different_data(rule, evaluate, t_digest, report)


def check_holdback_tested(
    rule: SeparationRule,
    test: AcceptedAttestation,
    hb_name: str | None,
    hb_digest: Digest,
    report: VerificationReport,
) -> Digest | None:
    """The test stage consumed the hold-back split; returns what it consumed under that role."""
    t_name, t_digest = role_digest(test, rule.holdback_role, "materials")
    if t_digest != hb_digest:
        report.fail(
            Check.HOLDBACK_NOT_TESTED,
            rule.test,
            "test did not consume the hold-back split produced by split",
            expected=f"material with role {rule.holdback_role!r} = {hb_name} ({short(hb_digest)})",
            found=f"{t_name or 'no such role'} ({short(t_digest)})",
            remedy=f"run {rule.test} on exactly the hold-back file {rule.split} produced, with "
            + named("role_path", role=rule.holdback_role, path="…"),
        )
    return t_digest


def check_holdback_not_read(
    rule: SeparationRule,
    chosen: Chosen,
    hb_name: str | None,
    hb_digest: Digest,
    report: VerificationReport,
) -> None:
    """No stage (or stage kind) in ``notReadBy`` but the test read the hold-back file."""
    banned = set(rule.not_read_by)
    for name, att in chosen.items():
        if name == rule.test or not (name in banned or att.statement.metadata.kind in banned):
            continue
        for m in att.statement.materials:
            if m.name == hb_name or same_content(m.digest, hb_digest):
                report.fail(
                    Check.HOLDBACK_READ,
                    name,
                    f"stage read the hold-back data ({m.name})",
                    expected=f"no material equal to {hb_name} ({short(hb_digest)})",
                    found=f"material {m.name} ({short(m.digest)})",
                    remedy="hold-back data may only be read by the test stage; re-split and retrain",
                )


def check_same_model(
    rule: SeparationRule,
    evaluate: AcceptedAttestation,
    test: AcceptedAttestation,
    report: VerificationReport,
) -> None:
    _, test_model = role_digest(test, rule.model_role, "materials")
    _, eval_model = role_digest(evaluate, rule.model_role, "materials")
    if test_model is None or eval_model is None or test_model != eval_model:
        report.fail(
            Check.TEST_MODEL,
            rule.test,
            "test and evaluation did not use the same model",
            expected=f"{rule.model_role!r} material of {rule.evaluate}: {short(eval_model)}",
            found=f"{rule.model_role!r} material of {rule.test}: {short(test_model)}",
            remedy=f"record the model with {named('role_path', role=rule.model_role, path='…')} "
            "in both stages and test the evaluated model",
        )


def check_test_after_evaluation(
    rule: SeparationRule,
    evaluate: StageEvidence,
    test: StageEvidence,
    report: VerificationReport,
) -> None:
    """The earliest start of the test group is not before the latest finish of the
    evaluate group: every agreeing attestation counts, so no digest order decides."""
    first = min(test.attestations, key=lambda a: (a.started, a.payload_digest))
    last = max(evaluate.attestations, key=lambda a: (a.finished, a.payload_digest))
    if first.started < last.finished:
        report.fail(
            Check.TEST_ORDER,
            rule.test,
            f"test started before {rule.evaluate} finished",
            expected=f"start at or after {last.statement.metadata.finished_on}",
            found=f"started {first.statement.metadata.started_on}",
            remedy="run the hold-back test only after evaluation is complete",
        )


def check_different_data(
    rule: SeparationRule,
    evaluate: AcceptedAttestation,
    t_digest: Digest | None,
    report: VerificationReport,
) -> None:
    _, eval_data = role_digest(evaluate, rule.validation_role, "materials")
    if eval_data is not None and t_digest is not None and eval_data == t_digest:
        report.fail(
            Check.TEST_DATA_REUSED,
            rule.test,
            "test used the same data as evaluation",
            expected="hold-back data different from the evaluation data",
            found=f"both {short(t_digest)}",
            remedy="evaluate on the validation split, test on the hold-back split",
        )
