"""Keyless signing with Sigstore: a short-lived Fulcio certificate for an OIDC identity,
the signature recorded in Rekor. A backend of the :class:`~mlspec_attest.formats.bundle.BundleSigner` protocol.

The result is the bundle sigstore-python writes (v0.3: ``certificate`` +
``tlogEntries`` with inclusion proof, checkpoint and promise), held in our
:class:`~mlspec_attest.formats.bundle.Bundle` whose ``verification_material`` is kept
verbatim, so the store writes the same bytes sigstore-python would verify.

The identity token comes from ``--identity-token``, else ``SIGSTORE_ID_TOKEN``,
else ambient CI credentials (GitHub Actions, GitLab, Buildkite, CircleCI, Google
Cloud - via the ``id`` package); there is no interactive browser flow. The
instance comes from a ClientTrustConfig file, else the public-good production
or staging instance (their configuration is refreshed over TUF: signing needs
the network anyway). sigstore-python is imported only when this module is used.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography import x509

from mlspec_attest.errors import BackendError, BadInputError, MlspecError, UsageError, missing
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.inputs import named
from mlspec_attest.signing.sigstore.identity import CertificateIdentity, SigstoreIdentity
from mlspec_attest.signing.sigstore.trust_root import TrustRoot, load_signing_config, trust_root_of
from mlspec_attest.signing.sigstore.verify import verify_bundle

TOKEN_ENV = "SIGSTORE_ID_TOKEN"  # noqa: S105 - the name of a variable, not a secret


def _sigstore() -> Any:
    try:
        import sigstore.models
        import sigstore.oidc
        import sigstore.sign
    except ImportError as exc:
        raise missing("sigstore", f"keyless signing ({named('sigstore')})", exc) from exc
    return sigstore


def resolve_identity_token(explicit: str | None = None) -> str:
    """The OIDC token: explicit, else ``$SIGSTORE_ID_TOKEN``, else ambient CI credentials."""
    if explicit:
        return explicit
    from_env = os.environ.get(TOKEN_ENV)
    if from_env:
        return from_env
    sigstore = _sigstore()
    try:
        ambient = sigstore.oidc.detect_credential()
    except sigstore.errors.Error as exc:
        raise BackendError(
            f"ambient OIDC credentials were found but are not usable: {exc}",
            remedy="in GitHub Actions grant `permissions: id-token: write`",
        ) from exc
    if ambient:
        return str(ambient)
    raise UsageError(
        "keyless signing needs an OIDC identity token",
        remedy=f"pass {named('identity_token')} TOKEN, set {TOKEN_ENV}, or run in a CI system "
        "that provides OIDC credentials (GitHub Actions: permissions id-token: write)",
    )


class SigstoreSigner:
    """Signs DSSE payloads keyless; one instance signs as one identity."""

    def __init__(
        self, trust_config: Any, token: Any, *, source: str, ambient: bool = False
    ) -> None:
        self._config = trust_config
        self._token = token
        self._ambient = ambient
        self.source = source
        self.signed_as: CertificateIdentity | None = None

    @classmethod
    def create(
        cls,
        *,
        identity_token: str | None = None,
        trust_config: Path | None = None,
        staging: bool = False,
    ) -> SigstoreSigner:
        if trust_config is not None and staging:
            raise UsageError(f"choose one of {named('trust_config')} and {named('staging')}")
        ambient = not identity_token and not os.environ.get(TOKEN_ENV)
        token = _identity_token(resolve_identity_token(identity_token))
        config = load_signing_config(trust_config, staging=staging)
        source = str(trust_config) if trust_config else ("staging" if staging else "production")
        return cls(config, token, source=source, ambient=ambient)

    @property
    def identity(self) -> str:
        return str(self._token.identity)

    @property
    def issuer(self) -> str:
        return str(self._token.federated_issuer or self._token.issuer)

    @property
    def keyid(self) -> str:
        """Names the signer in the store (``<stage>.<keyid8>.sigstore.json``): one file per
        stage and identity, like one per stage and key."""
        return hashlib.sha256(f"{self.issuer}\n{self.identity}".encode()).hexdigest()

    def trust_root(self) -> TrustRoot:
        return trust_root_of(self._config, source=self.source)

    def sign_dsse_json(self, payload: bytes) -> str:
        """Sign the in-toto statement ``payload``; the bundle JSON sigstore-python wrote."""
        sigstore = _sigstore()
        import requests
        from sigstore._internal.fulcio.client import FulcioClientError
        from sigstore._internal.rekor import RekorClientError
        from sigstore.dsse import Statement

        statement = _statement_as_is(Statement, payload, sigstore.errors.Error)
        if self._ambient:
            # CI tokens live minutes and a stage may run for hours: ask again now.
            self._token = _identity_token(resolve_identity_token(None))
        try:
            context = sigstore.sign.SigningContext.from_trust_config(self._config)
            with context.signer(self._token, cache=True) as signer:
                bundle = signer.sign_dsse(statement)
        except (
            sigstore.errors.Error,
            FulcioClientError,
            RekorClientError,
            requests.RequestException,
            OSError,
        ) as exc:
            raise BackendError(
                f"Sigstore signing failed ({self.source}): {exc}",
                remedy=f"check the network and the instance in {named('trust_config')}; a token "
                "may also have expired (they live minutes)",
            ) from exc
        return str(bundle.to_json())

    def sign_statement_json(self, payload: bytes) -> str:
        """Sign the in-toto statement ``payload``; the bundle JSON as sigstore-python wrote it,
        verified against the instance's own trust root first."""
        text = self.sign_dsse_json(payload)
        self._self_check(json.loads(text), payload)
        return text

    def sign_envelope(self, payload: bytes, payload_type: str) -> Bundle:
        """The :class:`~mlspec_attest.formats.bundle.BundleSigner` method; the bundle is verified before returning."""
        if payload_type != INTOTO_PAYLOAD_TYPE:
            raise UsageError(
                f"Sigstore signs in-toto statements only, not {payload_type!r}",
                remedy="sign policies and other documents with a key",
            )
        doc = json.loads(self.sign_dsse_json(payload))
        bundle = Bundle.from_json(doc, what="Sigstore bundle")
        self._self_check(doc, payload)
        return bundle

    def _self_check(self, doc: dict[str, Any], payload: bytes) -> None:
        # Catch a broken or misconfigured instance now, not at deploy time.
        try:
            cert_identity = _certificate_identity(doc)
            rule = SigstoreIdentity(cert_identity.issuer or "", identity=cert_identity.primary)
            verified = verify_bundle(doc, trust=self.trust_root(), identities=[rule])
        except (MlspecError, ValueError, KeyError, TypeError) as exc:
            raise BackendError(
                f"the Sigstore instance ({self.source}) returned a bundle that does not "
                f"verify against its own trust root: {exc}"
            ) from exc
        if verified.payload != payload:
            raise BackendError("the Sigstore bundle signs another payload than requested")
        self.signed_as = verified.identity


# The subject digest algorithms sigstore-python's statement model accepts.
_SIGSTORE_SUBJECT_DIGESTS = frozenset(
    ("sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512")
)


def _statement_as_is(statement_type: Any, payload: bytes, error_type: Any) -> Any:
    """sigstore-python's ``Statement`` for ``payload``, whose bytes it signs unchanged.

    sigstore-python checks a statement against its own model before signing, and
    that model takes SHA-2 and SHA-3 subject digests only; the in-toto spec allows
    any algorithm, and ours name others: a directory product's subject is its
    ``manifest-sha256`` (``manifest-blake3`` ...), a blake3 scheme's file subject
    its ``blake3``. So the model checks a copy without those digests (type,
    subjects, predicate type: everything else), and the statement then carries
    our payload bytes, which are what ``sign_dsse`` puts in the envelope and
    signs (``Statement._contents``, the PAE body). Our own model built and checked
    the payload (statement.py), and :meth:`SigstoreSigner._self_check` verifies
    that the bundle signs exactly these bytes, so a sigstore-python that stopped
    signing ``_contents`` fails closed.
    """
    try:
        doc = json.loads(payload)
        checked = dict(doc)
        checked["subject"] = [
            {
                **subject,
                "digest": {
                    algorithm: value
                    for algorithm, value in subject["digest"].items()
                    if algorithm in _SIGSTORE_SUBJECT_DIGESTS
                },
            }
            for subject in doc["subject"]
        ]
        statement = statement_type(json.dumps(checked).encode())
    except (ValueError, TypeError, KeyError, AttributeError, error_type) as exc:
        raise BadInputError(f"not an in-toto statement sigstore can sign: {exc}") from exc
    if getattr(statement, "_contents", None) is None:
        raise BackendError(
            "this sigstore-python signs statements differently than mlspec-attest expects",
            remedy="install sigstore>=4.5,<5",
        )
    statement._contents = payload
    return statement


def _identity_token(raw: str) -> Any:
    sigstore = _sigstore()
    try:
        return sigstore.oidc.IdentityToken(raw)
    except sigstore.errors.Error as exc:
        raise BadInputError(
            f"the OIDC identity token is not usable: {exc}",
            remedy=f"pass a fresh token (audience 'sigstore') with {named('identity_token')} "
            f"or {TOKEN_ENV}",
        ) from exc


def _certificate_identity(doc: dict[str, Any]) -> CertificateIdentity:
    raw = doc["verificationMaterial"]["certificate"]["rawBytes"]
    return CertificateIdentity.from_certificate(
        x509.load_der_x509_certificate(base64.b64decode(raw))
    )
