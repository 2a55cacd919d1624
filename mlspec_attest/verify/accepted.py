"""Accepted attestations and the one rule for attestations of a stage that disagree.

A run may hold several valid attestations of one stage: the threshold asks for
several functionaries, a step was retried, or someone signed a second, different
version (a backdoored model, then a clean one). The verdict must never depend on
which file is read first, so every accepted attestation of a stage is compared
by its *claim*: everything it asserts about the stage except what legitimately
differs between two honest runs of the same step (wall-clock times, the
command line, its captured output, the signer's environment). Attestations
with equal claims agree and count together towards the threshold; two claims
that differ are a conflict, and a conflict is a denial that names every file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from msgspec import Struct

from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.formats.rfc3339 import parse_rfc3339
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.policy.model import Functionary
from mlspec_attest.policy.rules import LinkArtifacts

#: Metadata fields that differ between two honest runs of one step.
SIGNER_LOCAL_FIELDS = ("startedOn", "finishedOn")
#: ``details`` entries recorded per signer (what the signer saw, not what the stage made).
SIGNER_LOCAL_DETAILS = ("predecessors",)


class AcceptedAttestation(Struct, frozen=True):
    """An attestation whose signature and identity checks passed."""

    statement: StageStatement
    functionary: Functionary
    source: Path
    payload_digest: str = ""
    #: Other functionaries whose keys signed the same envelope and may sign its stage.
    cosigners: tuple[Functionary, ...] = ()

    @property
    def signers(self) -> tuple[Functionary, ...]:
        return (self.functionary, *self.cosigners)

    def artifacts(self) -> LinkArtifacts:
        return LinkArtifacts(
            materials={m.name: m.digest for m in self.statement.materials},
            products={p.name: p.digest for p in self.statement.products},
        )

    def claim(self) -> dict[str, Any]:
        """What this attestation asserts about the stage, minus signer-local facts."""
        metadata = self.statement.metadata.to_json()  # always has the times and details
        for name in SIGNER_LOCAL_FIELDS:
            del metadata[name]
        details = dict(metadata["details"])
        for name in SIGNER_LOCAL_DETAILS:
            details.pop(name, None)
        metadata["details"] = details
        return {
            "materials": sorted(
                (m.to_json() for m in self.statement.materials), key=lambda d: d["name"]
            ),
            "products": sorted(
                (p.to_json() for p in self.statement.products), key=lambda d: d["name"]
            ),
            "metadata": metadata,
        }

    def claim_digest(self) -> str:
        return hashlib.sha256(canonical(self.claim())).hexdigest()

    @property
    def started(self) -> datetime:
        return parse_rfc3339(self.statement.metadata.started_on)

    @property
    def finished(self) -> datetime:
        return parse_rfc3339(self.statement.metadata.finished_on)

    def predecessors(self, stage: str) -> frozenset[str] | None:
        """Payload digests of ``stage`` this attestation saw in the run when it started.

        None when the attestation records no predecessors at all (the schema has
        already checked the shape of the record).
        """
        record = self.statement.metadata.details.get("predecessors")
        if not isinstance(record, dict):
            return None
        return frozenset(record.get(stage, ()))

    def describe(self) -> str:
        return f"{self.source.name} (signed by {', '.join(f.name for f in self.signers)})"


class StageEvidence(Struct, frozen=True):
    """The attestations of one stage that agree, in an order that does not depend on files."""

    attestations: tuple[AcceptedAttestation, ...]

    @property
    def representative(self) -> AcceptedAttestation:
        """The attestation whose (shared) claim the checks read; chosen by payload digest."""
        return self.attestations[0]

    @property
    def keyids(self) -> frozenset[str]:
        return frozenset(f.keyid for a in self.attestations for f in a.signers)

    @property
    def earliest_start(self) -> datetime:
        return min(a.started for a in self.attestations)

    @property
    def latest_finish(self) -> datetime:
        return max(a.finished for a in self.attestations)

    @property
    def payload_digests(self) -> frozenset[str]:
        return frozenset(a.payload_digest for a in self.attestations)


class Baseline(Struct, frozen=True):
    """The verified metrics of a baseline model's stage, from an earlier run."""

    stage: str
    run_id: str
    metrics: Mapping[str, float]


class Conflict(Struct, frozen=True):
    """Two or more claims about one stage in one run."""

    groups: tuple[StageEvidence, ...]
    differing: tuple[str, ...]


def group_by_claim(accepted: Iterable[AcceptedAttestation]) -> tuple[StageEvidence, ...]:
    """Accepted attestations grouped by equal claim; groups and members in a stable order."""
    accepted = list(accepted)
    if len(accepted) < 2:  # nothing to group: no claim's canonical form is needed
        return tuple(StageEvidence((att,)) for att in accepted)
    groups: dict[str, list[AcceptedAttestation]] = {}
    for att in accepted:
        groups.setdefault(att.claim_digest(), []).append(att)
    ordered = sorted(groups.items())
    return tuple(StageEvidence(tuple(sorted(members, key=_stable_key))) for _, members in ordered)


def _stable_key(att: AcceptedAttestation) -> tuple[str, str, str]:
    return (att.payload_digest, att.functionary.keyid, att.source.name)


def resolve(accepted: Sequence[AcceptedAttestation]) -> StageEvidence | Conflict | None:
    """The one agreeing group of a stage, a conflict, or None when nothing was accepted."""
    groups = group_by_claim(accepted)
    if not groups:
        return None
    if len(groups) == 1:
        return groups[0]
    claims = [g.representative.claim() for g in groups]
    return Conflict(groups, tuple(differing_fields(claims)))


def differing_fields(claims: Sequence[Mapping[str, Any]]) -> list[str]:
    """Dotted names of the claim fields that are not equal in every claim."""
    out: list[str] = []
    _collect_differences(claims, "", out, depth=0)
    return out


def _collect_differences(values: Sequence[Any], prefix: str, out: list[str], *, depth: int) -> None:
    first = values[0]
    if all(v == first for v in values[1:]):
        return
    if depth >= 3 or not all(isinstance(v, Mapping) for v in values):
        out.append(prefix or "statement")
        return
    keys = sorted({k for v in values for k in v})
    for key in keys:
        missing = object()
        column = [v.get(key, missing) for v in values]
        _collect_differences(column, f"{prefix}.{key}" if prefix else key, out, depth=depth + 1)
