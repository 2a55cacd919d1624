"""OpenSSF model-signing (OMS) signatures, verified and made natively.

Verification (:func:`check_model` reports, :func:`verify_model` raises), in order:

1. **Read the bundle** — Sigstore bundle v0.3 JSON with one DSSE envelope
   (:class:`~mlspec_attest.errors.MalformedDocumentError`, exit 3, if it is not).
2. **Signature** — (:mod:`.signature_check`) under the trust the caller names: an EC public key, a
   certificate chain to a given root, or a Sigstore identity under an explicit
   trust root (problems ``signature``, ``key-hint``, ``certificate-chain``,
   ``certificate-usage``, ``sigstore``). Nothing below runs unless this passes.
3. **Statement** — predicate ``https://model_signing/signature/v1.0`` (or the
   legacy ``Digests/v0.1``); resource names that are absolute or contain ``..``,
   duplicates, and a subject digest that does not cover the resources are
   denied (``resource-name``, ``ignore-path``, ``root-digest``).
4. **Model** — MODEL is serialized again as the predicate records it (files or
   shards; sha256, blake2b or blake3; shard size; symlinks), leaving out the
   recorded ``ignore_paths`` (a set), the caller's ignore paths, the signature
   file itself — named by its path as given, never by where a symlink points; a
   signature reached through a symlink inside the model is refused (exit 3) — and,
   for signatures that record no ignore paths, git metadata (``.git``,
   ``.gitattributes``, ``.github``, ``.gitignore``) as their signers did.
5. **Compare** — resource by resource: ``file-added``, ``file-removed``,
   ``digest-mismatch`` (plus ``symlink``/``special-file`` for entries a model
   cannot hold).

Signing (:func:`sign_model`, :func:`sign_model_sigstore`, in :mod:`.sign`) writes
exactly what model-signing 1.x writes, so ``model_signing verify`` accepts it.

For the ``package`` stage, :func:`oms_evidence` summarizes a verified signature
as a small record and :func:`check_oms_evidence` checks a served model against
that record.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypedDict, Unpack

from msgspec import Struct, field
from msgspec.structs import replace

from mlspec_attest.digest.artifact import sha256_file
from mlspec_attest.errors import ArtifactPathError, VerificationError
from mlspec_attest.formats.printable import printable_lines
from mlspec_attest.interop.oms.manifest import (
    GIT_PATHS,
    PREDICATE_LEGACY,
    Problem,
    Resource,
    Serialization,
    SignedManifest,
    build_manifest,
    compare_resources,
    parse_statement,
    resource_sort_key,
    root_digest,
    split_shard_name,
)
from mlspec_attest.interop.oms.paths import signature_in_model
from mlspec_attest.interop.oms.sign import (
    SIGNATURE_SCHEMA,
    ModelSignature,
    sign_model,
    sign_model_sigstore,
)
from mlspec_attest.interop.oms.signature_check import verify_signature
from mlspec_attest.interop.oms.trust import CertificateTrust, KeyTrust, OmsTrust, SigstoreTrust
from mlspec_attest.verify.oms_evidence import EVIDENCE_SCHEMA

__all__ = [
    "EVIDENCE_SCHEMA",
    "REPORT_SCHEMA",
    "SIGNATURE_SCHEMA",
    "CertificateTrust",
    "KeyTrust",
    "ModelSignature",
    "ModelSignatureDenied",
    "ModelVerification",
    "OmsTrust",
    "Problem",
    "Serialization",
    "SigstoreTrust",
    "check_model",
    "oms_evidence",
    "sign_model",
    "sign_model_sigstore",
    "verify_model",
]

REPORT_SCHEMA = "https://mlspec-attest.dev/model-verification/v1"


class ModelSignatureDenied(VerificationError):
    """A model does not verify against its OpenSSF model-signing signature."""

    def __init__(self, report: ModelVerification) -> None:
        first = report.problems[0] if report.problems else None
        super().__init__(
            f"model signature denied: {first.message if first else 'unknown reason'}"
            + (f" (+{len(report.problems) - 1} more)" if len(report.problems) > 1 else ""),
            remedy=first.remedy if first else None,
        )
        self.report = report
        self.problems = [str(p) for p in report.problems]

    def diagnostics(self) -> str:
        lines = [self.message, *(f"  - {p}" for p in self.problems)]
        if self.remedy:
            lines.append(f"  fix: {self.remedy}")
        return printable_lines(lines)  # file names come from the model folder


class ModelVerification(Struct, frozen=True):
    """Everything :func:`check_model` found; ``passed`` only if there is no problem."""

    model: str
    signature: str
    method: str
    signer: dict[str, Any]
    problems: tuple[Problem, ...]
    predicate_type: str | None = None
    pae: str | None = None
    model_name: str | None = None
    serialization: Serialization | None = None
    subject_digest: str | None = None
    manifest_digest: str | None = None
    resources: int = 0
    ignored: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def legacy(self) -> bool:
        return self.predicate_type == PREDICATE_LEGACY

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": REPORT_SCHEMA,
            "result": "PASSED" if self.passed else "DENIED",
            "model": self.model,
            "signature": self.signature,
            "method": self.method,
            "signer": self.signer,
            "predicateType": self.predicate_type,
            "legacy": self.legacy,
            "pae": self.pae,
            "modelName": self.model_name,
            "serialization": self.serialization.to_json() if self.serialization else None,
            "rootDigest": {"sha256": self.subject_digest} if self.subject_digest else None,
            "manifestDigest": {"sha256": self.manifest_digest} if self.manifest_digest else None,
            "resources": self.resources,
            "ignored": list(self.ignored),
            "problems": [p.to_json() for p in self.problems],
            "notes": list(self.notes),
        }


def _implicit_git_paths(resources: Iterable[Resource], method: str) -> set[str]:
    """Git metadata the signers of signatures without recorded ignore paths left out.

    A git path the signature itself lists is not left out: an implicit default
    must never turn a signed file into a removed one.
    """
    listed = set()
    for r in resources:
        shard = split_shard_name(r.name) if method == "shards" else None
        listed.add((shard[0] if shard else r.name).split("/")[0])
    return {g for g in GIT_PATHS if g not in listed}


def _left_out(
    signature_name: str | None,
    signed: SignedManifest,
    ignore_paths: Iterable[str],
    ignore_git_paths: bool | None,
) -> set[str]:
    """What verification leaves out besides the recorded ignore paths: the caller's ignore
    paths, the signature file (``signature_name``, by its path as given) and git metadata."""
    extra = set(ignore_paths)
    if signature_name:
        extra.add(signature_name)
    if ignore_git_paths is None and not signed.serialization.ignore_paths:
        extra.update(_implicit_git_paths(signed.resources, signed.serialization.method))
    elif ignore_git_paths:
        extra.update(GIT_PATHS)
    return extra


class ModelCheckOptions(TypedDict, total=False):
    """How a model is checked against its signature, besides the trust."""

    ignore_paths: Iterable[str]
    """Model-relative paths left out besides those the signature records."""
    ignore_git_paths: bool | None
    """None (default): leave out git metadata only for signatures that record no ignore
    paths; True/False force it."""
    workers: int | None
    """Hashing threads; default: the digest engine's choice."""


def check_model(
    model: Path,
    signature: Path,
    trust: OmsTrust,
    **options: Unpack[ModelCheckOptions],
) -> ModelVerification:
    """Verify ``model`` against the model-signing ``signature`` and report every problem.

    ``options``: :class:`ModelCheckOptions`. Raises for malformed input (exit 3) or a missing Sigstore backend (exit 4);
    every denial is a problem in the returned report.
    """
    if not model.exists() and not model.is_symlink():
        raise ArtifactPathError(f"{model}: model not found")
    # Before anything is read: a signature reached through a symlink inside the model is refused.
    signature_name = signature_in_model(signature, model)
    checked = verify_signature(signature, trust)
    base = ModelVerification(
        str(model), str(signature), checked.method, checked.signer, checked.problems
    )
    if not checked.verified or checked.payload is None:
        return base
    signed = parse_statement(checked.payload)
    notes = list(checked.notes)
    if checked.pae != "dsse-v1":
        notes.append("signed with the pre-1.0 model-signing PAE (legacy format)")
    extra = _left_out(
        signature_name, signed, options.get("ignore_paths", ()), options.get("ignore_git_paths")
    )
    serialization = signed.serialization
    actual, walk_problems = build_manifest(
        model, serialization, extra_ignore=extra, workers=options.get("workers")
    )
    problems = [*signed.problems, *walk_problems]
    problems += compare_resources(signed.resources, actual.resources, method=serialization.method)
    names = {r.name for r in signed.resources}
    if names == {"."} and model.is_dir():
        notes.append("the signature covers a single file: pass that file as MODEL")
    ordered = sorted(
        signed.resources, key=lambda r: resource_sort_key(r.name, serialization.method)
    )
    return replace(
        base,
        problems=tuple(problems),
        predicate_type=signed.predicate_type,
        pae=checked.pae,
        model_name=signed.model_name,
        serialization=serialization,
        subject_digest=signed.subject_digest,
        manifest_digest=root_digest(ordered),
        resources=len(signed.resources),
        ignored=tuple(sorted(set(serialization.ignore_paths) | extra)),
        notes=tuple(notes),
    )


def verify_model(
    model: Path,
    signature: Path,
    trust: OmsTrust,
    **options: Unpack[ModelCheckOptions],
) -> ModelVerification:
    """Like :func:`check_model`, but raise :class:`ModelSignatureDenied` unless it passed."""
    report = check_model(model, signature, trust, **options)
    if not report.passed:
        raise ModelSignatureDenied(report)
    return report


# --- package-stage evidence ------------------------------------------------------------------


def oms_evidence(
    model_dir: Path,
    signature_path: Path,
    trust: OmsTrust,
    **options: Unpack[ModelCheckOptions],
) -> dict[str, Any]:
    """Verify an existing model-signing signature and summarize it for the package stage.

    The record (``details.omsSignature``) is O(1) in the number of files: the
    signer, the serialization, the signed root digest, the canonical manifest
    digest, the ignore set actually applied and the signature file's sha256.
    Raises :class:`ModelSignatureDenied` if the model does not verify.
    """
    report = verify_model(model_dir, signature_path, trust, **options)
    assert report.serialization is not None and report.manifest_digest is not None
    return {
        "schemaVersion": EVIDENCE_SCHEMA,
        "predicateType": report.predicate_type,
        "legacy": report.legacy,
        "pae": report.pae,
        "method": report.method,
        "signer": report.signer,
        "modelName": report.model_name,
        "serialization": report.serialization.to_json(),
        "rootDigest": {"sha256": report.subject_digest} if report.subject_digest else None,
        "manifestDigest": {"sha256": report.manifest_digest},
        "resources": report.resources,
        "ignorePaths": list(report.ignored),
        "signature": {"name": signature_path.name, "sha256": sha256_file(signature_path)[0]},
    }
