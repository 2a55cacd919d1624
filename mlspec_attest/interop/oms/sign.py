"""Signing models in the OpenSSF model-signing v1.0 format: what model-signing 1.x writes.

:func:`sign_model` signs with an EC key (the bundle's ``publicKey.hint`` names
it); :func:`sign_model_sigstore` signs keyless through the one keyless signer,
:class:`~mlspec_attest.signing.sigstore.sign.SigstoreSigner` (ambient CI
credentials, staging, and the bundle verified against the instance's own trust
root before it is written).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from msgspec import Struct
from msgspec.structs import replace

from mlspec_attest.errors import ArtifactPathError, UsageError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.formats.fsutil import atomic_write
from mlspec_attest.formats.inputs import named
from mlspec_attest.interop.oms.manifest import (
    GIT_PATHS,
    ModelManifest,
    Serialization,
    build_manifest,
)
from mlspec_attest.interop.oms.paths import signature_in_model
from mlspec_attest.signing import schemes
from mlspec_attest.signing.keys import LocalKeySigner
from mlspec_attest.signing.schemes import Use
from mlspec_attest.signing.sigstore.sign import SigstoreSigner

SIGNATURE_SCHEMA = "https://mlspec-attest.dev/model-signature/v1"


class ModelSignature(Struct, frozen=True):
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
    sig_rel = signature_in_model(signature, model)
    if sig_rel:
        recorded.add(sig_rel)
    if ignore_git_paths:
        recorded.update(GIT_PATHS)
    planned = replace(serialization, ignore_paths=frozenset(recorded))
    manifest, problems = build_manifest(model, planned, workers=workers)
    if problems:
        raise ArtifactPathError(
            f"{model}: cannot sign this model: " + "; ".join(p.message for p in problems),
            remedy=problems[0].remedy
            or f"remove the entries or ignore them with {named('ignore_paths')}",
        )
    return manifest


def serialization_for(
    method: str, hash_type: str, allow_symlinks: bool, shard_size: int | None
) -> Serialization:
    """The serialization ``model sign`` options name (the shard size counts for shards only)."""
    if method == "shards" and hash_type == "blake3":
        raise UsageError(
            "blake3 is not sharded (it hashes one file on every core)",
            remedy=f"use {named('serialization')} files with {named('hash')} blake3",
        )
    return Serialization(
        method, hash_type, allow_symlinks, shard_size if method == "shards" else None
    )


def sign_model(
    model: Path,
    signature: Path,
    signer: LocalKeySigner | SigstoreSigner,
    *,
    serialization: Serialization | None = None,
    ignore_paths: Iterable[str] = (),
    ignore_git_paths: bool = True,
    workers: int | None = None,
) -> ModelSignature:
    """Sign ``model`` with an EC key or keyless, writing the bundle model-signing 1.x writes.

    ``ignore_paths`` (model-relative), the signature file when it lies inside
    the model, and git metadata (unless ``ignore_git_paths`` is False) are left
    out and recorded in the predicate.
    """
    if isinstance(signer, LocalKeySigner):
        schemes.check_public(signer.public_key.key, "signing key", Use.OMS)
    manifest = _manifest_to_sign(
        model, signature, serialization or Serialization(), ignore_paths, ignore_git_paths, workers
    )
    if isinstance(signer, SigstoreSigner):
        atomic_write(signature, signer.sign_statement_json(manifest.payload()).encode())
        who = {"method": "sigstore", "identity": signer.identity, "issuer": signer.issuer}
        return ModelSignature(signature, manifest, who)
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
    identity_token: str | None = None,
    trust_config: Path | None = None,
    staging: bool = False,
    serialization: Serialization | None = None,
    ignore_paths: Iterable[str] = (),
    ignore_git_paths: bool = True,
    workers: int | None = None,
) -> ModelSignature:
    """Sign ``model`` keyless with Sigstore (Fulcio certificate + Rekor entry); needs the network.

    The token is ``identity_token``, else ``$SIGSTORE_ID_TOKEN``, else ambient CI
    credentials. ``trust_config`` is a ClientTrustConfig JSON naming the instance;
    without it the public-good production (or ``staging``) instance is used.
    """
    signer = SigstoreSigner.create(
        identity_token=identity_token, trust_config=trust_config, staging=staging
    )
    return sign_model(
        model,
        signature,
        signer,
        serialization=serialization,
        ignore_paths=ignore_paths,
        ignore_git_paths=ignore_git_paths,
        workers=workers,
    )
