"""Offline verification of Sigstore bundles: an explicit trust root and an explicit identity policy.

:func:`verify_bundle` checks one bundle (v0.1 - v0.3, DSSE or message signature)
and returns what it proved (:class:`VerifiedBundle`) or raises:

* :class:`~mlspec_attest.errors.SigstoreVerificationError` (exit 1) - the bundle
  does not verify: certificate chain or SCT, transparency-log inclusion proof,
  checkpoint or promise, signed time, signature, artifact digest; its subclass
  :class:`IdentityMismatchError` when everything verifies but the certificate
  belongs to an identity no rule allows (it carries the identity found);
* :class:`~mlspec_attest.errors.MalformedDocumentError` (exit 3) - the bundle or
  trust root does not parse;
* :class:`~mlspec_attest.errors.BackendError` (exit 4) - sigstore-python is not
  installed, or no trust root was given for a bundle that needs one.

Two kinds of bundles:

* **certificate** (keyless): verified by sigstore-python's ``Verifier`` against
  the given :class:`TrustRoot` (never fetched), with the gaps of sigstore 4.5
  closed in :mod:`._compat` (Rekor ``intoto`` entries, inclusive TSA
  validity end); the certificate identity must match one :class:`SigstoreIdentity`.
* **public key** (``publicKey.hint``): :mod:`.key_bundle` checks the signature
  with the key the caller gives; when a trust root is given too, the bundle's
  transparency-log entry (inclusion proof, checkpoint, promise), signed times and
  entry body are verified as well. Bundles written by ``mlspec-attest sign --key``
  carry no log entry and verify without sigstore-python.

This is the one Sigstore verification path: ``bundle verify`` (:mod:`.bundle_check`),
stage verification (:mod:`mlspec_attest.verify.signers`), keyless signing's
self-check (:mod:`.sign`) and OpenSSF model-signing signatures
(:mod:`mlspec_attest.interop.oms.signature_check`) all call :func:`verify_bundle`. Identities live in :mod:`.identity`, trust roots in
:mod:`.trust_root`, results in :mod:`.result`.

This module imports sigstore-python only when a bundle needs it (~0.2 s).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlspec_attest.digest.single import digest_file
from mlspec_attest.errors import (
    ArtifactPathError,
    BackendError,
    BadInputError,
    MalformedDocumentError,
    SigstoreVerificationError,
    UsageError,
)
from mlspec_attest.formats.bundle import check_document
from mlspec_attest.formats.inputs import named
from mlspec_attest.signing.keys import LocalPublicKey
from mlspec_attest.signing.sigstore.identity import (
    SigstoreIdentity,
)
from mlspec_attest.signing.sigstore.key_bundle import verify_with_key
from mlspec_attest.signing.sigstore.result import VerifiedBundle
from mlspec_attest.signing.sigstore.subject import check_subject
from mlspec_attest.signing.sigstore.trust_root import (
    TrustRoot,
)

__all__ = ["sha256_file", "verify_bundle"]


def verify_bundle(
    doc: Any,
    *,
    trust: TrustRoot | None,
    identities: Sequence[SigstoreIdentity] = (),
    key: LocalPublicKey | None = None,
    artifact_sha256: str | None = None,
    artifact_is_file: bool = True,
    now: datetime | None = None,
    what: str = "bundle",
) -> VerifiedBundle:
    """Verify the Sigstore bundle ``doc`` (parsed JSON) offline; see the module docstring.

    ``artifact_sha256`` (hex) is what was signed: for a DSSE bundle an in-toto
    subject must carry it, for a message signature the signature covers it. It is
    a file's digest unless ``artifact_is_file`` is False (a digest given as such,
    which may also name a directory subject: :mod:`.subject`).
    """
    if not isinstance(doc, dict):
        raise MalformedDocumentError(f"{what}: a Sigstore bundle must be a JSON object")
    material = doc.get("verificationMaterial")
    if not isinstance(material, dict):
        raise MalformedDocumentError(f"{what}: missing verificationMaterial")
    check_document(doc, what)  # the one document check: mediaType, no unknown field
    if artifact_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", artifact_sha256):
        raise UsageError(f"artifact digest {artifact_sha256!r} is not a hex sha256")
    keyless = "certificate" in material or "x509CertificateChain" in material
    if keyless:
        if not identities:
            if key is not None:
                raise SigstoreVerificationError(
                    f"{what}: signed with a Sigstore certificate, not with the public key given",
                    remedy=f"verify keyless bundles with {named('identity')}/{named('identity_regex')} "
                    f"and {named('issuer')}",
                )
            raise UsageError(
                f"{what}: a keyless bundle needs an identity policy",
                remedy=f"name the signer: {named('identity')} ID (or {named('identity_regex')} RE) "
                f"and {named('issuer')} URL",
            )
        if trust is None:
            raise BackendError(
                f"{what}: no Sigstore trust root to verify a keyless bundle against",
                remedy=f"pass {named('trusted_root')} FILE, {named('trust_config')} FILE "
                f"or {named('instance')} NAME",
            )
        return _verify_keyless(doc, trust, identities, artifact_sha256, artifact_is_file, what)
    if "publicKey" not in material:
        raise MalformedDocumentError(
            f"{what}: verificationMaterial names neither a certificate nor a public key"
        )
    if key is None:
        raise SigstoreVerificationError(
            f"{what}: signed with a public key (not a Sigstore certificate), and no key was given",
            remedy=f"verify it with {named('key')} PUBKEY",
        )
    return verify_with_key(
        doc, key, trust, artifact_sha256, now or datetime.now(UTC), what, artifact_is_file
    )


def _verify_keyless(
    doc: dict[str, Any],
    trust: TrustRoot,
    identities: Sequence[SigstoreIdentity],
    artifact_sha256: str | None,
    artifact_is_file: bool,
    what: str,
) -> VerifiedBundle:
    # sigstore-python is optional (key bundles verify without it): loaded only here.
    from mlspec_attest.signing.sigstore import _compat

    if "dsseEnvelope" not in doc and artifact_sha256 is None:
        raise UsageError(
            f"{what}: a message signature covers an artifact; pass it",
            remedy=f"{named('artifact')} FILE or {named('digest')} sha256:HEX",
        )
    outcome = _compat.verify_certificate_bundle(
        json.dumps(doc),
        trust,
        identities,
        bytes.fromhex(artifact_sha256) if artifact_sha256 else None,
        what,
    )
    if outcome.payload_type is not None and outcome.payload is not None:
        check_subject(
            outcome.payload_type,
            outcome.payload,
            artifact_sha256,
            what,
            artifact_is_file=artifact_is_file,
        )
    return outcome


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (what a bundle signs), by the one file hasher."""
    try:
        return digest_file(os.fspath(path))[0].hex()
    except ArtifactPathError as exc:
        if not os.path.lexists(path):
            raise BadInputError(f"{path}: artifact not found") from exc
        raise
