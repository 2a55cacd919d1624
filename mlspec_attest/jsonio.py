"""Strict JSON reading and canonical JSON writing.

Reading refuses duplicate keys, NaN/Infinity literals and oversize documents so
that two parsers can never disagree about what a signed document says.
Writing uses RFC 8785 (JSON Canonicalization Scheme) so that signed payloads
and content-addressed files are byte-stable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import rfc8785

from .errors import MalformedDocumentError

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constants(token: str) -> Any:
    raise ValueError(f"non-standard JSON constant {token}")


def loads_strict(data: bytes | str, *, what: str = "document", max_bytes: int | None = None) -> Any:
    """Parse JSON strictly; raise :class:`MalformedDocumentError` naming ``what``.

    ``max_bytes`` is raised only for documents whose size is bounded elsewhere
    (a directory manifest is read back by the digest the signature covers).
    """
    limit = MAX_DOCUMENT_BYTES if max_bytes is None else max_bytes
    if len(data) > limit:
        raise MalformedDocumentError(f"{what}: larger than {limit} bytes")
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedDocumentError(f"{what}: not valid JSON ({exc})") from exc


def load_file(path: Path, *, what: str | None = None) -> Any:
    """Read and strictly parse a JSON file."""
    label = what or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise MalformedDocumentError(f"{label}: larger than {MAX_DOCUMENT_BYTES} bytes")
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise MalformedDocumentError(f"{label}: file not found") from exc
    except IsADirectoryError as exc:
        raise MalformedDocumentError(f"{label}: is a directory, expected a JSON file") from exc
    except OSError as exc:
        raise MalformedDocumentError(f"{label}: cannot read ({exc.strerror})") from exc
    return loads_strict(data, what=label)


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical bytes of a JSON-compatible value."""
    try:
        return bytes(rfc8785.dumps(obj))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise MalformedDocumentError(f"value cannot be canonicalized as JSON: {exc}") from exc


def pretty(obj: Any) -> str:
    """Human-readable JSON (stable key order)."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False)
