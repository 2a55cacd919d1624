"""The directory manifest: every file under a directory with its digest, and its root.

A directory's digest is a *manifest*: the digest of every regular file under
it, keyed by its relative path. The manifest's root digest is computed exactly
as OpenSSF model-signing computes the digest of a model (:func:`model_root`):
the raw file (or shard) digests are concatenated in path-component order
(``a/b`` sorts before ``a-c``) and hashed once more with SHA-256. Because that
root does not cover file *names*, the attestation also records the SHA-256 of
the canonical manifest document (:attr:`DirectoryManifest.address`), which does.
The document is stored content-addressed, so the attestation stays a few hundred
bytes whatever the number of files. The default scheme writes the v1 document,
every other :class:`~mlspec_attest.digest.scheme.DigestScheme` v2 (docs/formats.md §5).

Hashing a directory into a manifest is :func:`mlspec_attest.digest.artifact.digest_directory`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cached_property, partial
from json.encoder import encode_basestring
from typing import Any, NamedTuple

from msgspec import Struct

from mlspec_attest.digest.scheme import (
    ALGORITHMS,
    DEFAULT_SCHEME,
    DEFAULT_SHARD_SIZE,
    SERIALIZATIONS,
    DigestScheme,
)
from mlspec_attest.errors import ArtifactPathError, MalformedDocumentError, UsageError
from mlspec_attest.formats.fsutil import check_relative_name
from mlspec_attest.formats.jsonio import loads_strict
from mlspec_attest.formats.limits import MAX_MANIFEST_BYTES

MANIFEST_TYPE = "https://mlspec-attest.dev/manifest/v1"
MANIFEST_TYPE_V2 = "https://mlspec-attest.dev/manifest/v2"
MANIFEST_MAX_BYTES = MAX_MANIFEST_BYTES  # see limits.py


def model_root(raw_digests: Iterable[bytes]) -> str:
    """model-signing's root (hex): SHA-256 over the raw item digests, in the order given.

    Whatever the algorithm of the items (files or shards), as model-signing
    computes its subject digest; every root in mlspec-attest is this function.
    """
    return hashlib.sha256(b"".join(raw_digests)).hexdigest()


def path_components_key(name: str) -> tuple[str, ...]:
    """Sort key that orders ``a/b`` before ``a-c`` (model-signing order)."""
    return tuple(name.split("/"))


def order_key(name: str) -> str:
    # Same order as path_components_key, cheaper: NUL sorts below every character
    # a file name can hold, so it behaves as the component boundary.
    return name.replace("/", "\0")


def sort_found(found: list[tuple[str, str]]) -> None:
    """Sort walked ``(name, path)`` pairs in place into manifest order (:func:`order_key`)."""
    found.sort(key=_found_key)


def _found_key(item: tuple[str, str]) -> str:
    return item[0].replace("/", "\0")  # order_key, inlined: called once per file


class FileEntry(NamedTuple):
    """One file of a directory manifest.

    ``digest`` is the hex digest of the whole file under the manifest's
    algorithm; with the "shards" serialization it is empty and ``shards`` holds
    the digest of each ``shard_size`` byte range, in order.
    """

    path: str
    digest: str
    size: int
    shards: tuple[str, ...] = ()

    @property
    def sha256(self) -> str:
        """``digest`` under its original name (sha256 manifests)."""
        return self.digest

    def item_digests(self) -> tuple[str, ...]:
        """What the root covers for this file: its digest, or its shard digests."""
        return self.shards if not self.digest else (self.digest,)


# FileEntry's constructor without the Python-level __new__ (a million files: 0.5 s).
new_entry = partial(tuple.__new__, FileEntry)


class ManifestDiff(Struct, frozen=True, dict=True):
    """What differs between an attested manifest and the files now on disk."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def summary(self, limit: int = 5) -> str:
        parts = []
        for label, names in (
            ("changed", self.changed),
            ("added", self.added),
            ("removed", self.removed),
        ):
            if names:
                shown = ", ".join(names[:limit])
                more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
                parts.append(f"{label}: {shown}{more}")
        return "; ".join(parts) if parts else "no file differences"

    def to_json(self) -> dict[str, list[str]]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": list(self.changed),
        }


def _fast_name_ok(name: str) -> bool:
    """check_relative_name's verdict for the common case, without building a path object."""
    if name == "." or not name or "\\" in name:
        return name == "."
    return all(part and part != "." and part != ".." for part in name.split("/"))


class DirectoryManifest(Struct, frozen=True, dict=True):
    """Every file under a directory with its digest, in path-component order."""

    entries: tuple[FileEntry, ...]
    scheme: DigestScheme = DEFAULT_SCHEME

    @classmethod
    def build(
        cls, entries: Iterable[FileEntry], scheme: DigestScheme = DEFAULT_SCHEME
    ) -> DirectoryManifest:
        items = list(entries)
        keys = [e.path.replace("/", "\0") for e in items]  # see order_key
        order = sorted(range(len(items)), key=keys.__getitem__)
        return cls(tuple([items[i] for i in order]), scheme)

    @cached_property
    def root(self) -> str:
        """The model-signing compatible root digest (hex).

        SHA-256 over the raw item digests in order, whatever the algorithm, as
        model-signing computes its subject digest; items are files, or shards.
        """
        if self.scheme.sharded:
            items = "".join(d for e in self.entries for d in e.shards)
        else:
            items = "".join(e.digest for e in self.entries)
        return model_root([bytes.fromhex(items)])

    @cached_property
    def total_size(self) -> int:
        return sum([e.size for e in self.entries])

    def to_json(self) -> dict[str, Any]:
        """v1 for the default scheme (unchanged since the first release), else v2."""
        if self.scheme.is_default:
            return {
                "_type": MANIFEST_TYPE,
                "algorithm": "sha256",
                "root": self.root,
                "files": [
                    {"path": e.path, "sha256": e.digest, "size": e.size} for e in self.entries
                ],
            }
        serialization: dict[str, Any] = {"method": self.scheme.serialization}
        if self.scheme.sharded:
            serialization["shardSize"] = self.scheme.shard_size
            files = [
                {"path": e.path, "size": e.size, "shards": list(e.shards)} for e in self.entries
            ]
        else:
            files = [{"path": e.path, "digest": e.digest, "size": e.size} for e in self.entries]
        return {
            "_type": MANIFEST_TYPE_V2,
            "algorithm": self.scheme.algorithm,
            "serialization": serialization,
            "root": self.root,
            "files": files,
        }

    @cached_property
    def _canonical(self) -> bytes:
        # RFC 8785 of to_json(), written directly: for this document's value types
        # (fixed ASCII keys, strings, integers) JCS is keys in sorted order, no
        # whitespace, non-ASCII as is, '"', '\\' and control characters escaped,
        # which is what json's C string encoder does. Ten times faster than a
        # generic canonicalizer on a million files; tests check both agree.
        q = encode_basestring
        scheme = self.scheme
        if scheme.is_default:
            files = ",".join(
                f'{{"path":{q(e.path)},"sha256":"{e.digest}","size":{e.size}}}'
                for e in self.entries
            )
            text = (
                f'{{"_type":"{MANIFEST_TYPE}","algorithm":"sha256",'
                f'"files":[{files}],"root":"{self.root}"}}'
            )
        else:
            if scheme.sharded:
                files = ",".join(
                    f'{{"path":{q(e.path)},"shards":[{_quoted(e.shards)}],"size":{e.size}}}'
                    for e in self.entries
                )
                serialization = f'{{"method":"shards","shardSize":{scheme.shard_size}}}'
            else:
                files = ",".join(
                    f'{{"digest":"{e.digest}","path":{q(e.path)},"size":{e.size}}}'
                    for e in self.entries
                )
                serialization = '{"method":"files"}'
            text = (
                f'{{"_type":"{MANIFEST_TYPE_V2}","algorithm":"{scheme.algorithm}",'
                f'"files":[{files}],"root":"{self.root}","serialization":{serialization}}}'
            )
        return text.encode("utf-8")

    def canonical_bytes(self) -> bytes:
        return self._canonical

    @cached_property
    def address(self) -> str:
        """SHA-256 (hex) of the canonical manifest document; covers names and digests."""
        return hashlib.sha256(self._canonical).hexdigest()

    @classmethod
    def from_bytes(cls, data: bytes, *, what: str = "manifest") -> DirectoryManifest:
        """Parse a stored manifest (up to ``limits.MAX_MANIFEST_BYTES``)."""
        return cls.from_json(loads_strict(data, what=what, max_bytes=MANIFEST_MAX_BYTES))

    @classmethod
    def from_json(cls, doc: Any) -> DirectoryManifest:
        if not isinstance(doc, dict) or doc.get("_type") not in (MANIFEST_TYPE, MANIFEST_TYPE_V2):
            raise MalformedDocumentError("not an mlspec-attest directory manifest")
        files = doc.get("files")
        if doc["_type"] == MANIFEST_TYPE:
            if doc.get("algorithm") != "sha256" or not isinstance(files, list):
                raise MalformedDocumentError("manifest: unsupported algorithm or missing files")
            scheme = DEFAULT_SCHEME
        else:
            scheme = _scheme_of_v2(doc)
            if not isinstance(files, list):
                raise MalformedDocumentError("manifest: missing files")
        entries = [_entry_from_json(item, scheme, doc["_type"] == MANIFEST_TYPE) for item in files]
        manifest = cls.build(entries, scheme)
        if len({e.path for e in manifest.entries}) != len(manifest.entries):
            raise MalformedDocumentError("manifest: a path is listed twice")
        if manifest.root != doc.get("root"):
            raise MalformedDocumentError("manifest: root does not match its files")
        return manifest

    def diff(self, other: DirectoryManifest) -> ManifestDiff:
        """Differences going from ``self`` (attested) to ``other`` (on disk)."""
        mine = {e.path: e.item_digests() for e in self.entries}
        theirs = {e.path: e.item_digests() for e in other.entries}
        return ManifestDiff(
            added=tuple(sorted(theirs.keys() - mine.keys(), key=order_key)),
            removed=tuple(sorted(mine.keys() - theirs.keys(), key=order_key)),
            changed=tuple(
                sorted(
                    (p for p in mine.keys() & theirs.keys() if mine[p] != theirs[p]),
                    key=order_key,
                )
            ),
        )


def _quoted(hexes: tuple[str, ...]) -> str:
    return ",".join(f'"{h}"' for h in hexes)


def _scheme_of_v2(doc: dict[str, Any]) -> DigestScheme:
    serialization = doc.get("serialization")
    if not isinstance(serialization, dict) or not isinstance(doc.get("algorithm"), str):
        raise MalformedDocumentError("manifest: needs algorithm and serialization")
    method = serialization.get("method")
    shard_size = serialization.get("shardSize", DEFAULT_SHARD_SIZE)
    if (
        doc["algorithm"] not in ALGORITHMS
        or method not in SERIALIZATIONS
        or isinstance(shard_size, bool)
        or not isinstance(shard_size, int)
    ):
        raise MalformedDocumentError("manifest: unsupported algorithm or serialization")
    try:
        return DigestScheme(doc["algorithm"], method, shard_size)
    except UsageError as exc:
        raise MalformedDocumentError(f"manifest: {exc.message}") from exc


def _hex_ok(value: Any, length: int) -> bool:
    return (
        isinstance(value, str)
        and len(value) == length
        and value == value.lower()
        and all(c in "0123456789abcdef" for c in value)
    )


def _entry_from_json(item: Any, scheme: DigestScheme, v1: bool) -> FileEntry:
    try:
        path = str(item["path"])
        size = item["size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError("size")
        if not _fast_name_ok(path):
            check_relative_name(path)  # raises with the standard message
            raise ArtifactPathError(f"artifact name {path!r} is not a normalized relative path")
        path.encode("utf-8")
        hexlen = 2 * ALGORITHMS[scheme.algorithm]
        if scheme.sharded:
            shards = tuple(item["shards"])
            # Counted, not listed: a claimed size of 10^12 with 16-byte shards is one number.
            if len(shards) != -(-size // scheme.shard_size):
                raise ValueError("shard count")
            if not all(_hex_ok(s, hexlen) for s in shards):
                raise ValueError("shard digest")
            return FileEntry(path, "", size, shards)
        digest = item["sha256" if v1 else "digest"]
        if not _hex_ok(digest, hexlen):
            raise ValueError("digest")
        return FileEntry(path, digest, size)
    except (KeyError, TypeError, ValueError, UnicodeEncodeError) as exc:
        raise MalformedDocumentError(f"manifest: bad file entry {item!r}") from exc
