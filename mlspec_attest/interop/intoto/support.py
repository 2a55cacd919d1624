"""Shared plumbing for in-toto interop: the optional dependency, keys and metadata files.

in-toto's own libraries do the format work: ``in_toto.models`` parses legacy
Metablocks and DSSE envelopes and verifies their signatures, and
securesystemslib converts keys and signs. They are core dependencies imported
lazily; an installation without them makes every in-toto feature raise
:class:`BackendError` (exit 4) through :mod:`mlspec_attest.errors`.
"""

from __future__ import annotations

import binascii
import importlib
from pathlib import Path
from typing import Any

from mlspec_attest.errors import MalformedDocumentError, MlspecError, install_hint, require
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, b64decode_strict
from mlspec_attest.formats.jsonio import load_file, loads_strict
from mlspec_attest.signing.keys import LocalPublicKey, load_public_key

INSTALL_HINT = install_hint(None)
LINK_SUFFIX = ".link"


def require_intoto() -> None:
    """Fail closed, with :mod:`mlspec_attest.errors`' error, when in-toto is missing."""
    require("in_toto.models.metadata", "in-toto interop (layouts and links)")
    require("securesystemslib.signer", "in-toto interop (layouts and links)")


def lib(module: str) -> Any:
    """Import an in-toto or securesystemslib module on first use.

    Going through ``importlib`` keeps both libraries optional at import time and
    out of mypy's view (in-toto ships no type information; its objects are
    handled as ``Any`` here and validated by in-toto itself).
    """
    require_intoto()
    return importlib.import_module(module)


def link_filename(step: str, keyid: str) -> str:
    """in-toto's ``<step>.<keyid8>.link`` (``in_toto.models.link.FILENAME_FORMAT``)."""
    return f"{step}.{keyid[:8]}{LINK_SUFFIX}"


def sslib_key_dict(public: LocalPublicKey) -> dict[str, Any]:
    """The in-toto key dict of ``public``, exactly as ``in-toto-verify`` loads a PEM key.

    securesystemslib picks the scheme (``rsassa-pss-sha256``, ``ecdsa-sha2-nistp256``/
    ``nistp384``, ``ed25519``) and computes the keyid: the SHA-256 of the canonical
    JSON of the key without its private part. It differs from mlspec-attest's keyid
    (the SHA-256 of the SPKI PEM), so link file names use this one.
    """
    try:
        key = lib("securesystemslib.signer").SSlibKey.from_crypto(public.key)
    except ValueError as exc:  # a key type securesystemslib cannot express
        raise MalformedDocumentError(f"key {public.keyid[:16]}: {exc}") from exc
    out: dict[str, Any] = dict(key.to_dict())
    out["keyid"] = str(key.keyid)
    return out


def load_layout_key(path: Path) -> dict[str, Any]:
    """Load a layout verification key (SPKI PEM), as ``in-toto-verify --verification-keys``."""
    return sslib_key_dict(load_public_key(path))


def _payload_document(doc: dict[str, Any], what: str) -> Any:
    return loads_strict(
        b64decode_strict(doc.get("payload"), f"{what}: payload"), what=f"{what}: payload"
    )


def metadata_type(doc: Any) -> str | None:
    """``"layout"`` or ``"link"`` for legacy in-toto metadata (Metablock or DSSE), else None.

    Never raises: used to recognize a layout before choosing how to verify it.
    """
    if not isinstance(doc, dict):
        return None
    inner: Any = None
    if isinstance(doc.get("signed"), dict) and "signatures" in doc:
        inner = doc["signed"]
    elif doc.get("payloadType") == INTOTO_PAYLOAD_TYPE and "payload" in doc:
        try:
            inner = _payload_document(doc, "envelope")
        except MlspecError:
            return None
    if isinstance(inner, dict) and inner.get("_type") in ("layout", "link"):
        return str(inner["_type"])
    return None


def is_intoto_layout(path: Path) -> bool:
    """True if ``path`` holds an in-toto layout: a legacy Metablock or a DSSE envelope
    (``application/vnd.in-toto+json``) whose payload is a legacy layout."""
    try:
        doc = load_file(path)
    except MlspecError:
        return False
    return metadata_type(doc) == "layout"


def load_metadata(path: Path, *, what: str | None = None) -> Any:
    """Parse an in-toto layout or link file (Metablock or DSSE) into in-toto's ``Metadata``.

    The JSON is read strictly first (duplicate keys, NaN, oversize are refused),
    then handed to ``in_toto.models.metadata.Metadata``; nothing is verified here.
    """
    Metadata = lib("in_toto.models.metadata").Metadata
    label = what or path.name
    doc = load_file(path, what=label)
    kind = metadata_type(doc)
    if kind is None:
        raise MalformedDocumentError(
            f"{label}: not in-toto link or layout metadata (a Metablock with signed._type, "
            f"or a DSSE envelope with payloadType {INTOTO_PAYLOAD_TYPE})"
        )
    try:
        metadata = Metadata.from_dict(doc)
        metadata.get_payload()  # parses (and validates) the DSSE payload too
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise MalformedDocumentError(f"{label}: invalid in-toto {kind}: {exc}") from exc
    except Exception as exc:
        # in-toto and securesystemslib raise their own error roots for bad formats.
        if _is_library_error(exc):
            raise MalformedDocumentError(f"{label}: invalid in-toto {kind}: {exc}") from exc
        raise
    return metadata


def _is_library_error(exc: BaseException) -> bool:
    # in_toto.exceptions.Error is securesystemslib's error root.
    return isinstance(exc, lib("securesystemslib.exceptions").Error)
