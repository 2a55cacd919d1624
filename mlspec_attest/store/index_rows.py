"""What one bundle of the store contributes to the index: rows, read without trusting them.

Every value here is what a bundle *claims*: no signature is checked, no key is trusted.
The index built from these rows is a cache for questions ("which runs did key K sign?"),
never evidence for a verification decision (:mod:`mlspec_attest.store.index`).
A bundle that does not parse becomes a row with its error, never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from msgspec import Struct, field

from mlspec_attest.errors import MlspecError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.formats.limits import MAX_BUNDLE_BYTES
from mlspec_attest.formats.statement import ResourceDescriptor, StageStatement
from mlspec_attest.formats.vsa import VerificationSummary, summary_digest

#: Reads who a keyless bundle's certificate names: ``(identity, issuer)``. The store
#: layer cannot parse X.509 (that is ``signing/``); a caller above passes a reader.
IdentityReader = Callable[[Bundle], tuple[str | None, str | None]]


def no_identity(bundle: Bundle) -> tuple[str | None, str | None]:
    """The reader used when none is given: keyless identities are left unknown."""
    return None, None


class Artifact(Struct, frozen=True):
    """One material or product (or a summary's subject) with its digest set."""

    side: str  # "material" | "product" | "subject"
    name: str
    role: str | None
    digests: dict[str, str]


class Signer(Struct, frozen=True):
    """Who the bundle says signed it (claimed, not verified)."""

    keyid: str | None = None
    identity: str | None = None
    issuer: str | None = None
    signed_time: str | None = None

    @classmethod
    def of(cls, bundle: Bundle, identity_of: IdentityReader) -> Signer:
        identity, issuer = identity_of(bundle) if bundle.is_keyless else (None, None)
        return cls(bundle.key_hint, identity, issuer, _integrated_time(bundle))


class AttestationRow(Struct, frozen=True):
    """One stage attestation file as the index records it."""

    run_id: str
    file: str
    stage: str | None = None
    kind: str | None = None
    payload_digest: str | None = None
    signer: Signer = field(default_factory=Signer)
    policy_digest: str | None = None
    claimed_run: str | None = None
    started_on: str | None = None
    finished_on: str | None = None
    command: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: tuple[Artifact, ...] = ()
    error: str | None = None


class SummaryRow(Struct, frozen=True):
    """One stored verification summary as the index records it."""

    file: str
    payload_digest: str | None = None
    run_id: str | None = None
    result: str | None = None
    policy_digest: str | None = None
    time_verified: str | None = None
    signer: Signer = field(default_factory=Signer)
    subjects: tuple[Artifact, ...] = ()
    inputs: tuple[tuple[str, str, str], ...] = ()  # (stage, uri, sha256)
    error: str | None = None


def read_bundle(path: Any, what: str) -> Bundle:
    """A bundle file, read boundedly and strictly (the store's own rules)."""
    doc = load_file(path, max_bytes=MAX_BUNDLE_BYTES, kind="a Sigstore bundle")
    return Bundle.from_json(doc, what=what)


def read_stored(path: Path, what: str) -> tuple[Bundle | None, str | None]:
    """A file of the store as the store reads it: ``(bundle, None)``, or ``(None, why not)``
    for one that is not a regular file or does not parse."""
    if not path.is_file():
        return None, f"{path.name}: not a regular file (a directory, FIFO, device or dangling link)"
    try:
        return read_bundle(path, what), None
    except MlspecError as exc:
        return None, exc.message


def attestation_row(
    run_id: str, file: str, bundle: Bundle | None, error: str | None, identity_of: IdentityReader
) -> AttestationRow:
    """The row of one attestation file; a malformed one keeps its error and its file name."""
    stage_guess = file.rsplit("/", 1)[-1].split(".", 1)[0]
    if bundle is None:
        return AttestationRow(run_id, file, stage=stage_guess, error=error or "unreadable")
    digest = "sha256:" + summary_digest(bundle.envelope.payload)
    signer = Signer.of(bundle, identity_of)
    try:
        statement = StageStatement.from_payload(bundle.envelope.payload, what=file)
    except MlspecError as exc:
        return AttestationRow(run_id, file, stage_guess, None, digest, signer, error=exc.message)
    meta = statement.metadata
    roles = {path: role for role, path in meta.roles.items()}
    artifacts = tuple(
        [_artifact("material", d, roles) for d in statement.materials]
        + [_artifact("product", d, roles) for d in statement.products]
    )
    return AttestationRow(
        run_id=run_id,
        file=file,
        stage=meta.stage,
        kind=meta.kind,
        payload_digest=digest,
        signer=signer,
        policy_digest=meta.policy_digest,
        claimed_run=meta.run_id,
        started_on=meta.started_on,
        finished_on=meta.finished_on,
        command=statement.command.argv,
        parameters=dict(meta.parameters),
        metrics=dict(meta.metrics),
        artifacts=artifacts,
    )


def summary_row(
    file: str, bundle: Bundle | None, error: str | None, identity_of: IdentityReader
) -> SummaryRow:
    """The row of one stored verification summary."""
    if bundle is None:
        return SummaryRow(file, error=error or "unreadable")
    digest = summary_digest(bundle.envelope.payload)
    signer = Signer.of(bundle, identity_of)
    try:
        vsa = VerificationSummary.from_payload(bundle.envelope.payload, what=file)
    except MlspecError as exc:
        return SummaryRow(file, digest, signer=signer, error=exc.message)
    return SummaryRow(
        file=file,
        payload_digest=digest,
        run_id=vsa.run_id,
        result=vsa.result.value,
        policy_digest=vsa.policy_digest,
        time_verified=vsa.time_verified.isoformat(),
        signer=signer,
        subjects=tuple(Artifact("subject", s.name, s.name, dict(s.digest)) for s in vsa.subjects),
        inputs=tuple((i.stage, i.uri, i.sha256) for i in vsa.inputs),
    )


def _artifact(side: str, descriptor: ResourceDescriptor, roles: dict[str, str]) -> Artifact:
    return Artifact(side, descriptor.name, roles.get(descriptor.name), dict(descriptor.digest))


def _integrated_time(bundle: Bundle) -> str | None:
    """The first transparency-log entry's integrated time (seconds), as the bundle claims it."""
    entries = bundle.verification_material.get("tlogEntries")
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        return None
    value = entries[0].get("integratedTime")
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def as_json(value: Any) -> str:
    """How JSON columns are written: sorted keys, so equal values compare equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
