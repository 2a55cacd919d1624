"""What a claim is: the fields two honest signers of one step must agree on, and only those."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from mlspec_attest.formats.statement import (
    CommandRecord,
    ResourceDescriptor,
    StageMetadata,
    StageStatement,
)
from mlspec_attest.policy.model import Functionary
from mlspec_attest.verify.accepted import AcceptedAttestation, Conflict, StageEvidence, resolve

from .support import KeyPair

D1, D2, D3 = "1" * 64, "2" * 64, "3" * 64
PRED = "sha256:" + "4" * 64


def _statement(**meta: Any) -> StageStatement:
    fields: dict[str, Any] = {
        "stage": "train",
        "kind": "train",
        "run_id": "run-a",
        "started_on": "2025-06-01T12:00:00Z",
        "finished_on": "2025-06-01T12:00:05Z",
        "policy_digest": "sha256:" + "5" * 64,
        "parameters": {"seed": 7},
        "metrics": {"mae": 41.0},
        "slices": {"sex": {"f": {"count": 3, "metrics": {"mae": 40.0}}}},
        "roles": {"train": "data/train.csv", "model": "model"},
        "infrastructure": {"accelerator": "none"},
        "details": {"notes": {"trials": 3}, "predecessors": {"split": [PRED]}},
    }
    fields.update(meta)
    return StageStatement(
        products=(ResourceDescriptor("model", {"sha256": D1}),),
        materials=(
            ResourceDescriptor("data/train.csv", {"sha256": D2}),
            ResourceDescriptor("data/extra.csv", {"sha256": D3}),
        ),
        metadata=StageMetadata(**fields),
        command=CommandRecord(("python", "train.py"), 0, D1, D2),
        environment={"host": "a"},
    )


def _accepted(
    statement: StageStatement, signer: KeyPair, name: str = "x.sigstore.json"
) -> AcceptedAttestation:
    functionary = Functionary(signer.name, public_key=signer.public)
    return AcceptedAttestation(statement, functionary, Path(name), "sha256:" + name.encode().hex())


def test_signer_local_fields_are_not_part_of_the_claim(keys: dict[str, KeyPair]) -> None:
    """Two honest runs of a step differ in times, what they saw, command and environment."""
    first = _statement()
    second = replace(
        _statement(
            started_on="2025-06-01T13:00:00Z",
            finished_on="2025-06-01T13:00:09Z",
            details={"notes": {"trials": 3}, "predecessors": {"split": [PRED, "sha256:" + D3]}},
        ),
        materials=tuple(reversed(first.materials)),  # listing order is not a claim
        command=CommandRecord(("python", "/other/path/train.py"), 0, D3, D3),
        environment={"host": "b"},
    )
    a = _accepted(first, keys["ml-engineer"], "a.sigstore.json")
    b = _accepted(second, keys["ml-reviewer"], "b.sigstore.json")
    assert a.claim() == b.claim()
    assert a.claim_digest() == b.claim_digest()
    outcome = resolve([b, a])
    assert isinstance(outcome, StageEvidence)
    assert outcome.keyids == {keys["ml-engineer"].keyid, keys["ml-reviewer"].keyid}
    assert outcome == resolve([a, b])  # the order they are read in does not matter
    assert [x.source.name for x in outcome.attestations] == sorted(
        ["a.sigstore.json", "b.sigstore.json"], key=lambda n: "sha256:" + n.encode().hex()
    )


def test_the_claim_holds_every_asserted_field(keys: dict[str, KeyPair]) -> None:
    claim = _accepted(_statement(), keys["ml-engineer"]).claim()
    assert claim["products"] == [{"name": "model", "digest": {"sha256": D1}}]
    assert [m["name"] for m in claim["materials"]] == ["data/extra.csv", "data/train.csv"]
    meta = claim["metadata"]
    assert "startedOn" not in meta and "finishedOn" not in meta
    assert meta["details"] == {"notes": {"trials": 3}}  # predecessors left out
    for key in ("stage", "kind", "runId", "policyDigest", "parameters", "metrics", "slices"):
        assert key in meta, key
    assert meta["roles"] == {"train": "data/train.csv", "model": "model"}
    assert meta["infrastructure"] == {"accelerator": "none"}
    # an attestation that recorded no predecessors has the same claim
    bare = _statement(details={"notes": {"trials": 3}})
    assert _accepted(bare, keys["ml-engineer"]).claim() == claim


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"parameters": {"seed": 8}}, "metadata.parameters.seed"),
        ({"metrics": {"mae": 41.5}}, "metadata.metrics.mae"),
        ({"slices": {"sex": {"f": {"count": 4, "metrics": {"mae": 40.0}}}}}, "metadata.slices"),
        ({"roles": {"train": "data/train.csv", "model": "model2"}}, "metadata.roles.model"),
        ({"infrastructure": {"accelerator": "gpu"}}, "metadata.infrastructure.accelerator"),
        ({"details": {"notes": {"trials": 4}, "predecessors": {}}}, "metadata.details.notes"),
        ({"policy_digest": "sha256:" + "6" * 64}, "metadata.policyDigest"),
        ({"kind": "custom"}, "metadata.kind"),
        ({"run_id": "run-b"}, "metadata.runId"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_different_claimed_field_is_a_conflict_naming_it(
    keys: dict[str, KeyPair], change: dict[str, Any], field: str
) -> None:
    a = _accepted(_statement(), keys["ml-engineer"], "a.sigstore.json")
    b = _accepted(_statement(**change), keys["ml-reviewer"], "b.sigstore.json")
    outcome = resolve([a, b])
    assert isinstance(outcome, Conflict)
    assert len(outcome.groups) == 2
    assert any(d == field or d.startswith(field + ".") for d in outcome.differing), (
        outcome.differing
    )


@pytest.mark.parametrize("side", ["products", "materials"])
def test_a_different_artifact_is_a_conflict(keys: dict[str, KeyPair], side: str) -> None:
    base = _statement()
    other = replace(base, **{side: (ResourceDescriptor("model", {"sha256": D3}),)})
    outcome = resolve(
        [_accepted(base, keys["ml-engineer"]), _accepted(other, keys["ml-engineer"], "y")]
    )
    assert isinstance(outcome, Conflict)
    assert outcome.differing == (side,)


def test_nothing_accepted_is_nothing() -> None:
    assert resolve([]) is None


def test_predecessors(keys: dict[str, KeyPair]) -> None:
    att = _accepted(_statement(), keys["ml-engineer"])
    assert att.predecessors("split") == frozenset({PRED})
    assert att.predecessors("ingest") == frozenset()  # recorded, but nothing of that stage
    none = _accepted(_statement(details={"notes": {}}), keys["ml-engineer"])
    assert none.predecessors("split") is None  # no record at all
