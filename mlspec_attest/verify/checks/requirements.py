"""Requirements: the policy's CEL expressions over the stage records, each must hold."""

from __future__ import annotations

from mlspec_attest.errors import MlspecError
from mlspec_attest.policy.celexpr import ExpressionError, compile_expression
from mlspec_attest.policy.model import Policy
from mlspec_attest.verify.checks.records import Chosen, stage_records
from mlspec_attest.verify.report import Check, VerificationReport


def check_requirements(policy: Policy, chosen: Chosen, report: VerificationReport) -> None:
    if not policy.requirements:
        return
    activation = {"stages": stage_records(chosen)}
    for req in policy.requirements:
        try:
            ok = compile_expression(req.expr).evaluate(activation)
            message = "" if ok else "expression is false"
        except (ExpressionError, MlspecError) as exc:
            ok, message = False, f"cannot evaluate: {exc}"
        if not ok:
            report.fail(
                Check.REQUIREMENT,
                None,
                f"requirement {req.id!r} not met: {message}",
                expected=req.expr,
                found=message,
                remedy=req.description or "see the policy's requirements",
            )
