"""The levels a verification summary says were proved (``verifiedLevels``).

Apart from :mod:`mlspec_attest.formats.vsa` so that the verifier can name what a policy
demands without loading the summary's format.
"""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    """What a PASSED summary says the policy proved (``verifiedLevels``)."""

    SIGNED_CHAIN = "MLSPEC_SIGNED_CHAIN"
    """Every required stage signed by its functionaries, to its threshold, this run."""
    ORDERED = "MLSPEC_STAGE_ORDER"
    """Stages ran in the order the policy requires."""
    ARTIFACT_FLOW = "MLSPEC_ARTIFACT_FLOW"
    """What each stage read is what an earlier stage wrote (the artifact rules)."""
    OBJECTIVES_MET = "MLSPEC_OBJECTIVES_MET"
    """The signed launch objectives hold on the attested metrics."""
    REQUIREMENTS_MET = "MLSPEC_REQUIREMENTS_MET"
    """The policy's own requirements hold."""
    HOLDBACK_ISOLATED = "MLSPEC_HOLDBACK_ISOLATED"
    """The hold-back set was tested apart from evaluation and read by no training stage."""
    LEAKAGE_FREE = "MLSPEC_LEAKAGE_FREE"
    """The splits' row-level overlap is within the policy's tolerance."""
    DATA_VALIDATED = "MLSPEC_DATA_VALIDATED"
    """The data validated against the schema version the policy names."""
    DEPLOY_DIGESTS = "MLSPEC_DEPLOY_DIGESTS_MATCH"
    """The deploy artifacts re-hashed equal to what the pipeline produced."""
    FAILED = "FAILED"
    """SLSA's value for a failed verification; the only level of a FAILED summary."""
