"""Which checks prove which level of a verification summary, and which a policy demands.

The verifier records the demanded levels in every report (:func:`demanded_levels`); a
summary says, per family, passed, failed or not required (:func:`family_results`).
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
    ),
    Family(Level.LEAKAGE_FREE, frozenset({Check.LEAKAGE}), lambda p: p.leakage is not None),
    Family(
        Level.DATA_VALIDATED,
        frozenset({Check.DATA_VALIDATION, Check.DEPRECATED_DATA}),
        lambda p: p.data_validation is not None,
    ),
    Family(Level.REQUIREMENTS_MET, frozenset({Check.REQUIREMENT}), lambda p: bool(p.requirements)),
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
    """Each family: its level, its result (passed, failed, not-required) and failure count."""
    out: list[dict[str, object]] = []
    for family in FAMILIES:
        failures = sum(1 for f in report.failures if f.check in family.checks)
        applies = family.level.value in report.demanded
        if family.level is Level.DEPLOY_DIGESTS:
            applies = applies and any(a.status == "ok" for a in report.artifacts)
        result = "failed" if failures else ("passed" if applies else "not-required")
        out.append({"level": family.level.value, "result": result, "failures": failures})
    return out
