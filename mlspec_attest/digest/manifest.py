"""Content digests of files and directories.

A file's digest is the SHA-256 of its bytes. A directory's digest is a
*manifest*: the SHA-256 of every regular file under it, keyed by its relative
path. The manifest's root digest is computed exactly as OpenSSF model-signing
computes the digest of a model ("files" serialization): the raw 32-byte file
digests are concatenated in path-component order (``a/b`` sorts before ``a-c``)
and hashed once more. Because that root does not cover file *names*, the
attestation also records the SHA-256 of the canonical manifest document, which
does. The manifest document itself is stored content-addressed, so the
attestation stays a few hundred bytes whatever the number of files.

Other schemes (:class:`DigestScheme`) are opt-in: the ``blake3`` or ``blake2b``
algorithm, and model-signing's "shards" serialization, where every file is cut
into ``shard_size`` byte ranges hashed in parallel and the root covers the shard
digests. The DigestSet key names the scheme (``blake3``,
``sha256-sharded-1000000000``) so a verifier re-hashes the same way. The hashing
itself is done by :mod:`mlspec_attest.digest.engine`.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from json.encoder import encode_basestring
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from mlspec_attest.digest.engine import ProgressSink, digest_file, digest_files, digest_shards
from mlspec_attest.digest.walk import IgnoreRules, walk_tree
from mlspec_attest.errors import (
    ArtifactPathError,
    BadInputError,
    MalformedDocumentError,
    UsageError,
)
from mlspec_attest.formats.fsutil import check_relative_name
from mlspec_attest.formats.jsonio import loads_strict
from mlspec_attest.formats.limits import MAX_MANIFEST_BYTES

if TYPE_CHECKING:
    from mlspec_attest.digest.cache import DigestCache

MANIFEST_TYPE = "https://mlspec-attest.dev/manifest/v1"
MANIFEST_TYPE_V2 = "https://mlspec-attest.dev/manifest/v2"
MANIFEST_MAX_BYTES = MAX_MANIFEST_BYTES  # see limits.py
SHA256_HEX_LEN = 64
ALGORITHMS: Mapping[str, int] = {"sha256": 32, "blake2b": 64, "blake3": 32}
SERIALIZATIONS = ("files", "shards")
DEFAULT_SHARD_SIZE = 1_000_000_000
_SHARDED_KEY = re.compile(r"^(sha256|blake2b)-sharded-([1-9][0-9]{0,17})$")

ArtifactKind = Literal["file", "directory"]


@dataclass(frozen=True)
class DigestScheme:
    """How an artifact is hashed: algorithm, serialization and (for shards) shard size.

    The default, ``sha256``/``files``, is what every attestation used before
    schemes existed; its manifests keep the v1 format.
    """

    algorithm: str = "sha256"
    serialization: str = "files"
    shard_size: int = DEFAULT_SHARD_SIZE

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise UsageError(
                f"unknown digest algorithm {self.algorithm!r}",
                remedy="use one of: " + ", ".join(ALGORITHMS),
            )
        if self.serialization not in SERIALIZATIONS:
            raise UsageError(
                f"unknown serialization {self.serialization!r}", remedy="use files or shards"
            )
        if self.shard_size < 1:
            raise UsageError(f"shard size must be positive, got {self.shard_size}")
        if self.serialization == "shards" and self.algorithm == "blake3":
            raise UsageError(
                "blake3 is not sharded: it already hashes one file on every core",
                remedy="use --serialization files with blake3",
            )

    @property
    def sharded(self) -> bool:
        return self.serialization == "shards"

    @property
    def key(self) -> str:
        """The DigestSet key (model-signing's algorithm name): ``sha256-sharded-N`` ..."""
        return f"{self.algorithm}-sharded-{self.shard_size}" if self.sharded else self.algorithm

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_SCHEME

    @classmethod
    def from_key(cls, key: str) -> DigestScheme | None:
        if key in ALGORITHMS:
            return cls(key)
        found = _SHARDED_KEY.match(key)
        if found:
            return cls(found.group(1), "shards", int(found.group(2)))
        return None

    @classmethod
    def of_digest_set(cls, digest: Mapping[str, str]) -> DigestScheme:
        """The scheme an attested DigestSet was made with (sha256 if it has that key)."""
        if "sha256" in digest:
            return DEFAULT_SCHEME
        for key in sorted(digest):
            scheme = cls.from_key(key)
            if scheme is not None:
                return scheme
        raise BadInputError(
            f"digest set {sorted(digest)} names no digest algorithm mlspec-attest can compute",
            remedy="re-sign the artifact with sha256, blake2b or blake3",
        )


DEFAULT_SCHEME = DigestScheme()


def sha256_file(path: Path) -> tuple[str, int]:
    """Return (hex sha256, size) of one regular file, read once in large chunks."""
    raw, size = digest_file(os.fspath(path))
    return raw.hex(), size


def path_components_key(name: str) -> tuple[str, ...]:
    """Sort key that orders ``a/b`` before ``a-c`` (model-signing order)."""
    return tuple(name.split("/"))


def _order_key(name: str) -> str:
    # Same order as path_components_key, cheaper: NUL sorts below every character
    # a file name can hold, so it behaves as the component boundary.
    return name.replace("/", "\0")


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
_new_entry = partial(tuple.__new__, FileEntry)


@dataclass(frozen=True)
class ManifestDiff:
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


@dataclass(frozen=True)
class DirectoryManifest:
    """Every file under a directory with its digest, in path-component order."""

    entries: tuple[FileEntry, ...]
    scheme: DigestScheme = DEFAULT_SCHEME

    @classmethod
    def build(
        cls, entries: Iterable[FileEntry], scheme: DigestScheme = DEFAULT_SCHEME
    ) -> DirectoryManifest:
        items = list(entries)
        keys = [e.path.replace("/", "\0") for e in items]  # see _order_key
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
        return hashlib.sha256(bytes.fromhex(items)).hexdigest()

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
            added=tuple(sorted(theirs.keys() - mine.keys(), key=_order_key)),
            removed=tuple(sorted(mine.keys() - theirs.keys(), key=_order_key)),
            changed=tuple(
                sorted(
                    (p for p in mine.keys() & theirs.keys() if mine[p] != theirs[p]),
                    key=_order_key,
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


@dataclass(frozen=True)
class ArtifactDigest:
    """The digest of one attested path: a file, or a directory with its manifest.

    ``digest`` is the file's digest, or the manifest root; a file hashed with the
    "shards" serialization also has a (one-entry) manifest.
    """

    kind: ArtifactKind
    digest: str
    size: int
    manifest: DirectoryManifest | None = field(default=None, compare=False)
    manifest_address: str | None = None
    files: int = 1
    scheme: DigestScheme = DEFAULT_SCHEME

    @property
    def sha256(self) -> str:
        """``digest`` under its original name (the default scheme is sha256)."""
        return self.digest

    def digest_set(self) -> dict[str, str]:
        """The in-toto DigestSet recorded for this artifact."""
        if self.manifest_address is not None:
            return {self.scheme.key: self.digest, "manifest-sha256": self.manifest_address}
        return {self.scheme.key: self.digest}


def digest_directory(
    root: Path,
    *,
    ignore: Sequence[str] = (),
    workers: int | None = None,
    scheme: DigestScheme = DEFAULT_SCHEME,
    progress: ProgressSink | None = None,
    cache: DigestCache | None = None,
) -> DirectoryManifest:
    """Hash every file under ``root`` (threads across files and shards) into a manifest."""
    found = walk_tree(os.fspath(root), IgnoreRules(ignore) if ignore else None)
    # Hash in manifest order, so the results need no sorting afterwards.
    keys = [_order_key(rel) for rel, _ in found]
    order = sorted(range(len(found)), key=keys.__getitem__)
    names = [found[i][0] for i in order]
    paths = [found[i][1] for i in order]
    if scheme.sharded:
        sharded = digest_shards(
            paths,
            scheme.algorithm,
            scheme.shard_size,
            workers=workers,
            progress=progress,
            label=os.fspath(root),
        )
        entries = [
            FileEntry(name, "", size, tuple(d.hex() for d in shards))
            for name, (shards, size) in zip(names, sharded, strict=True)
        ]
    else:
        hashed = digest_files(
            paths,
            scheme.algorithm,
            workers=workers,
            progress=progress,
            cache=cache,
            label=os.fspath(root),
        )
        make = _new_entry
        with _gc_paused():  # a million short-lived tuples: nothing for the collector to find
            entries = [
                make((name, raw.hex(), size, ()))
                for name, (raw, size) in zip(names, hashed, strict=True)
            ]
        manifest = DirectoryManifest(tuple(entries), scheme)
        # The root straight from the raw digests (no hex round trip).
        manifest.__dict__["root"] = hashlib.sha256(b"".join([r for r, _ in hashed])).hexdigest()
        return manifest
    return DirectoryManifest(tuple(entries), scheme)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _manifest_digest(
    kind: ArtifactKind, manifest: DirectoryManifest, scheme: DigestScheme
) -> ArtifactDigest:
    return ArtifactDigest(
        kind=kind,
        digest=manifest.root,
        size=manifest.total_size,
        manifest=manifest,
        manifest_address=manifest.address,
        files=len(manifest.entries),
        scheme=scheme,
    )


def digest_path(
    path: Path,
    *,
    ignore: Sequence[str] = (),
    scheme: DigestScheme = DEFAULT_SCHEME,
    workers: int | None = None,
    progress: ProgressSink | None = None,
    cache: DigestCache | None = None,
) -> ArtifactDigest:
    """Digest a file or a directory (see module docstring).

    ``cache`` (opt-in, signing only) reuses digests of unchanged files; a
    verifier must never pass one.
    """
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise ArtifactPathError(f"{path}: no such file or directory") from exc
    except OSError as exc:
        raise ArtifactPathError(f"{path}: cannot stat ({exc.strerror})") from exc
    if stat.S_ISDIR(st.st_mode):
        manifest = digest_directory(
            path, ignore=ignore, workers=workers, scheme=scheme, progress=progress, cache=cache
        )
        return _manifest_digest("directory", manifest, scheme)
    if not stat.S_ISREG(st.st_mode):
        raise ArtifactPathError(f"{path}: not a regular file or directory")
    name = os.fspath(path)
    if scheme.sharded:
        # model-signing names the only file of a single-file model ".".
        [(shards, size)] = digest_shards(
            [name],
            scheme.algorithm,
            scheme.shard_size,
            workers=workers,
            progress=progress,
            label=name,
        )
        entry = FileEntry(".", "", size, tuple(d.hex() for d in shards))
        return _manifest_digest("file", DirectoryManifest((entry,), scheme), scheme)
    if cache is not None:
        [(raw, size)] = digest_files(
            [name], scheme.algorithm, workers=1, progress=progress, cache=cache, label=name
        )
    else:
        raw, size = digest_file(name, scheme.algorithm, progress)
    return ArtifactDigest(kind="file", digest=raw.hex(), size=size, scheme=scheme)


def intoto_dir_digest(root: Path, *, ignore: Sequence[str] = (), workers: int | None = None) -> str:
    """in-toto's ``dir:`` artifact hash of ``root`` (``DirectoryResolver``), hex sha256.

    That is ``find . -type f | cut -c3- | LC_ALL=C sort | xargs sha256sum | sha256sum``:
    the text ``"<hex>  <path>\\n"`` for every file, sorted by path code points,
    hashed once. Walking follows this project's rules (symlinks inside the root
    only), which agree with in-toto's for trees without escaping symlinks.
    """
    if not root.is_dir():
        raise ArtifactPathError(f"{root}: not a directory (the dir: scheme hashes directories)")
    found = walk_tree(os.fspath(root), IgnoreRules(ignore) if ignore else None)
    hashed = digest_files([full for _, full in found], "sha256", workers=workers)
    lines = sorted((rel, raw.hex()) for (rel, _), (raw, _size) in zip(found, hashed, strict=True))
    text = "".join(f"{digest}  {rel}\n" for rel, digest in lines)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
