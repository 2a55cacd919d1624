"""What the ML checks read: the chosen attestation of each stage, and its record for CEL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlspec_attest.policy.criteria import as_doubles
from mlspec_attest.verify.accepted import AcceptedAttestation

#: The attestation each stage's checks read (its agreeing group's representative).
Chosen = Mapping[str, AcceptedAttestation]


def stage_records(chosen: Chosen) -> dict[str, Any]:
    """The ``stages`` activation for CEL: stage name -> its attested record.

    Every slice entry has ``metrics`` (stage-metadata-v1 requires it; statements are
    validated when parsed).
    """
    out: dict[str, Any] = {}
    for name, att in chosen.items():
        m = att.statement.metadata
        out[name] = {
            "kind": m.kind,
            "metrics": as_doubles(m.metrics),
            "parameters": dict(m.parameters),
            "infrastructure": dict(m.infrastructure),
            "details": dict(m.details),
            "roles": dict(m.roles),
            "slices": {
                family: {
                    value: {**entry, "metrics": as_doubles(entry["metrics"])}
                    for value, entry in members.items()
                }
                for family, members in m.slices.items()
            },
        }
    return out
