"""Build, sign and store one stage attestation (the work behind ``mlspec-attest sign``)."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec_attest._version import __version__
from mlspec_attest.attestation.runner import CommandResult, run_command
from mlspec_attest.digest.manifest import DEFAULT_SCHEME, ArtifactDigest, DigestScheme, digest_path
from mlspec_attest.errors import (
    ArtifactPathError,
    BadInputError,
    CommandFailedError,
    MalformedDocumentError,
    UsageError,
)
from mlspec_attest.evidence.metrics_file import read_metrics_document
from mlspec_attest.formats.bundle import Bundle, BundleSigner, sign_to_bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.fsutil import artifact_name
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.formats.limits import MAX_DSSE_PAYLOAD_BYTES
from mlspec_attest.formats.signer import Signer
from mlspec_attest.formats.stages import StageKind, parse_kind
from mlspec_attest.formats.statement import (
    CommandRecord,
    JSONScalar,
    ResourceDescriptor,
    StageMetadata,
    StageStatement,
    check_finite_metrics,
)
from mlspec_attest.store.ledger import AttestationStore, check_run_id

if TYPE_CHECKING:
    from mlspec_attest.digest.cache import DigestCache
    from mlspec_attest.digest.engine import ProgressSink

STAGE_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_.-"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_stage_name(name: str) -> str:
    if (
        not name
        or len(name) > 64
        or not name[0].isalnum()
        or any(c not in STAGE_NAME_CHARS for c in name)
    ):
        raise UsageError(
            f"stage name {name!r} is not valid",
            remedy="use lower-case letters, digits and . _ - (e.g. train, data-split)",
        )
    return name


def parse_param(text: str) -> tuple[str, JSONScalar]:
    """``K=V``; V is read as a JSON scalar when it is one (``0.1``, ``true``), else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--param {text!r} is not KEY=VALUE")
    try:
        value = json.loads(raw)
    except ValueError:
        return key, raw
    if isinstance(value, str | int | float | bool) or value is None:
        if isinstance(value, float) and not math.isfinite(value):  # NaN, Infinity, 1e999
            return key, raw
        return key, value
    return key, raw


@dataclass
class StageRecord:
    """Everything one stage will attest; filled in by the CLI or the Python API."""

    stage: str
    kind: str | None = None
    materials: list[Path] = field(default_factory=list)
    products: list[Path] = field(default_factory=list)
    parameters: dict[str, JSONScalar] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    slices: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, Path] = field(default_factory=dict)
    infrastructure: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    policy_digest: str | None = None
    metrics_file: Path | None = None
    detail_files: dict[str, Path] = field(default_factory=dict)
    splits: dict[str, Path] = field(default_factory=dict)
    conversions: dict[str, Path] = field(default_factory=dict)
    # Evidence computed after the stage's command ran: (details key, producer).
    evidence: list[tuple[str, Callable[[], Any]]] = field(default_factory=list)
    split_exclude_columns: tuple[str, ...] = ()
    started_on: str = field(default_factory=now_rfc3339)
    # Attestations of the run that existed when the stage started (see seen_attestations).
    predecessors: dict[str, list[str]] | None = None


@dataclass(frozen=True)
class SignedStage:
    """The result of signing one stage."""

    path: Path
    run_id: str
    statement: StageStatement
    bundle: Bundle


def resolve_kind(stage: str, kind: str | None) -> str:
    if kind is None:
        found = parse_kind(stage)
        return found.value if found else StageKind.CUSTOM.value
    if parse_kind(kind) is None:
        allowed = ", ".join(k.value for k in StageKind)
        raise UsageError(f"unknown stage kind {kind!r}", remedy=f"use one of: {allowed}")
    return kind


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


def check_rfc3339(value: str, what: str) -> str:
    from mlspec_attest.formats.rfc3339 import parse_rfc3339

    try:
        parse_rfc3339(value)
    except ValueError as exc:
        raise BadInputError(f"{what} {value!r} is not an RFC 3339 instant") from exc
    return value


@dataclass(frozen=True)
class HashingOptions:
    """How ``sign`` hashes materials and products.

    ``cache`` (opt-in) reuses digests of files whose (device, inode, size,
    mtime, ctime) did not change; it is for re-signing only, never verification.
    """

    scheme: DigestScheme = DEFAULT_SCHEME
    workers: int | None = None
    progress: ProgressSink | None = None
    cache: DigestCache | None = None

    @classmethod
    def from_env(cls) -> HashingOptions:
        """The scheme and cache named by the environment, as ``sign`` reads them.

        ``MLSPEC_ATTEST_DIGEST_ALGORITHM``, ``MLSPEC_ATTEST_DIGEST_SERIALIZATION``,
        ``MLSPEC_ATTEST_SHARD_SIZE`` and ``MLSPEC_ATTEST_DIGEST_CACHE``: set once for a
        pipeline, they make CLI and Python API stages hash alike (artifact rules
        compare digests of one scheme).
        """
        import os

        from mlspec_attest.digest.cache import cache_from_option
        from mlspec_attest.digest.manifest import DEFAULT_SHARD_SIZE

        size = os.environ.get("MLSPEC_ATTEST_SHARD_SIZE", "")
        try:
            shard_size = int(size) if size else DEFAULT_SHARD_SIZE
        except ValueError as exc:
            raise UsageError(f"MLSPEC_ATTEST_SHARD_SIZE={size!r} is not a number") from exc
        scheme = DigestScheme(
            os.environ.get("MLSPEC_ATTEST_DIGEST_ALGORITHM") or "sha256",
            os.environ.get("MLSPEC_ATTEST_DIGEST_SERIALIZATION") or "files",
            shard_size,
        )
        return cls(scheme=scheme, cache=cache_from_option(None))


def _descriptors(
    paths: Sequence[Path],
    base: Path,
    blobs: list[bytes],
    hashing: HashingOptions | None = None,
) -> tuple[list[ResourceDescriptor], dict[str, ArtifactDigest]]:
    """Digest each path; manifests are appended to ``blobs`` for storing later."""
    opts = hashing or HashingOptions()
    out: list[ResourceDescriptor] = []
    digests: dict[str, ArtifactDigest] = {}
    root = base.resolve()
    for path in paths:
        name = artifact_name(path, base)
        if name in digests:
            continue
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise ArtifactPathError(
                f"{path}: symlink points outside {base} (to {path.resolve()})",
                remedy="attest the real path, or copy the artifact into the pipeline directory",
            )
        digest = digest_path(
            path,
            scheme=opts.scheme,
            workers=opts.workers,
            progress=opts.progress,
            cache=opts.cache,
        )
        annotations: dict[str, Any] = {}
        if digest.manifest is not None:
            blobs.append(digest.manifest.canonical_bytes())
        if digest.kind == "directory":
            annotations = {"mlspec.kind": "directory", "mlspec.files": digest.files}
        annotations["mlspec.size"] = digest.size
        digests[name] = digest
        out.append(ResourceDescriptor(name, digest.digest_set(), annotations))
    return out, digests


def _sha256_of(digest: ArtifactDigest, path: Path) -> str:
    """The default-scheme digest (details records name it ``sha256``), re-hashing if needed."""
    return digest.digest if digest.scheme.is_default else digest_path(path).digest


def _conversion_sha256(digests: Mapping[str, ArtifactDigest], path: Path, base: Path) -> str:
    """sha256 of a conversion output: from its product digest, else hashed on its own."""
    name = artifact_name(path, base)
    if name in digests:
        return _sha256_of(digests[name], path)
    return digest_path(path).digest


def _store_objectives(
    products: Sequence[Path], base: Path, store: AttestationStore
) -> dict[str, Any]:
    """Validate the objectives document among ``products`` and keep its bytes in the store.

    The verifier reads the document back by the digest the signature covers, so
    the criteria it evaluates are exactly the ones signed here.
    """
    from mlspec_attest.policy.objectives import load_objectives_text, looks_like_objectives

    found: dict[str, Any] = {}
    for path in products:
        if path.is_dir() or path.suffix not in (".yaml", ".yml", ".json"):
            continue
        data = path.read_bytes()
        if not looks_like_objectives(data):
            continue
        if found:
            raise UsageError("an objectives stage may carry only one objectives document")
        objectives = load_objectives_text(data, what=str(path))
        found = {
            "objectives": {
                "artifact": artifact_name(path, base),
                "sha256": store.put_blob(data),
                "name": objectives.name,
                "version": objectives.version,
                "criteria": len(objectives.criteria),
            }
        }
    if not found:
        raise UsageError(
            "an objectives stage must produce an objectives document (kind: Objectives)",
            remedy="see docs/objectives.md; `mlspec-attest objectives init` prints a template",
        )
    return found


def _split_proof(record: StageRecord, base: Path, blobs: list[bytes]) -> dict[str, Any]:
    """The leakage proof of ``--split``s (docs/leakage.md); its digest sets join ``blobs``."""
    from mlspec_attest.evidence.leakage import prove_splits

    proof = prove_splits(record.splits, base_dir=base, exclude_columns=record.split_exclude_columns)
    blobs.extend(proof.blobs.values())
    return proof.record


def _material_rows(
    paths: Sequence[Path],
    base: Path,
    blobs: list[bytes],
    digests: Mapping[str, ArtifactDigest],
) -> dict[str, Any] | None:
    """Row fingerprints of the materials (``details.materialRows``); their sets join ``blobs``.

    They let the verifier recognise hold-back rows in whatever a stage read,
    under any name, format or compression (docs/leakage.md).
    """
    if not paths:
        return None
    from mlspec_attest.evidence.rowsets import fingerprint_materials

    found, material_blobs = fingerprint_materials(paths, base, digests)
    blobs.extend(material_blobs.values())
    return found


def _set_computed(details: dict[str, Any], key: str, value: Any) -> None:
    """Put evidence ``sign`` computes into ``details``; a supplied copy is refused."""
    if key in details:
        raise UsageError(
            f"details.{key} is computed by sign and cannot be supplied (--detail or detail())",
            remedy=f"remove the {key!r} detail; sign records it from the files themselves",
        )
    details[key] = value


def environment_facts() -> dict[str, Any]:
    return {
        "tool": {"name": "mlspec-attest", "version": __version__},
        "python": platform.python_version(),
        "platform": sys.platform,
        "machine": platform.machine(),
    }


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
        raise UsageError(
            f"stage {record.stage!r} has no products",
            remedy="name what the stage writes with --product PATH (an in-toto Statement needs a subject)",
        )
    if record.predecessors is None:
        record.predecessors = seen_attestations(
            store, run_id or (None if new_run else store.current_run())
        )
    blobs: list[bytes] = []
    materials, material_digests = _descriptors(record.materials, base, blobs, hashing)
    material_rows = _material_rows(record.materials, base, blobs, material_digests)
    result: CommandResult | None = None
    if command:
        result = run_command(list(command), echo=echo, stdout_to_stderr=quiet_stdout)
        if result.returncode != 0:
            raise CommandFailedError(list(command), result.returncode)
    if record.metrics_file is not None:
        # Read after the command: the command is usually what writes it.
        doc = read_metrics_document(record.metrics_file)
        record.metrics = {**doc.metrics, **record.metrics}
        record.slices = {**doc.slices, **record.slices}
        if doc.intervals:
            record.details.setdefault("confidenceIntervals", doc.intervals)
        if doc.omitted:
            record.details.setdefault("omittedMetrics", doc.omitted)
    for role, path in record.splits.items():
        # Each split is a product with its role; the leakage proof covers them.
        if path not in record.products:
            record.products.append(path)
        record.roles.setdefault(role, path)
    for path in record.conversions.values():
        # A conversion inside a directory product is covered by that product's
        # manifest; only a conversion written elsewhere becomes a product itself.
        inside = any(
            p.is_dir() and Path(os.path.abspath(path)).is_relative_to(os.path.abspath(p))
            for p in record.products
        )
        if not inside and path not in record.products:
            record.products.append(path)
    for name, path in record.detail_files.items():
        record.details[name] = load_file(
            path,
            what=f"--detail {name}={path}",
            max_bytes=MAX_DSSE_PAYLOAD_BYTES,
            kind="a detail record (it is signed inside the statement)",
        )
    for name, produce in record.evidence:
        record.details[name] = produce()
    record.details["predecessors"] = record.predecessors
    if not record.products:
        raise UsageError(
            f"stage {record.stage!r} has no products",
            remedy="name what the stage wrote with --product PATH (an in-toto Statement needs a subject)",
        )
    products, product_digests = _descriptors(record.products, base, blobs, hashing)
    if record.conversions:
        record.details["conversions"] = [
            {
                "format": fmt,
                "artifact": artifact_name(path, base),
                "sha256": _conversion_sha256(product_digests, path, base),
            }
            for fmt, path in sorted(record.conversions.items())
        ]
    if kind == StageKind.OBJECTIVES.value:
        record.details.update(_store_objectives(record.products, base, store))
    if record.splits:
        _set_computed(record.details, "leakage", _split_proof(record, base, blobs))
    if material_rows is not None:
        _set_computed(record.details, "materialRows", material_rows)
    known = {d.name for d in materials} | {d.name for d in products}
    roles: dict[str, str] = {}
    for role, path in record.roles.items():
        name = artifact_name(path, base)
        if name not in known:
            raise UsageError(f"--role {role}={path}: not one of this stage's materials or products")
        roles[role] = name
    resolved_run = resolve_run_id(store, run_id, new_run=new_run)
    check_rfc3339(record.started_on, "started_on")
    metadata = StageMetadata(
        stage=record.stage,
        kind=kind,
        run_id=resolved_run,
        started_on=record.started_on,
        finished_on=clock(),
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
    statement = StageStatement(
        products=tuple(products),
        materials=tuple(materials),
        metadata=metadata,
        command=CommandRecord(
            argv=tuple(command),
            exit_code=result.returncode if result else None,
            stdout_sha256=result.stdout_sha256 if result else None,
            stderr_sha256=result.stderr_sha256 if result else None,
        ),
        environment=dict(environment) if environment is not None else environment_facts(),
    )
    bundle, keyid = sign_to_bundle(statement.to_payload(), INTOTO_PAYLOAD_TYPE, signer)
    # Only now, with everything validated and signed, does anything reach the store.
    for blob in blobs:
        store.put_blob(blob)
    if run_id:
        # An implicit run was recorded when claimed; writing it again here could
        # move the marker back from a run another process started since.
        store.set_current_run(resolved_run)
    path = store.add(resolved_run, record.stage, keyid, bundle)
    return SignedStage(path, resolved_run, statement, bundle)


def roles_from_pairs(pairs: Mapping[str, str]) -> dict[str, Path]:
    return {k: Path(v) for k, v in pairs.items()}
