"""The one Sigstore trust-root loader: TrustedRoot and ClientTrustConfig documents, by exact mediaType.

Every path that needs a Sigstore trust root comes here: ``bundle verify``,
signed policies, stage verification, OMS model signatures (``model verify
--trust-config``) and keyless signing (:func:`load_signing_config`, the
instance a signer talks to). A document's ``mediaType`` must be exactly one
of :data:`TRUSTED_ROOT_MEDIA_TYPE` or :data:`CLIENT_TRUST_CONFIG_MEDIA_TYPE`,
never a substring of it. sigstore-python is imported only when a trust root
is turned into its object (:meth:`TrustRoot.sigstore`) or fetched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from mlspec_attest.errors import BackendError, MalformedDocumentError, UsageError, missing
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.jsonio import canonical, load_file, loads_strict

if TYPE_CHECKING:
    from sigstore.models import TrustedRoot as SigstoreTrustedRoot

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
CLIENT_TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
# The TUF repositories whose trust roots sigstore-python embeds.
INSTANCES = {
    "production": "https://tuf-repo-cdn.sigstore.dev",
    "staging": "https://tuf-repo-cdn.sigstage.dev",
}


class TrustRoot(Struct, frozen=True):
    """A Sigstore trusted root (the ``TrustedRoot`` JSON), and where it came from.

    Nothing here fetches anything except :meth:`refreshed`, which exists for an
    explicit ``--refresh-trust``.
    """

    document: Mapping[str, Any]
    source: str = ""

    def __eq__(self, other: object) -> bool:
        """Two roots are equal when their documents are, wherever each was read from."""
        return type(other) is TrustRoot and self.document == other.document

    def __hash__(self) -> int:
        return hash(self.digest)

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(canonical(dict(self.document))).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "digest": self.digest}

    def to_json(self) -> dict[str, Any]:
        return dict(self.document)

    @classmethod
    def from_json(cls, doc: Any, *, source: str) -> TrustRoot:
        """Accept a TrustedRoot or a ClientTrustConfig (its ``trustedRoot`` is used)."""
        if not isinstance(doc, dict):
            raise MalformedDocumentError(f"{source}: a Sigstore trust root must be a JSON object")
        media_type = doc.get("mediaType")
        if media_type == CLIENT_TRUST_CONFIG_MEDIA_TYPE:
            doc = doc.get("trustedRoot")
            if not isinstance(doc, dict):
                raise MalformedDocumentError(f"{source}: ClientTrustConfig without trustedRoot")
            media_type = doc.get("mediaType")
        if media_type != TRUSTED_ROOT_MEDIA_TYPE:
            raise MalformedDocumentError(
                f"{source}: mediaType {media_type!r} is neither a Sigstore TrustedRoot "
                f"({TRUSTED_ROOT_MEDIA_TYPE}) nor a ClientTrustConfig",
            )
        return cls(doc, source)

    @classmethod
    def from_file(cls, path: Path, *, source: str | None = None) -> TrustRoot:
        doc = load_file(path, what=f"trust root {path}")
        return cls.from_json(doc, source=source or str(path))

    @classmethod
    def embedded(cls, instance: str) -> TrustRoot:
        """The trusted root sigstore-python ships for ``production`` or ``staging`` (offline)."""
        url = _instance_url(instance)
        try:
            from sigstore._utils import read_embedded
        except ImportError as exc:
            raise missing("sigstore", f"the embedded {instance} trust root", exc) from exc
        try:
            data = read_embedded("trusted_root.json", url)
        except FileNotFoundError as exc:
            raise BackendError(f"sigstore-python ships no trusted root for {url}") from exc
        version = _sigstore_version()
        return cls.from_json(
            loads_strict(data, what=f"embedded {instance} trust root"),
            source=f"instance:{instance} (embedded in sigstore {version})",
        )

    @classmethod
    def refreshed(cls, instance: str) -> TrustRoot:
        """The current trusted root of ``instance``, fetched over TUF (network!)."""
        url = _instance_url(instance)
        try:
            from sigstore import errors as sigstore_errors
            from sigstore.models import ClientTrustConfig
        except ImportError as exc:
            raise missing("sigstore", f"refreshing the {instance} trust root", exc) from exc
        try:
            config = ClientTrustConfig.from_tuf(url, offline=False)
        except sigstore_errors.Error as exc:
            raise BackendError(f"cannot refresh the {instance} trust root over TUF: {exc}") from exc
        doc = json.loads(config.trusted_root._inner.to_json())
        return cls.from_json(doc, source=f"instance:{instance} (refreshed over TUF from {url})")

    def sigstore(self) -> SigstoreTrustedRoot:
        """The sigstore-python object (parses and checks the document)."""
        return load_trusted_root(self.document, self.source)


def _instance_url(instance: str) -> str:
    try:
        return INSTANCES[instance]
    except KeyError:
        raise UsageError(
            f"unknown Sigstore instance {instance!r}", remedy="use production or staging"
        ) from None


def _sigstore_version() -> str:
    try:
        from importlib.metadata import version

        return version("sigstore")
    except Exception:  # pragma: no cover - metadata missing only in broken installs
        return "?"


def load_trusted_root(document: Mapping[str, Any], source: str) -> SigstoreTrustedRoot:
    """Parse a TrustedRoot document into sigstore-python's object (strict)."""
    try:
        from sigstore import errors as sigstore_errors
        from sigstore.models import TrustedRoot
        from sigstore_models.trustroot import v1 as trustroot_v1
    except ImportError as exc:
        raise missing("sigstore", "verifying Sigstore bundles", exc) from exc
    try:
        inner = trustroot_v1.TrustedRoot.from_json(json.dumps(dict(document)))
        return TrustedRoot(inner)
    except (ValueError, TypeError, sigstore_errors.Error) as exc:
        raise MalformedDocumentError(
            f"trust root {source}: not a usable TrustedRoot ({exc})"
        ) from exc


def load_signing_config(path: Path | None, *, staging: bool = False) -> Any:
    """The sigstore ``ClientTrustConfig`` a signer uses: ``path``, else production (or staging) via TUF."""
    try:
        import sigstore.models
        from sigstore import errors as sigstore_errors
    except ImportError as exc:
        raise missing("sigstore", f"keyless signing ({named('sigstore')})", exc) from exc
    if path is not None:
        doc = load_file(path, what=f"trust config {path}")
        media_type = doc.get("mediaType") if isinstance(doc, dict) else None
        try:
            if media_type != CLIENT_TRUST_CONFIG_MEDIA_TYPE:
                raise ValueError(f"mediaType {media_type!r}")
            return sigstore.models.ClientTrustConfig.from_json(json.dumps(doc))
        except (ValueError, TypeError, sigstore_errors.Error) as exc:
            raise MalformedDocumentError(
                f"trust config {path}: not a Sigstore ClientTrustConfig ({exc})",
                remedy="pass the ClientTrustConfig JSON of the instance (mediaType "
                f"{CLIENT_TRUST_CONFIG_MEDIA_TYPE})",
            ) from exc
    try:
        if staging:
            return sigstore.models.ClientTrustConfig.staging()
        return sigstore.models.ClientTrustConfig.production()
    except sigstore_errors.Error as exc:
        instance = "staging" if staging else "production"
        raise BackendError(
            f"cannot load the Sigstore {instance} configuration over TUF: {exc}",
            remedy=f"check the network, or pass {named('trust_config')} FILE for a private instance",
        ) from exc


def trust_root_of(signing_config: Any, *, source: str) -> TrustRoot:
    """The trusted root inside a sigstore ``ClientTrustConfig`` (what a signer checks its bundle against)."""
    doc = json.loads(signing_config.trusted_root._inner.to_json())
    return TrustRoot.from_json(doc, source=source)
