"""Object store URLs as artifact names: which ones are accepted, and their one spelling.

A material or product may live in an object store (``s3://bucket/key``,
``gs://bucket/prefix/``, any scheme fsspec knows, docs/scale.md). Its attested
name is its URL, checked here as strictly as a relative path
(:func:`mlspec_attest.formats.fsutil.check_relative_name`): a scheme, an
authority (the bucket), and a key without empty, ``.`` or ``..`` components, no
query or fragment, no whitespace or control characters. ``file:`` URLs are local
paths, not object store names (:func:`local_path_of`).

This module imports nothing beyond the standard library: statements are parsed
(and names checked) without fsspec.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mlspec_attest.errors import ArtifactPathError

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]{0,31}$")
MAX_URL_LENGTH = 2048


ArtifactRef = Path | str
"""A material or product: a local path, or an object store URL (``s3://...``) as text."""


def artifact_ref(text: str | Path) -> ArtifactRef:
    """What a material or product argument names: an object store URL (its one spelling),
    or a local path (``file://`` URLs included)."""
    if isinstance(text, Path):
        return text
    if is_object_url(text):
        return normalized_url(text)
    return Path(local_path_of(text) if is_url(text) else text)


def is_url(text: str) -> bool:
    """Whether ``text`` is spelt as a URL (``scheme://...``), not as a local path."""
    return bool(_URL_RE.match(text))


def is_object_url(text: str) -> bool:
    """A URL naming an object store location (any scheme but ``file``)."""
    return is_url(text) and text[: text.index(":")].lower() != "file"


def local_path_of(url: str) -> str:
    """The local path a ``file://`` URL names (``file:///data/x`` -> ``/data/x``)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ArtifactPathError(f"{url}: a file: URL names a path on this machine (no host)")
    return unquote(parts.path) or "/"


def check_object_url(name: str) -> str:
    """Validate an object store URL used as an artifact name; returns it unchanged.

    The scheme is lowercase, the key's components are neither empty nor ``.``
    or ``..``, and a trailing ``/`` is not part of the name (a prefix is named
    without it), so one location has one name.
    """
    parts = urlsplit(name) if is_object_url(name) else None
    key = parts.path if parts is not None else ""
    problem = None
    if parts is None or not _SCHEME_RE.match(parts.scheme) or not name.startswith(parts.scheme):
        problem = "is not a lowercase scheme://location URL"
    elif not parts.netloc or "?" in name or "#" in name:
        problem = "needs a bucket and no query or fragment"
    elif len(name) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 0x20 for c in name):
        problem = "is too long or holds whitespace or control characters"
    elif "\\" in name or name.endswith("/"):
        problem = "holds '\\' or ends with '/'"
    elif key and any(part in ("", ".", "..") for part in key[1:].split("/")):
        problem = "has an empty, '.' or '..' path component"
    if problem:
        raise ArtifactPathError(f"artifact URL {name!r} {problem}")
    return name


def normalized_url(url: str) -> str:
    """The one spelling of an object store URL: lowercase scheme, no trailing ``/``."""
    scheme, sep, rest = url.partition("://")
    return check_object_url(f"{scheme.lower()}{sep}{rest.rstrip('/')}")
