"""Lineage inside one run: which stages an artifact flowed through, by digest.

An artifact flows from stage A to stage B when one of A's products and one of B's
materials share a digest (any algorithm of the digest set). Only the data chain is
followed (ingest, analyze, transform, validate, split, train, package): an evaluation
report read by ``package`` is not "training data", and a model read by ``evaluate`` is
not a new model. The facts come from the index, so they are claims (see
:mod:`mlspec_attest.store.index`).
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct, field

DATA_CHAIN = frozenset({"ingest", "analyze", "transform", "validate", "split", "train", "package"})
MODEL_KINDS = ("train", "package")

Digest = tuple[str, str]  # (algorithm, value)


class Artifact(Struct, frozen=True):
    side: str
    name: str
    role: str | None
    digests: frozenset[Digest]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "digest": dict(sorted(self.digests)),
        }


class Step(Struct, frozen=True):
    """One attestation of a run, with its artifacts."""

    stage: str
    kind: str
    file: str
    command: tuple[str, ...]
    artifacts: tuple[Artifact, ...] = field(default=())

    def side(self, side: str) -> list[Artifact]:
        return [a for a in self.artifacts if a.side == side]

    def writes(self, digests: set[Digest]) -> bool:
        return any(a.digests & digests for a in self.side("product"))


def downstream(steps: list[Step], start: set[Digest]) -> list[Step]:
    """The data-chain steps that (transitively) read one of ``start``'s digests."""
    return _closure(steps, start, follow="material", spread="product")


def upstream(steps: list[Step], start: set[Digest]) -> list[Step]:
    """The data-chain steps whose products (transitively) went into one of ``start``."""
    return _closure(steps, start, follow="product", spread="material")


def _closure(steps: list[Step], start: set[Digest], *, follow: str, spread: str) -> list[Step]:
    """Data-chain steps whose ``follow`` side shares a digest with what was reached so far;
    each one's ``spread`` side is reached in turn, until nothing changes."""
    reached = set(start)
    seen: list[Step] = []
    changed = True
    while changed:
        changed = False
        for step in steps:
            if step in seen or step.kind not in DATA_CHAIN:
                continue
            if not any(a.digests & reached for a in step.side(follow)):
                continue
            seen.append(step)
            for artifact in step.side(spread):
                reached |= artifact.digests
            changed = True
    return seen


def models_of(steps: list[Step]) -> list[tuple[Step, Artifact]]:
    """The products of the train and package steps among ``steps``."""
    return [(s, a) for s in steps if s.kind in MODEL_KINDS for a in s.side("product")]


def producer(steps: list[Step], artifact: Artifact) -> str | None:
    """The stage of ``steps`` that wrote ``artifact`` (by digest), if one did."""
    for step in steps:
        if step.writes(set(artifact.digests)):
            return step.stage
    return None
