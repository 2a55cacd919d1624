"""Requirements: what the policy demands of every run, each judged and reported.

A CEL requirement is evaluated over the stage records; a typed one (a bound on one
stage's attested metrics) by the evaluator the objectives use
(:func:`~mlspec_attest.policy.criteria.evaluate_criterion`). Every result goes to the
report with the values it observed; each one that does not hold is a failure that shows
them, the bound and the evidence.
"""

from __future__ import annotations

from typing import Any

from mlspec_attest.errors import MlspecError
from mlspec_attest.policy.celexpr import Activation, ExpressionError, compile_expression
from mlspec_attest.policy.criteria import (
    CriterionResult,
    Evidence,
    criterion_kind,
    evaluate_criterion,
    terms_seen,
)
from mlspec_attest.policy.model import Policy, Requirement
from mlspec_attest.verify.accepted import Baseline
from mlspec_attest.verify.checks.records import Chosen, stage_records
from mlspec_attest.verify.report import Check, VerificationReport


def check_requirements(
    policy: Policy, chosen: Chosen, report: VerificationReport, baseline: Baseline | None = None
) -> None:
    if not policy.requirements:
        return
    records = stage_records(chosen)
    evidence = {
        name: Evidence(
            name, a.statement.metadata.metrics, a.statement.metadata.slices, a.payload_digest
        )
        for name, a in chosen.items()
    }
    stages = Activation({"stages": records})  # converted to CEL values once, for all
    for req in policy.requirements:
        if req.criterion is not None:
            result = _typed(req.criterion, evidence, records, baseline)
        else:
            result = _cel(req, stages)
        report.requirements.append(result)
        if not result.passed:
            _unmet(req, result, report)


def _typed(
    criterion: Any,
    evidence: dict[str, Evidence],
    records: dict[str, Any],
    baseline: Baseline | None,
) -> CriterionResult:
    same_stage = baseline is not None and baseline.stage == criterion["stage"]
    metrics = baseline.metrics if baseline is not None and same_stage else None
    return evaluate_criterion(criterion, evidence, metrics, records)


def _cel(req: Requirement, activation: Activation) -> CriterionResult:
    try:
        ok = compile_expression(req.expr).evaluate(activation)
    except (ExpressionError, MlspecError) as exc:
        why = f"cannot evaluate: {exc}" + terms_seen(req.expr, activation)
        return CriterionResult(req.id, "expr", "", False, why, req.expr, "expression is true")
    message = "met" if ok else "expression is false" + terms_seen(req.expr, activation)
    return CriterionResult(req.id, "expr", "", ok, message, req.expr, "expression is true")


def _unmet(req: Requirement, result: CriterionResult, report: VerificationReport) -> None:
    observed = ", ".join(f"{k}={v:.6g}" for k, v in result.observed.items())
    kind = f" ({criterion_kind(req.criterion)})" if req.criterion is not None else ""
    report.fail(
        Check.REQUIREMENT,
        result.stage or None,
        f"requirement {req.id!r}{kind} not met: {result.message}",
        expected=result.threshold if req.criterion is not None else req.expr,
        found=observed or result.message,
        remedy=req.description or "see the policy's requirements",
    )
