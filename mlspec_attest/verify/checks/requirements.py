"""Requirements: the policy's CEL expressions over the stage records, each must hold."""

from __future__ import annotations

from mlspec_attest.errors import MlspecError
from mlspec_attest.policy.celexpr import ExpressionError, compile_expression
from mlspec_attest.policy.model import Policy, Requirement
from mlspec_attest.verify.checks.records import Chosen, stage_records
from mlspec_attest.verify.report import Check, VerificationReport


def check_requirements(policy: Policy, chosen: Chosen, report: VerificationReport) -> None:
    if not policy.requirements:
        return
    activation = {"stages": stage_records(chosen)}
    for req in policy.requirements:
        try:
            ok = compile_expression(req.expr).evaluate(activation)
        except (ExpressionError, MlspecError) as exc:
            _unmet(req, f"cannot evaluate: {exc}", report)
            continue
        if not ok:
            _unmet(req, "expression is false", report)


def _unmet(req: Requirement, why: str, report: VerificationReport) -> None:
    report.fail(
        Check.REQUIREMENT,
        None,
        f"requirement {req.id!r} not met: {why}",
        expected=req.expr,
        found=why,
        remedy=req.description or "see the policy's requirements",
    )
