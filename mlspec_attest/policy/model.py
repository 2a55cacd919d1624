"""The compiled policy: functionaries, stages with rules, deploy artifacts."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from msgspec import Struct, field

from mlspec_attest.errors import UsageError
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.formats.rfc3339 import format_rfc3339 as format_rfc3339
from mlspec_attest.formats.rfc3339 import parse_rfc3339 as parse_rfc3339
from mlspec_attest.formats.stages import StageKind
from mlspec_attest.policy.rules import ArtifactRule
from mlspec_attest.signing.keys import LocalPublicKey

if TYPE_CHECKING:  # keyless functionaries only: a key-signed policy does not load them
    from mlspec_attest.signing.sigstore.identity import SigstoreIdentity
    from mlspec_attest.signing.sigstore.trust_root import TrustRoot

POLICY_API_VERSION = "mlspec-attest/v1"
POLICY_KIND = "Policy"


class Functionary(Struct, frozen=True):
    """A party allowed to sign stages: a public key, or a Sigstore identity (keyless)."""

    name: str
    public_key: LocalPublicKey | None = None
    description: str = ""
    identity: SigstoreIdentity | None = None

    def __post_init__(self) -> None:
        if (self.public_key is None) == (self.identity is None):
            raise ValueError(f"functionary {self.name!r}: exactly one of a key or an identity")

    @property
    def key(self) -> LocalPublicKey:
        """The public key of a key functionary (a Sigstore functionary has none)."""
        if self.public_key is None:
            raise UsageError(
                f"functionary {self.name!r} is a Sigstore identity, not a public key",
                remedy="this operation needs key functionaries",
            )
        return self.public_key

    @property
    def keyid(self) -> str:
        """The key id, or for a Sigstore identity a stable id of its rule (``sigstore:…``)."""
        if self.public_key is not None:
            return self.public_key.keyid
        assert self.identity is not None
        return self.identity.keyid

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = (
            {"publicKey": self.public_key.pem()}
            if self.public_key is not None
            else {"sigstore": self.identity.to_json() if self.identity else {}}
        )
        if self.description:
            out["description"] = self.description
        return out


class StagePolicy(Struct, frozen=True):
    """What the policy demands of one stage."""

    name: str
    kind: StageKind
    functionaries: tuple[str, ...]
    threshold: int = 1
    after: tuple[str, ...] = ()
    material_rules: tuple[ArtifactRule, ...] = ()
    product_rules: tuple[ArtifactRule, ...] = ()
    required: bool = True
    description: str = ""


class DeployArtifact(Struct, frozen=True):
    """A file or directory that must, at deploy time, equal one stage's product."""

    role: str
    stage: str
    product: str
    required: bool = True
    description: str = ""


class SeparationRule(Struct, frozen=True):
    """Evaluation and hold-back test must be provably separate."""

    split: str
    evaluate: str
    test: str
    holdback_role: str = "holdback"
    validation_role: str = "validation"
    model_role: str = "model"
    not_read_by: tuple[str, ...] = ("transform", "train", "evaluate")

    def to_json(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "evaluate": self.evaluate,
            "test": self.test,
            "holdbackRole": self.holdback_role,
            "validationRole": self.validation_role,
            "modelRole": self.model_role,
            "notReadBy": list(self.not_read_by),
        }


class LeakageRule(Struct, frozen=True):
    """Row overlap between splits, recomputed from the split stage's digest sets."""

    stage: str
    tolerance: int = 0
    pairs: tuple[tuple[str, str], ...] = (
        ("train", "holdback"),
        ("train", "test"),
        ("train", "validation"),
    )

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "tolerance": self.tolerance,
            "pairs": [list(p) for p in self.pairs],
        }


class DataValidationRule(Struct, frozen=True):
    """Validation passed against a named schema version; no deprecated data trained on."""

    stage: str
    schema: str | None = None
    version: str | None = None
    forbid_deprecated: bool = True
    train_stage: str | None = None
    #: SHA-256 hex of the schema (its canonical JSON, as ``validate`` records it): a name
    #: and version are labels the schema gives itself.
    schema_digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stage": self.stage, "forbidDeprecated": self.forbid_deprecated}
        for k, v in (
            ("schema", self.schema),
            ("version", self.version),
            ("schemaDigest", self.schema_digest),
            ("trainStage", self.train_stage),
        ):
            if v is not None:
                out[k] = v
        return out


class Requirement(Struct, frozen=True):
    """What must hold of a run: a CEL expression over the stage records (``expr``), or a
    typed bound on one stage's attested metrics (``criterion``: the vocabulary of the
    objectives' criteria, judged by :mod:`mlspec_attest.policy.criteria`)."""

    id: str
    expr: str
    description: str = ""
    criterion: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        if self.criterion is not None:
            return dict(self.criterion)
        out = {"id": self.id, "expr": self.expr}
        if self.description:
            out["description"] = self.description
        return out


class RollbackTarget(Struct, frozen=True):
    """The model to roll back to, named by its passing verification summary."""

    summary: str
    """``sha256:<hex>`` of the summary's payload."""
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"summary": self.summary}
        if self.description:
            out["description"] = self.description
        return out


class Policy(Struct, frozen=True):
    """A validated policy. Build it with :func:`mlspec_attest.policy.load_policy_yaml`."""

    expires: datetime
    functionaries: dict[str, Functionary]
    stages: tuple[StagePolicy, ...]
    deploy: dict[str, DeployArtifact] = field(default_factory=dict)
    name: str = ""
    description: str = ""
    owner: str = ""
    objectives_stage: str | None = None
    objectives_required: bool = True
    separation: SeparationRule | None = None
    leakage: LeakageRule | None = None
    data_validation: DataValidationRule | None = None
    requirements: tuple[Requirement, ...] = ()
    require_policy_digest: bool = False
    sigstore_trust: TrustRoot | None = None
    rollback: RollbackTarget | None = None

    def stage(self, name: str) -> StagePolicy | None:
        return next((s for s in self.stages if s.name == name), None)

    def keys_for(self, stage: StagePolicy) -> dict[str, Functionary]:
        """keyid -> functionary for everyone allowed to sign ``stage``."""
        return {self.functionaries[f].keyid: self.functionaries[f] for f in stage.functionaries}

    def predecessors(self, name: str) -> set[str]:
        """Every stage that must come before ``name`` (transitively through ``after``)."""
        by_name = {s.name: s for s in self.stages}
        seen: set[str] = set()
        todo = list(by_name[name].after) if name in by_name else []
        while todo:
            current = todo.pop()
            if current in seen or current not in by_name:
                continue
            seen.add(current)
            todo.extend(by_name[current].after)
        return seen

    def to_json(self) -> dict[str, Any]:
        """The self-contained JSON form that gets signed (public keys inline)."""
        doc: dict[str, Any] = {
            "apiVersion": POLICY_API_VERSION,
            "kind": POLICY_KIND,
            "expires": format_rfc3339(self.expires),
            "functionaries": {f.name: f.to_json() for f in self.functionaries.values()},
            "stages": [_stage_json(s) for s in self.stages],
        }
        if self.sigstore_trust is not None:
            # Embedded, like public keys: verification needs no file and fetches nothing.
            doc["trust"] = {
                "sigstore": {
                    "trustedRoot": self.sigstore_trust.to_json(),
                    **(
                        {"source": self.sigstore_trust.source} if self.sigstore_trust.source else {}
                    ),
                }
            }
        meta = {
            k: v
            for k, v in (
                ("name", self.name),
                ("description", self.description),
                ("owner", self.owner),
            )
            if v
        }
        if meta:
            doc["metadata"] = meta
        if self.require_policy_digest:
            doc["requirePolicyDigest"] = True
        if self.objectives_stage:
            doc["objectives"] = {
                "stage": self.objectives_stage,
                "required": self.objectives_required,
            }
        if self.separation:
            doc["separation"] = self.separation.to_json()
        if self.leakage:
            doc["leakage"] = self.leakage.to_json()
        if self.data_validation:
            doc["dataValidation"] = self.data_validation.to_json()
        if self.requirements:
            doc["requirements"] = [r.to_json() for r in self.requirements]
        if self.rollback:
            doc["rollback"] = self.rollback.to_json()
        if self.deploy:
            doc["deploy"] = {
                "artifacts": {
                    a.role: {
                        "stage": a.stage,
                        "product": a.product,
                        "required": a.required,
                        **({"description": a.description} if a.description else {}),
                    }
                    for a in self.deploy.values()
                }
            }
        return doc

    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(canonical(self.to_json())).hexdigest()


def _stage_json(s: StagePolicy) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": s.name,
        "kind": s.kind.value,
        "functionaries": list(s.functionaries),
        "threshold": s.threshold,
        "after": list(s.after),
        "materials": [str(r) for r in s.material_rules],
        "products": [str(r) for r in s.product_rules],
        "required": s.required,
    }
    if s.description:
        out["description"] = s.description
    return out
