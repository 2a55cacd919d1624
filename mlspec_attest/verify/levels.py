"""Which checks prove which level of a verification summary, and which a policy demands.

The verifier records the demanded levels in every report (:func:`demanded_levels`); a
summary says, per family, passed, failed, not run or not required
(:func:`family_results`). A level is claimed only for a family that ran and passed: a
family with ``evidence`` passes only if the report lists at least one check run of
those names and every one of them passed; a ``not-run`` check never counts as passed.
"""

from __future__ import annotations

from collections.abc import Callable

from msgspec import Struct

from mlspec_attest.formats.vsa_levels import Level
from mlspec_attest.policy.model import Policy
from mlspec_attest.verify.report import Check, VerificationReport


class Family(Struct, frozen=True):
    """A family of checks that together prove one level, and whether a policy demands it."""

    level: Level
    checks: frozenset[Check]
    applies: Callable[[Policy], bool]
    # The ledger's check runs (verify/ledger.py) that prove the level: at least one ran,
    # and all passed. Empty for the per-stage families (an optional stage left out has
    # no signatures, order or rules to prove: those levels speak of the stages that ran).
    evidence: frozenset[str] = frozenset()


def _always(policy: Policy) -> bool:
    return True


FAMILIES: tuple[Family, ...] = (
    Family(
        Level.SIGNED_CHAIN,
        frozenset(
            {
                Check.POLICY_SIGNATURE,
                Check.POLICY_EXPIRED,
                Check.ATTESTATION_MALFORMED,
                Check.SIGNATURE,
                Check.SIGNER_NOT_ALLOWED,
                Check.RUN_ID,
                Check.POLICY_DIGEST,
                Check.STAGE_KIND,
                Check.STAGE_MISSING,
                Check.CONFLICT,
                Check.SIGNED_TIME,
                Check.THRESHOLD,
            }
        ),
        _always,
    ),
    Family(Level.ORDERED, frozenset({Check.ORDERING}), lambda p: any(s.after for s in p.stages)),
    Family(
        Level.ARTIFACT_FLOW,
        frozenset({Check.ARTIFACT_RULE, Check.INSPECTION}),
        lambda p: any(s.material_rules or s.product_rules for s in p.stages),
    ),
    Family(
        Level.OBJECTIVES_MET,
        frozenset({Check.OBJECTIVES_DOCUMENT, Check.BASELINE, Check.OBJECTIVE}),
        lambda p: p.objectives_stage is not None,
        frozenset({"objective"}),
    ),
    Family(
        Level.HOLDBACK_ISOLATED,
        frozenset(
            {
                Check.HOLDBACK_NOT_TESTED,
                Check.HOLDBACK_READ,
                Check.HOLDBACK_EVIDENCE,
                Check.TEST_MODEL,
                Check.TEST_ORDER,
                Check.TEST_DATA_REUSED,
            }
        ),
        lambda p: p.separation is not None,
        frozenset({"separation"}),
    ),
    Family(
        Level.LEAKAGE_FREE,
        frozenset({Check.LEAKAGE}),
        lambda p: p.leakage is not None,
        frozenset({"leakage"}),
    ),
    Family(
        Level.DATA_VALIDATED,
        frozenset({Check.DATA_VALIDATION, Check.DEPRECATED_DATA}),
        lambda p: p.data_validation is not None,
        frozenset({"data-validation"}),
    ),
    Family(
        Level.REQUIREMENTS_MET,
        frozenset({Check.REQUIREMENT}),
        lambda p: bool(p.requirements),
        frozenset({"requirement"}),
    ),
    Family(
        Level.DEPLOY_DIGESTS,
        frozenset({Check.ARTIFACT_MISSING, Check.ARTIFACT_MISMATCH, Check.OMS_SIGNATURE}),
        lambda p: bool(p.deploy),
    ),
)


def demanded_levels(policy: Policy) -> tuple[str, ...]:
    """The levels whose checks ``policy`` demands (recorded in the report by the verifier)."""
    return tuple(f.level.value for f in FAMILIES if f.applies(policy))


def family_results(report: VerificationReport) -> list[dict[str, object]]:
    """Each family: its level, its result (passed, failed, not-run, not-required) and
    failure count; ``passed`` only when the family's checks ran and all passed."""
    out: list[dict[str, object]] = []
    for family in FAMILIES:
        failures = sum(1 for f in report.failures if f.check in family.checks)
        applies = family.level.value in report.demanded
        if family.level is Level.DEPLOY_DIGESTS:
            applies = applies and any(a.status == "ok" for a in report.artifacts)
        if failures:
            result = "failed"
        elif not applies:
            result = "not-required"
        elif family.evidence and not ran_and_passed(report, family.evidence):
            result = "not-run"
        else:
            result = "passed"
        out.append({"level": family.level.value, "result": result, "failures": failures})
    return out


def ran_and_passed(report: VerificationReport, names: frozenset[str]) -> bool:
    """The report lists at least one check run named in ``names``, and each one passed."""
    results = [run.result for run in report.checks if run.check in names]
    return bool(results) and all(result == "pass" for result in results)
