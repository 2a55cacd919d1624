"""SLSA Verification Summary Attestation v1: the signed verdict of ``verify``.

An in-toto Statement v1 whose predicate is ``https://slsa.dev/verification_summary/v1``
(docs/formats.md §"Verification summary")::

    subject            = the deploy artifacts verified (the model first), role + DigestSet
    predicate
      verifier         = {id: a URI, version: {"mlspec-attest": "..."}}
      timeVerified     = RFC 3339
      resourceUri      = where the model will be served from
      policy           = {uri, digest: {sha256: the signed policy's digest}}
      inputAttestations= [{name: stage, uri: runs/<run>/<file>, digest: {sha256: payload}}]
      verificationResult = PASSED | FAILED
      verifiedLevels   = ["MLSPEC_*", ...] (PASSED) or ["FAILED"]
      dependencyLevels = {"MLSPEC_DIGEST_VERIFIED": n}: other deploy artifacts re-hashed
      slsaVersion      = "1.0"
      mlspec           = run id, policy name, each check and objective with its evidence,
                         the failures (the spec's consumers ignore fields they do not know)

This module is the one reader and writer of that document; it decides nothing about
trust (the gate does: :mod:`mlspec_attest.serve.gate`).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from msgspec import Struct, field

from mlspec_attest._version import VERIFIER_ID
from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.jsonio import canonical, loads_strict
from mlspec_attest.formats.limits import MAX_DSSE_PAYLOAD_BYTES
from mlspec_attest.formats.rfc3339 import format_rfc3339, parse_rfc3339
from mlspec_attest.formats.statement import STATEMENT_TYPE, ResourceDescriptor
from mlspec_attest.formats.vsa_levels import Level as Level  # the format names its levels

VSA_PREDICATE_TYPE = "https://slsa.dev/verification_summary/v1"
DEFAULT_VERIFIER_ID = VERIFIER_ID
DETAILS_SCHEMA = "https://mlspec-attest.dev/vsa-details/v1"
DETAILS_KEY = "mlspec"
SLSA_VERSION = "1.0"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


def summary_digest(payload: bytes) -> str:
    """How a summary is named everywhere (log records, /varz, the store, a policy's
    rollback target): sha256 hex of its DSSE payload, so re-encoding the bundle (or
    signing the same verdict again) does not rename it."""
    return hashlib.sha256(payload).hexdigest()


class Result(StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"


class InputAttestation(Struct, frozen=True):
    """One stage attestation the verdict used: its stage, where it is, its payload digest."""

    stage: str
    uri: str
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.stage, "uri": self.uri, "digest": {"sha256": self.sha256}}


class VerificationSummary(Struct, frozen=True):
    """One verification summary; :meth:`to_payload` is what is signed."""

    subjects: tuple[ResourceDescriptor, ...]
    resource_uri: str
    policy_uri: str
    policy_digest: str
    time_verified: datetime
    result: Result
    levels: tuple[str, ...]
    inputs: tuple[InputAttestation, ...] = ()
    dependency_levels: dict[str, int] = field(default_factory=dict)
    verifier_id: str = DEFAULT_VERIFIER_ID
    verifier_version: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.result is Result.PASSED

    @property
    def run_id(self) -> str | None:
        run = self.details.get("runId")
        return run if isinstance(run, str) else None

    def subject(self, role: str) -> ResourceDescriptor | None:
        return next((s for s in self.subjects if s.name == role), None)

    def to_json(self) -> dict[str, Any]:
        predicate: dict[str, Any] = {
            "verifier": {"id": self.verifier_id, "version": dict(self.verifier_version)},
            "timeVerified": format_rfc3339(self.time_verified),
            "resourceUri": self.resource_uri,
            "policy": {"uri": self.policy_uri, "digest": {"sha256": self.policy_digest}},
            "inputAttestations": [i.to_json() for i in self.inputs],
            "verificationResult": self.result.value,
            "verifiedLevels": list(self.levels),
            "dependencyLevels": dict(self.dependency_levels),
            "slsaVersion": SLSA_VERSION,
            DETAILS_KEY: {"schema": DETAILS_SCHEMA, **self.details},
        }
        return {
            "_type": STATEMENT_TYPE,
            "subject": [s.to_json() for s in self.subjects],
            "predicateType": VSA_PREDICATE_TYPE,
            "predicate": predicate,
        }

    def to_payload(self) -> bytes:
        """Canonical (RFC 8785) JSON bytes: what DSSE signs."""
        return canonical(self.to_json())

    @classmethod
    def from_payload(
        cls, payload: bytes, *, what: str = "verification summary"
    ) -> VerificationSummary:
        doc = loads_strict(payload, what=what, max_bytes=MAX_DSSE_PAYLOAD_BYTES)
        return cls.from_json(doc, what=what)

    @classmethod
    def from_json(cls, doc: Any, *, what: str = "verification summary") -> VerificationSummary:
        if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE:
            raise MalformedDocumentError(f"{what}: not an in-toto Statement v1")
        if doc.get("predicateType") != VSA_PREDICATE_TYPE:
            raise MalformedDocumentError(
                f"{what}: predicateType {doc.get('predicateType')!r} is not {VSA_PREDICATE_TYPE}"
            )
        p = _object(doc.get("predicate"), f"{what}: predicate")
        subjects = _list(doc.get("subject"), f"{what}: subject")
        if not subjects:
            raise MalformedDocumentError(f"{what}: subject is empty")
        verifier = _object(p.get("verifier"), f"{what}: verifier")
        policy = _object(p.get("policy"), f"{what}: policy")
        details = p.get(DETAILS_KEY, {})
        return cls(
            subjects=tuple(
                ResourceDescriptor.from_json(s, what=f"{what}: subject[{i}]")
                for i, s in enumerate(subjects)
            ),
            resource_uri=_text(p.get("resourceUri"), f"{what}: resourceUri"),
            policy_uri=_text(policy.get("uri", ""), f"{what}: policy.uri", empty=True),
            policy_digest=_sha256(policy.get("digest"), f"{what}: policy.digest"),
            time_verified=_time(p.get("timeVerified"), f"{what}: timeVerified"),
            result=_result(p.get("verificationResult"), f"{what}: verificationResult"),
            levels=_levels(p.get("verifiedLevels"), f"{what}: verifiedLevels"),
            inputs=_inputs(p.get("inputAttestations", []), f"{what}: inputAttestations"),
            dependency_levels=_counts(p.get("dependencyLevels", {}), f"{what}: dependencyLevels"),
            verifier_id=_uri(verifier.get("id"), f"{what}: verifier.id"),
            verifier_version=_strings(verifier.get("version", {}), f"{what}: verifier.version"),
            details={
                k: v for k, v in _object(details, f"{what}: {DETAILS_KEY}").items() if k != "schema"
            },
        )


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedDocumentError(f"{what}: expected an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedDocumentError(f"{what}: expected a list")
    return value


def _text(value: Any, what: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or not (value or empty):
        raise MalformedDocumentError(f"{what}: expected a non-empty string")
    return value


def _uri(value: Any, what: str) -> str:
    text = _text(value, what)
    if not _URI.fullmatch(text):
        raise MalformedDocumentError(f"{what}: {text!r} is not a URI")
    return text


def _sha256(value: Any, what: str) -> str:
    digest = _object(value, what).get("sha256")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise MalformedDocumentError(f"{what}: needs a lowercase hex sha256")
    return digest


def _time(value: Any, what: str) -> datetime:
    try:
        return parse_rfc3339(_text(value, what))
    except ValueError as exc:
        raise MalformedDocumentError(f"{what}: {exc}") from exc


def _result(value: Any, what: str) -> Result:
    if value not in (Result.PASSED.value, Result.FAILED.value):
        raise MalformedDocumentError(f"{what}: {value!r} is neither PASSED nor FAILED")
    return Result(value)


def _levels(value: Any, what: str) -> tuple[str, ...]:
    levels = _list(value, what)
    if not all(isinstance(v, str) and v for v in levels):
        raise MalformedDocumentError(f"{what}: expected a list of strings")
    if len(set(levels)) != len(levels):
        raise MalformedDocumentError(f"{what}: a level is listed twice")
    return tuple(levels)


def _inputs(value: Any, what: str) -> tuple[InputAttestation, ...]:
    out = []
    for i, item in enumerate(_list(value, what)):
        entry = _object(item, f"{what}[{i}]")
        out.append(
            InputAttestation(
                stage=_text(entry.get("name"), f"{what}[{i}].name"),
                uri=_text(entry.get("uri"), f"{what}[{i}].uri"),
                sha256=_sha256(entry.get("digest"), f"{what}[{i}].digest"),
            )
        )
    return tuple(out)


def _counts(value: Any, what: str) -> dict[str, int]:
    counts = _object(value, what)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()):
        raise MalformedDocumentError(f"{what}: counts must be non-negative integers")
    return dict(counts)


def _strings(value: Any, what: str) -> dict[str, str]:
    table = _object(value, what)
    if not all(isinstance(v, str) for v in table.values()):
        raise MalformedDocumentError(f"{what}: values must be strings")
    return dict(table)
