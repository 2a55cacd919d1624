"""OpenSSF model-signing (OMS) signatures, verified and made natively.

Verification (:func:`check_model` reports, :func:`verify_model` raises), in order:

1. **Read the bundle** — Sigstore bundle v0.3 JSON with one DSSE envelope
   (:class:`~mlspec_attest.errors.MalformedDocumentError`, exit 3, if it is not).
2. **Signature** — under the trust the caller names: an EC public key, a
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
   file itself and, for signatures that record no ignore paths, git metadata
   (``.git``, ``.gitattributes``, ``.github``, ``.gitignore``) as their signers did.
5. **Compare** — resource by resource: ``file-added``, ``file-removed``,
   ``digest-mismatch`` (plus ``symlink``/``special-file`` for entries a model
   cannot hold).

Signing (:func:`sign_model`, :func:`sign_model_sigstore`) writes exactly what
model-signing 1.x writes, so ``model_signing verify`` accepts it.

For the ``package`` stage, :func:`oms_evidence` summarizes a verified signature
as a small record and :func:`check_oms_evidence` checks a served model against
that record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlspec_attest.errors import (
    ArtifactPathError,
    BackendError,
    BadInputError,
    MalformedDocumentError,
    VerificationError,
    missing,
)
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.formats.fsutil import atomic_write
from mlspec_attest.interop.oms.manifest import (
    GIT_PATHS,
    PREDICATE_LEGACY,
    ModelManifest,
    Problem,
    Resource,
    Serialization,
    build_manifest,
    compare_resources,
    parse_statement,
    resource_sort_key,
    root_digest,
    split_shard_name,
)
from mlspec_attest.interop.oms.trust import (
    CertificateTrust,
    KeyTrust,
    OmsTrust,
    SigstoreTrust,
    _check_ec,
    verify_signature,
)
from mlspec_attest.signing.keys import LocalKeySigner
from mlspec_attest.verify.oms_evidence import EVIDENCE_SCHEMA, sha256_file

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
SIGNATURE_SCHEMA = "https://mlspec-attest.dev/model-signature/v1"


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
        return "\n".join(lines)


@dataclass(frozen=True)
class ModelVerification:
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


def _relative_inside(path: Path, root: Path) -> str | None:
    """``path`` relative to the folder ``root`` (posix), or None if it is not inside."""
    try:
        rel = path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    return rel.as_posix() if rel.parts else None


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


def check_model(
    model: Path,
    signature: Path,
    trust: OmsTrust,
    *,
    ignore_paths: Iterable[str] = (),
    ignore_git_paths: bool | None = None,
    workers: int | None = None,
) -> ModelVerification:
    """Verify ``model`` against the model-signing ``signature`` and report every problem.

    ``ignore_paths`` are model-relative paths left out besides those the
    signature records. ``ignore_git_paths``: None (default) leaves out git
    metadata only for signatures that record no ignore paths; True/False force it.
    Raises for malformed input (exit 3) or a missing Sigstore backend (exit 4);
    every denial is a problem in the returned report.
    """
    if not model.exists() and not model.is_symlink():
        raise ArtifactPathError(f"{model}: model not found")
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
    extra = set(ignore_paths)
    sig_rel = _relative_inside(signature, model) if model.is_dir() else None
    if sig_rel:
        extra.add(sig_rel)
    if ignore_git_paths is None and not signed.serialization.ignore_paths:
        extra.update(_implicit_git_paths(signed.resources, signed.serialization.method))
    elif ignore_git_paths:
        extra.update(GIT_PATHS)
    serialization = signed.serialization
    actual, walk_problems = build_manifest(
        model, serialization, extra_ignore=extra, workers=workers
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
    *,
    ignore_paths: Iterable[str] = (),
    ignore_git_paths: bool | None = None,
    workers: int | None = None,
) -> ModelVerification:
    """Like :func:`check_model`, but raise :class:`ModelSignatureDenied` unless it passed."""
    report = check_model(
        model,
        signature,
        trust,
        ignore_paths=ignore_paths,
        ignore_git_paths=ignore_git_paths,
        workers=workers,
    )
    if not report.passed:
        raise ModelSignatureDenied(report)
    return report


# --- signing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSignature:
    """A signature written by :func:`sign_model` or :func:`sign_model_sigstore`."""

    path: Path
    manifest: ModelManifest
    signer: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": SIGNATURE_SCHEMA,
            "result": "SIGNED",
            "signature": str(self.path),
            "signer": self.signer,
            "predicateType": "https://model_signing/signature/v1.0",
            "modelName": self.manifest.model_name,
            "serialization": self.manifest.serialization.to_json(),
            "rootDigest": {"sha256": self.manifest.root_digest},
            "resources": len(self.manifest.resources),
        }


def _manifest_to_sign(
    model: Path,
    signature: Path,
    serialization: Serialization,
    ignore_paths: Iterable[str],
    ignore_git_paths: bool,
    workers: int | None,
) -> ModelManifest:
    recorded = set(serialization.ignore_paths) | set(ignore_paths)
    sig_rel = _relative_inside(signature, model) if model.is_dir() else None
    if sig_rel:
        recorded.add(sig_rel)
    if ignore_git_paths:
        recorded.update(GIT_PATHS)
    planned = replace(serialization, ignore_paths=frozenset(recorded))
    manifest, problems = build_manifest(model, planned, workers=workers)
    if problems:
        raise ArtifactPathError(
            f"{model}: cannot sign this model: " + "; ".join(p.message for p in problems),
            remedy=problems[0].remedy or "remove the entries or ignore them with --ignore-paths",
        )
    return manifest


def sign_model(
    model: Path,
    signature: Path,
    signer: LocalKeySigner,
    *,
    serialization: Serialization | None = None,
    ignore_paths: Iterable[str] = (),
    ignore_git_paths: bool = True,
    workers: int | None = None,
) -> ModelSignature:
    """Sign ``model`` with an EC key, writing the bundle model-signing 1.x writes.

    ``ignore_paths`` (model-relative), the signature file when it lies inside
    the model, and git metadata (unless ``ignore_git_paths`` is False) are left
    out and recorded in the predicate.
    """
    _check_ec(signer.public_key.key, "signing key")
    manifest = _manifest_to_sign(
        model, signature, serialization or Serialization(), ignore_paths, ignore_git_paths, workers
    )
    envelope = Envelope.sign(manifest.payload(), INTOTO_PAYLOAD_TYPE, [signer], keyid_hint=False)
    public = signer.public_key
    bundle = Bundle.for_public_key(envelope, public.keyid).to_json()
    atomic_write(signature, json.dumps(bundle, separators=(",", ":")).encode())
    return ModelSignature(
        signature,
        manifest,
        {"method": "key", "keyid": public.keyid, "keyDetails": public.key_details},
    )


def sign_model_sigstore(
    model: Path,
    signature: Path,
    *,
    identity_token: str,
    trust_config: Path | None = None,
    serialization: Serialization | None = None,
    ignore_paths: Iterable[str] = (),
    ignore_git_paths: bool = True,
    workers: int | None = None,
) -> ModelSignature:
    """Sign ``model`` keyless with Sigstore (Fulcio certificate + Rekor entry); needs the network.

    ``trust_config`` is a ClientTrustConfig JSON naming the instance; without it
    the public-good production instance is used (its trust root is fetched by TUF).
    """
    try:
        from sigstore import errors as sigstore_errors
        from sigstore.dsse import Statement
        from sigstore.models import ClientTrustConfig
        from sigstore.oidc import IdentityError, IdentityToken
        from sigstore.sign import SigningContext
    except ImportError as exc:
        raise missing("sigstore", "Sigstore model signing", exc) from exc
    try:
        token = IdentityToken(identity_token)
    except IdentityError as exc:
        raise BadInputError(
            f"the identity token is not usable: {exc}",
            remedy="pass a fresh OIDC token with --identity-token or SIGSTORE_ID_TOKEN",
        ) from exc
    try:
        if trust_config is not None:
            config = ClientTrustConfig.from_json(trust_config.read_text())
        else:
            config = ClientTrustConfig.production()
    except OSError as exc:
        raise BadInputError(f"{trust_config}: cannot read ({exc.strerror})") from exc
    except sigstore_errors.Error as exc:
        raise BackendError(f"Sigstore trust configuration unavailable: {exc}") from exc
    except Exception as exc:
        raise MalformedDocumentError(f"{trust_config}: not a ClientTrustConfig ({exc})") from exc
    manifest = _manifest_to_sign(
        model, signature, serialization or Serialization(), ignore_paths, ignore_git_paths, workers
    )
    try:
        context = SigningContext.from_trust_config(config)
        with context.signer(token) as sigstore_signer:
            bundle = sigstore_signer.sign_dsse(Statement(manifest.payload()))
    except sigstore_errors.Error as exc:
        raise BackendError(f"Sigstore signing failed: {exc}") from exc
    atomic_write(signature, bundle.to_json().encode())
    return ModelSignature(
        signature,
        manifest,
        {"method": "sigstore", "identity": token.identity, "issuer": token.issuer},
    )


# --- package-stage evidence ------------------------------------------------------------------


def oms_evidence(
    model_dir: Path,
    signature_path: Path,
    trust: OmsTrust,
    *,
    ignore_paths: Iterable[str] = (),
    ignore_git_paths: bool | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Verify an existing model-signing signature and summarize it for the package stage.

    The record (``details.omsSignature``) is O(1) in the number of files: the
    signer, the serialization, the signed root digest, the canonical manifest
    digest, the ignore set actually applied and the signature file's sha256.
    Raises :class:`ModelSignatureDenied` if the model does not verify.
    """
    report = verify_model(
        model_dir,
        signature_path,
        trust,
        ignore_paths=ignore_paths,
        ignore_git_paths=ignore_git_paths,
        workers=workers,
    )
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
        "signature": {"name": signature_path.name, "sha256": sha256_file(signature_path)},
    }
