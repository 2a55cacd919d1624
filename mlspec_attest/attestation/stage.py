"""Build, sign and store one stage attestation (the work behind ``mlspec-attest sign``).

:func:`sign_stage` runs the steps in order: hash the materials
(:mod:`~mlspec_attest.attestation.artifacts`), run the stage's command
(:mod:`~mlspec_attest.attestation.runner`), collect what it wrote and hash the
products, compute the evidence recorded in ``details``
(:mod:`~mlspec_attest.attestation.details`), build the in-toto statement, sign
it, and only then write anything to the store.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from msgspec import Struct

from mlspec_attest import attestation
from mlspec_attest.attestation.artifacts import HashingOptions, descriptors, local_paths, ref_name
from mlspec_attest.attestation.details import add_computed, collect_outputs, material_rows
from mlspec_attest.attestation.record import (
    StageRecord,
    check_rfc3339,
    environment_facts,
    now_rfc3339,
    resolve_kind,
)
from mlspec_attest.errors import (
    BadInputError,
    CommandFailedError,
    MalformedDocumentError,
    UsageError,
)
from mlspec_attest.formats.bundle import Bundle, BundleSigner, sign_to_bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.signer import Signer
from mlspec_attest.formats.stages import StageKind, check_stage_name
from mlspec_attest.formats.statement import (
    CommandRecord,
    ResourceDescriptor,
    StageMetadata,
    StageStatement,
    check_finite_metrics,
)
from mlspec_attest.store.ledger import AttestationStore, check_run_id

__all__ = ["HashingOptions", "SignedStage", "StageRecord", "seen_attestations", "sign_stage"]

if TYPE_CHECKING:
    from mlspec_attest.attestation.runner import CommandResult


SIGN_RESULT_SCHEMA = "https://mlspec-attest.dev/sign-result/v1"


class SignedStage(Struct, frozen=True):
    """The result of signing one stage."""

    path: Path
    run_id: str
    statement: StageStatement
    bundle: Bundle

    def summary(self, signed_by: Mapping[str, Any]) -> dict[str, Any]:
        """The sign-result document (``sign --json``); ``signed_by`` names the signer
        (:func:`~mlspec_attest.attestation.signers.signer_summary`)."""
        return {
            "schemaVersion": SIGN_RESULT_SCHEMA,
            "stage": self.statement.metadata.stage,
            "runId": self.run_id,
            "attestation": os.fspath(self.path),
            **signed_by,
            "subjects": [p.to_json() for p in self.statement.products],
        }


def resolve_run_id(store: AttestationStore, run_id: str | None, *, new_run: bool) -> str:
    """The explicit run id, else the store's current run, else a fresh one.

    Without an explicit id the run is claimed at once, under the store lock
    (:meth:`AttestationStore.claim_run`): a fresh id becomes ``current-run`` before
    signing, so stages started in parallel all join it. An explicit id becomes the
    current run only when its attestation is written.
    """
    if run_id:
        return check_run_id(run_id)
    return store.claim_run(new_run=new_run)


def seen_attestations(store: AttestationStore, run_id: str | None) -> dict[str, list[str]]:
    """Payload digests, by the stage each claims, of the run's attestations right now.

    Recorded when a stage starts, this is causal evidence for ordering that does
    not rest on anyone's clock: a digest cannot be named before it exists. Nothing
    here is trusted; the verifier compares the digests with what it accepted.
    """
    if run_id is None or run_id not in store.runs():
        return {}
    seen: dict[str, set[str]] = {}
    for stored in store.attestations(run_id):
        stage, digest = stored.claimed_stage(), stored.payload_digest
        if stage is not None and digest is not None:
            seen.setdefault(stage, set()).add(digest)
    return {stage: sorted(digests) for stage, digests in sorted(seen.items())}


def sign_stage(
    record: StageRecord,
    signer: Signer | BundleSigner,
    store: AttestationStore,
    *,
    run_id: str | None = None,
    new_run: bool = False,
    base_dir: Path | None = None,
    command: Sequence[str] = (),
    echo: bool = True,
    quiet_stdout: bool = False,
    clock: Callable[[], str] = now_rfc3339,
    environment: Mapping[str, Any] | None = None,
    hashing: HashingOptions | None = None,
) -> SignedStage:
    """Hash materials, run ``command`` if given, hash products, sign and store.

    If the command fails, nothing is attested and :class:`CommandFailedError`
    carries its exit status. ``clock`` and ``environment`` exist so tests can
    produce byte-stable golden attestations.
    """
    check_stage_name(record.stage)
    kind = resolve_kind(record.stage, record.kind)
    base = base_dir or Path.cwd()
    if not record.products and not record.splits and not record.conversions:
        _no_products(record, "name what the stage writes")
    _note_predecessors(record, store, run_id, new_run=new_run)
    blobs: list[bytes] = []
    materials, material_digests = descriptors(record.materials, base, blobs, hashing)
    rows = material_rows(local_paths(record.materials), base, blobs, material_digests)
    result = _run(command, echo=echo, quiet_stdout=quiet_stdout)
    collect_outputs(record)
    if not record.products:
        _no_products(record, "name what the stage wrote")
    products, product_digests = descriptors(record.products, base, blobs, hashing)
    add_computed(
        record,
        objectives_stage=kind == StageKind.OBJECTIVES.value,
        base=base,
        store=store,
        blobs=blobs,
        product_digests=product_digests,
        material_rows=rows,
    )
    roles = _recorded_roles(record, [*materials, *products], base)
    resolved_run = resolve_run_id(store, run_id, new_run=new_run)
    check_rfc3339(record.started_on, "started_on")
    metadata = _metadata(record, kind, resolved_run, clock(), roles)
    statement = StageStatement(
        products=tuple(products),
        materials=tuple(materials),
        metadata=metadata,
        command=_command_record(command, result),
        environment=dict(environment) if environment is not None else environment_facts(),
    )
    return _sign_and_store(
        statement, signer, store, blobs, run_id=run_id, resolved_run=resolved_run
    )


def _note_predecessors(
    record: StageRecord, store: AttestationStore, run_id: str | None, *, new_run: bool
) -> None:
    """The run's attestations at the stage's start, unless the caller recorded them earlier."""
    if record.predecessors is None:
        record.predecessors = seen_attestations(
            store, run_id or (None if new_run else store.current_run())
        )


def _no_products(record: StageRecord, what: str) -> NoReturn:
    raise UsageError(
        f"stage {record.stage!r} has no products",
        remedy=f"{what} with {named('product')} (an in-toto Statement needs a subject)",
    )


def _run(command: Sequence[str], *, echo: bool, quiet_stdout: bool) -> CommandResult | None:
    """Run the stage's command, if any; a failure attests nothing."""
    if not command:
        return None
    result = attestation.run_command(list(command), echo=echo, stdout_to_stderr=quiet_stdout)
    if result.returncode != 0:
        raise CommandFailedError(list(command), result.returncode)
    return result


def _recorded_roles(
    record: StageRecord, recorded: Sequence[ResourceDescriptor], base: Path
) -> dict[str, str]:
    """Role -> artifact name; each role must name one of the stage's materials or products."""
    known = {d.name for d in recorded}
    roles: dict[str, str] = {}
    for role, path in record.roles.items():
        name = ref_name(path, base)
        if name not in known:
            raise UsageError(
                f"{named('role_path', role=role, path=path)}: "
                "not one of this stage's materials or products"
            )
        roles[role] = name
    return roles


def _metadata(
    record: StageRecord, kind: str, run_id: str, finished_on: str, roles: dict[str, str]
) -> StageMetadata:
    metadata = StageMetadata(
        stage=record.stage,
        kind=kind,
        run_id=run_id,
        started_on=record.started_on,
        finished_on=finished_on,
        policy_digest=record.policy_digest,
        parameters=record.parameters,
        metrics=check_finite_metrics(record.metrics, what=f"stage {record.stage}"),
        slices=record.slices,
        roles=roles,
        infrastructure=record.infrastructure,
        details=record.details,
    )
    # Round-trip through the schema so a bad value fails here, not at verify time.
    try:
        StageMetadata.from_json(metadata.to_json())
    except MalformedDocumentError as exc:
        raise BadInputError(f"stage {record.stage!r}: {exc.message}") from exc
    return metadata


def _command_record(command: Sequence[str], result: CommandResult | None) -> CommandRecord:
    return CommandRecord(
        argv=tuple(command),
        exit_code=result.returncode if result else None,
        stdout_sha256=result.stdout_sha256 if result else None,
        stderr_sha256=result.stderr_sha256 if result else None,
    )


def _sign_and_store(
    statement: StageStatement,
    signer: Signer | BundleSigner,
    store: AttestationStore,
    blobs: list[bytes],
    *,
    run_id: str | None,
    resolved_run: str,
) -> SignedStage:
    bundle, keyid = sign_to_bundle(statement.to_payload(), INTOTO_PAYLOAD_TYPE, signer)
    # Only now, with everything validated and signed, does anything reach the store.
    for blob in blobs:
        store.put_blob(blob)
    if run_id:
        # An implicit run was recorded when claimed; writing it again here could
        # move the marker back from a run another process started since.
        store.set_current_run(resolved_run)
    path = store.add(resolved_run, statement.metadata.stage, keyid, bundle)
    return SignedStage(path, resolved_run, statement, bundle)
