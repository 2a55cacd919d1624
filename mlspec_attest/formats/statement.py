"""in-toto Statement v1 with a Link v0.3 predicate and mlspec-attest's ML metadata.

Layout of one stage attestation (docs/formats.md has the full description)::

    Statement v1
      subject        = the stage's products (name + DigestSet)
      predicateType  = https://in-toto.io/attestation/link/v0.3
      predicate
        name         = stage name
        command      = argv of the wrapped command (may be empty)
        materials    = what the stage read (ResourceDescriptors)
        byproducts   = {"return-value", "stdout-sha256", "stderr-sha256", "mlspec": {...}}
        environment  = tool/platform facts

``byproducts.mlspec`` follows the versioned schema in
``mlspec_attest/formats/schemas/stage-metadata-v1.schema.json``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from msgspec import Struct, field

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.fsutil import check_relative_name
from mlspec_attest.formats.jsonio import canonical, loads_strict
from mlspec_attest.formats.limits import MAX_DSSE_PAYLOAD_BYTES
from mlspec_attest.formats.objecturl import check_object_url, is_object_url
from mlspec_attest.formats.rfc3339 import parse_rfc3339
from mlspec_attest.formats.schemas import validate_stage_metadata

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
LINK_PREDICATE_TYPE = "https://in-toto.io/attestation/link/v0.3"
MLSPEC_METADATA_VERSION = "https://mlspec-attest.dev/stage/v1"

JSONScalar = str | int | float | bool | None


class ResourceDescriptor(Struct, frozen=True):
    """An in-toto ResourceDescriptor restricted to what stage links need."""

    name: str
    digest: dict[str, str]
    annotations: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "digest": dict(self.digest)}
        if self.annotations:
            out["annotations"] = self.annotations
        return out

    @classmethod
    def from_json(cls, doc: Any, *, what: str) -> ResourceDescriptor:
        if not isinstance(doc, dict):
            raise MalformedDocumentError(f"{what}: expected an object")
        name = doc.get("name")
        digest = doc.get("digest")
        if not isinstance(name, str) or not isinstance(digest, dict) or not digest:
            raise MalformedDocumentError(f"{what}: needs a name and a non-empty digest")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in digest.items()):
            raise MalformedDocumentError(f"{what}: digest values must be strings")
        try:
            # An object store URL (s3://bucket/key) names itself; anything else is a path.
            check_object_url(name) if is_object_url(name) else check_relative_name(name)
        except Exception as exc:
            raise MalformedDocumentError(f"{what}: {exc}") from exc
        annotations = doc.get("annotations", {})
        if not isinstance(annotations, dict):
            raise MalformedDocumentError(f"{what}: annotations must be an object")
        return cls(name, dict(digest), annotations)


class CommandRecord(Struct, frozen=True):
    """What the wrapped stage command was and how it ended."""

    argv: tuple[str, ...] = ()
    exit_code: int | None = None
    stdout_sha256: str | None = None
    stderr_sha256: str | None = None


class StageMetadata(Struct, frozen=True):
    """The ML metadata of one stage (``byproducts.mlspec``)."""

    stage: str
    kind: str
    run_id: str
    started_on: str
    finished_on: str
    policy_digest: str | None = None
    parameters: dict[str, JSONScalar] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    slices: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    infrastructure: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": MLSPEC_METADATA_VERSION,
            "stage": self.stage,
            "kind": self.kind,
            "runId": self.run_id,
            "startedOn": self.started_on,
            "finishedOn": self.finished_on,
            "parameters": self.parameters,
            "metrics": self.metrics,
            "slices": self.slices,
            "roles": self.roles,
            "infrastructure": self.infrastructure,
            "details": self.details,
        }
        if self.policy_digest:
            out["policyDigest"] = self.policy_digest
        return out

    @classmethod
    def from_json(cls, doc: Any) -> StageMetadata:
        validate_stage_metadata(doc)
        for field_name in ("startedOn", "finishedOn"):
            try:
                parse_rfc3339(doc[field_name])
            except ValueError as exc:
                raise MalformedDocumentError(
                    f"byproducts.mlspec.{field_name} {doc[field_name]!r} is not an RFC 3339 instant"
                ) from exc
        return cls(
            stage=doc["stage"],
            kind=doc["kind"],
            run_id=doc["runId"],
            started_on=doc["startedOn"],
            finished_on=doc["finishedOn"],
            policy_digest=doc.get("policyDigest"),
            parameters=doc.get("parameters", {}),
            metrics=doc.get("metrics", {}),
            slices=doc.get("slices", {}),
            roles=doc.get("roles", {}),
            infrastructure=doc.get("infrastructure", {}),
            details=doc.get("details", {}),
        )


class StageStatement(Struct, frozen=True):
    """One stage's in-toto Statement (subject = products, Link v0.3 predicate)."""

    products: tuple[ResourceDescriptor, ...]
    materials: tuple[ResourceDescriptor, ...]
    metadata: StageMetadata
    command: CommandRecord = field(default_factory=CommandRecord)
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.metadata.stage

    def to_json(self) -> dict[str, Any]:
        byproducts: dict[str, Any] = {"mlspec": self.metadata.to_json()}
        if self.command.exit_code is not None:
            byproducts["return-value"] = self.command.exit_code
        if self.command.stdout_sha256:
            byproducts["stdout-sha256"] = self.command.stdout_sha256
        if self.command.stderr_sha256:
            byproducts["stderr-sha256"] = self.command.stderr_sha256
        return {
            "_type": STATEMENT_TYPE,
            "subject": [p.to_json() for p in self.products],
            "predicateType": LINK_PREDICATE_TYPE,
            "predicate": {
                "name": self.metadata.stage,
                "command": list(self.command.argv),
                "materials": [m.to_json() for m in self.materials],
                "byproducts": byproducts,
                "environment": self.environment,
            },
        }

    def to_payload(self) -> bytes:
        """Canonical (RFC 8785) JSON bytes: what DSSE signs."""
        return canonical(self.to_json())

    @classmethod
    def from_payload(cls, payload: bytes, *, what: str = "statement") -> StageStatement:
        doc = loads_strict(payload, what=what, max_bytes=MAX_DSSE_PAYLOAD_BYTES)
        return cls.from_json(doc, what=what)

    @classmethod
    def from_json(cls, doc: Any, *, what: str = "statement") -> StageStatement:
        if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE:
            raise MalformedDocumentError(f"{what}: not an in-toto Statement v1")
        if doc.get("predicateType") != LINK_PREDICATE_TYPE:
            raise MalformedDocumentError(
                f"{what}: predicateType {doc.get('predicateType')!r} is not a Link v0.3"
            )
        predicate = doc.get("predicate")
        subject = doc.get("subject")
        if not isinstance(predicate, dict) or not isinstance(subject, list):
            raise MalformedDocumentError(f"{what}: missing predicate or subject")
        byproducts = predicate.get("byproducts")
        if not isinstance(byproducts, dict) or "mlspec" not in byproducts:
            raise MalformedDocumentError(f"{what}: link has no byproducts.mlspec metadata")
        try:
            metadata = StageMetadata.from_json(byproducts["mlspec"])
        except MalformedDocumentError as exc:
            raise MalformedDocumentError(f"{what}: {exc.message}") from exc
        if predicate.get("name") != metadata.stage:
            raise MalformedDocumentError(f"{what}: predicate name differs from mlspec stage")
        materials = predicate.get("materials", [])
        command = predicate.get("command", [])
        if not isinstance(materials, list) or not isinstance(command, list):
            raise MalformedDocumentError(f"{what}: materials and command must be lists")
        env = predicate.get("environment", {})
        for side, entries in (("subject", subject), ("materials", materials)):
            _refuse_duplicate_names(entries, f"{what}: {side}")
        statement = cls(
            products=tuple(
                ResourceDescriptor.from_json(s, what=f"{what}: subject[{i}]")
                for i, s in enumerate(subject)
            ),
            materials=tuple(
                ResourceDescriptor.from_json(m, what=f"{what}: materials[{i}]")
                for i, m in enumerate(materials)
            ),
            metadata=metadata,
            command=CommandRecord(
                argv=tuple(str(a) for a in command),
                exit_code=byproducts.get("return-value"),
                stdout_sha256=byproducts.get("stdout-sha256"),
                stderr_sha256=byproducts.get("stderr-sha256"),
            ),
            environment=env if isinstance(env, dict) else {},
        )
        for side, descriptors in (
            ("subject", statement.products),
            ("materials", statement.materials),
        ):
            _refuse_files_with_insides(descriptors, f"{what}: {side}")
        return statement


def _refuse_duplicate_names(entries: list[Any], what: str) -> None:
    """An artifact named twice is ambiguous: one reader could take the first entry and
    another the last (a rule and the deploy check disagreeing). Refused, not resolved."""
    seen: set[str] = set()
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str):
            if name in seen:
                raise MalformedDocumentError(f"{what}: artifact {name!r} is listed twice")
            seen.add(name)


def _refuse_files_with_insides(descriptors: Sequence[ResourceDescriptor], what: str) -> None:
    """A name recorded as a file cannot also have artifacts inside it (``X`` and ``X/y``).

    No file system holds both; a statement claiming it could satisfy rules that look
    inside ``X`` while ``X`` itself is an opaque file (a tarball) that ships anything.
    """
    files = {d.name for d in descriptors if "manifest-sha256" not in d.digest}
    for d in descriptors:
        parent = d.name
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            if parent in files:
                raise MalformedDocumentError(
                    f"{what}: {d.name!r} is recorded inside {parent!r}, which is recorded as a file"
                )


def check_finite_metrics(metrics: dict[str, Any], *, what: str) -> dict[str, float]:
    """Metrics must be finite numbers; NaN and infinities are refused at signing time."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MalformedDocumentError(f"{what}: metric {name!r} is not a number ({value!r})")
        if not math.isfinite(value):
            raise MalformedDocumentError(f"{what}: metric {name!r} is not finite ({value!r})")
        out[name] = value
    return out
