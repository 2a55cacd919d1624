"""What a verification checked, with its evidence, and which failures caused the others.

A PASS that does not say what was checked proves nothing to an auditor. After the
checks have run, :func:`checks_ran` lists every check the policy asked for, in the
order ``verify`` runs them, each with its result (``pass``, ``fail``, or ``not-run`` when
the stage it reads was not verified) and the evidence it judged: the owner keys and
digest of the policy; per stage the signers against the threshold and the attestations
read; the ordering edges; the artifact rules; each objective and requirement with the
values observed and the bound; separation; the leakage overlaps recomputed against the
tolerance; data validation; and the digest of every deploy artifact.

:meth:`VerificationReport.classified_failures
<mlspec_attest.verify.report.VerificationReport.classified_failures>` marks each failure a *root cause* or a *consequence*: an
attestation refused at admission (bad signature, another policy, another run ...) is a
root cause; that its stage is then missing, and that the rules, ML checks and deploy
artifacts reading that stage fail, are its consequences. Reports put root causes first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from msgspec import Struct, field

from mlspec_attest.evidence.records import pair_key
from mlspec_attest.policy.model import Policy, StagePolicy
from mlspec_attest.verify.accepted import AcceptedAttestation
from mlspec_attest.verify.report import ADMISSION, STAGE_LEVEL, Check, VerificationReport

_SEPARATION: Final = (
    Check.HOLDBACK_NOT_TESTED, Check.HOLDBACK_READ, Check.HOLDBACK_EVIDENCE,
    Check.TEST_MODEL, Check.TEST_ORDER, Check.TEST_DATA_REUSED,
)  # fmt: skip


class CheckRun(Struct, frozen=True):
    """One check that ran (or could not), its result and its evidence."""

    check: str
    stage: str | None
    result: str  # "pass" | "fail" | "not-run"
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "stage": self.stage,
            "result": self.result,
            "evidence": dict(self.evidence),
        }


class _Ledger:
    def __init__(self, report: VerificationReport, chosen: Mapping[str, Any]):
        self.report, self.chosen = report, chosen
        self.runs: list[CheckRun] = []

    def add(
        self, name: str, stage: str | None, checks: tuple[Check, ...], evidence: dict[str, Any]
    ) -> None:
        failed = any(
            f.check in checks and (stage is None or f.stage == stage) for f in self.report.failures
        )
        self.runs.append(CheckRun(name, stage, "fail" if failed else "pass", evidence))

    def needs(self, name: str, stage: str, evidence: dict[str, Any]) -> bool:
        """Whether ``stage`` was verified; if not, the check is listed as not run."""
        if stage in self.chosen:
            return True
        evidence = {**evidence, "why": f"stage {stage!r} was not verified"}
        self.runs.append(CheckRun(name, stage, "not-run", evidence))
        return False


def checks_ran(
    policy: Policy,
    report: VerificationReport,
    chosen: Mapping[str, AcceptedAttestation],
    owner_keys: tuple[str, ...],
) -> list[CheckRun]:
    """Every check the policy asked for, in ``verify``'s order (see the module docstring)."""
    ledger = _Ledger(report, chosen)
    ledger.add("policy-signature", None, (Check.POLICY_SIGNATURE,),
               {"digest": report.policy_digest, "ownerKeys": list(owner_keys)})  # fmt: skip
    ledger.add(
        "policy-expired", None, (Check.POLICY_EXPIRED,), {"expires": policy.to_json()["expires"]}
    )
    for stage in policy.stages:
        _stage(ledger, stage)
    edges = {s.name: list(s.after) for s in policy.stages if s.after}
    ledger.add("ordering", None, (Check.ORDERING,), {"after": edges})
    _ml(ledger, policy, chosen)
    for role, spec in sorted(policy.deploy.items()):
        summary = next((a for a in report.artifacts if a.role == role), None)
        evidence = summary.to_json() if summary is not None else {"role": role}
        ledger.add(
            "deploy-artifact",
            spec.stage,
            (Check.ARTIFACT_MISSING, Check.ARTIFACT_MISMATCH),
            evidence,
        )
    return ledger.runs


def _stage(ledger: _Ledger, stage: StagePolicy) -> None:
    summary = next((s for s in ledger.report.stages if s.name == stage.name), None)
    evidence = {
        "kind": stage.kind.value,
        "required": stage.required,
        "threshold": f"{stage.threshold} of {len(stage.functionaries)}",
        "functionaries": list(stage.functionaries),
        "signedBy": list(summary.signers) if summary else [],
        "attestations": [{"file": f, "digest": d} for f, d in summary.inputs] if summary else [],
    }
    checks = (*ADMISSION, *STAGE_LEVEL)
    if stage.required or stage.name in ledger.chosen:
        ledger.add("stage", stage.name, tuple(checks), evidence)
    else:
        ledger.runs.append(
            CheckRun("stage", stage.name, "not-run", {**evidence, "why": "optional, not run"})
        )
    rules = {
        "materials": [str(r) for r in stage.material_rules],
        "products": [str(r) for r in stage.product_rules],
    }
    if (rules["materials"] or rules["products"]) and ledger.needs(
        "artifact-rules", stage.name, rules
    ):
        ledger.add("artifact-rules", stage.name, (Check.ARTIFACT_RULE,), rules)


def _ml(ledger: _Ledger, policy: Policy, chosen: Mapping[str, AcceptedAttestation]) -> None:
    report = ledger.report
    for result in report.objectives:
        ledger.runs.append(_criterion("objective", result))
    for result in report.requirements:
        ledger.runs.append(_criterion("requirement", result))
    if policy.separation is not None:
        sep = policy.separation
        evidence: dict[str, Any] = {"split": sep.split, "evaluate": sep.evaluate, "test": sep.test,
                    "notReadBy": list(sep.not_read_by), "holdbackRole": sep.holdback_role}  # fmt: skip
        ledger.add("separation", None, _SEPARATION, evidence)
    if policy.leakage is not None and ledger.needs("leakage", policy.leakage.stage, {}):
        ledger.add("leakage", policy.leakage.stage, (Check.LEAKAGE,), _leakage(policy, chosen))
    if policy.data_validation is not None:
        rule = policy.data_validation
        other: dict[str, Any] = {"schema": rule.schema, "version": rule.version,
                    "forbidDeprecated": rule.forbid_deprecated, "trainStage": rule.train_stage}  # fmt: skip
        if ledger.needs("data-validation", rule.stage, other):
            checks = (Check.DATA_VALIDATION, Check.DEPRECATED_DATA)
            ledger.add("data-validation", rule.stage, checks, other)


def _criterion(name: str, result: Any) -> CheckRun:
    evidence = {"id": result.id, "kind": result.kind, "bound": result.threshold,
                "observed": dict(result.observed), "message": result.message,
                "evidence": result.evidence}  # fmt: skip
    return CheckRun(name, result.stage or None, "pass" if result.passed else "fail", evidence)


def _leakage(policy: Policy, chosen: Mapping[str, AcceptedAttestation]) -> dict[str, Any]:
    rule = policy.leakage
    assert rule is not None
    record = chosen[rule.stage].statement.metadata.details.get("leakage")
    overlaps = record.get("overlaps", {}) if isinstance(record, dict) else {}
    pairs = [pair_key(a, b) for a, b in rule.pairs]
    counts = overlaps if isinstance(overlaps, dict) else {}
    return {
        "tolerance": rule.tolerance,
        "pairs": pairs,
        "overlaps": {pair: counts[pair] for pair in pairs if pair in counts},
        "recomputed": "from the stored row digest sets (equal to the attested counts)",
    }
