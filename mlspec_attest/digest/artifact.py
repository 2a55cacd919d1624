"""The digest of one attested path: a file, or a directory with its manifest.

:func:`digest_path` is what every signer and verifier calls: a regular
file gets its digest under the scheme (a one-entry manifest named ``.`` for
shards, as in model-signing); a directory is walked (:mod:`~mlspec_attest.digest.walk`),
hashed in manifest order by the engine (:mod:`~mlspec_attest.digest.engine`) and
recorded as a :class:`~mlspec_attest.digest.directory.DirectoryManifest`.
An object store URL is listed and streamed by :mod:`~mlspec_attest.digest.remote`,
and inside a Dask session (:mod:`~mlspec_attest.digest.cluster`) the same
files are hashed by the cluster's workers; :func:`build_manifest` makes the one
manifest from any of them.
:func:`intoto_dir_digest` is in-toto's ``dir:`` hash of a directory, for legacy links.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from msgspec import Struct

from mlspec_attest import digest
from mlspec_attest.digest.dask_client import active as dask_client
from mlspec_attest.digest.directory import (
    DirectoryManifest,
    FileEntry,
    model_root,
    new_entry,
    sort_found,
)
from mlspec_attest.digest.engine import ProgressSink, digest_file, digest_files, digest_shards
from mlspec_attest.digest.scheme import DEFAULT_SCHEME, DigestScheme
from mlspec_attest.digest.walk import IgnoreRules, walk_tree
from mlspec_attest.errors import ArtifactPathError
from mlspec_attest.formats.objecturl import is_object_url, is_url, local_path_of
from mlspec_attest.formats.partial_value import PartlyCompared

if TYPE_CHECKING:
    from mlspec_attest.digest.cache import DigestCache

ArtifactKind = Literal["file", "directory"]


def sha256_file(path: Path) -> tuple[str, int]:
    """Return (hex sha256, size) of one regular file (the engine's :func:`digest_file`)."""
    raw, size = digest_file(os.fspath(path))
    return raw.hex(), size


class ArtifactDigest(PartlyCompared, frozen=True):
    """The digest of one attested path: a file, or a directory with its manifest.

    ``digest`` is the file's digest, or the manifest root; a file hashed with the
    "shards" serialization also has a (one-entry) manifest.
    """

    kind: ArtifactKind
    digest: str
    size: int
    manifest: DirectoryManifest | None = None
    manifest_address: str | None = None
    files: int = 1
    scheme: DigestScheme = DEFAULT_SCHEME

    _uncompared = frozenset({"manifest"})  # ``digest`` is its root: not compared again

    @property
    def sha256(self) -> str:
        """``digest`` under its original name (the default scheme is sha256)."""
        return self.digest

    def digest_set(self) -> dict[str, str]:
        """The in-toto DigestSet recorded for this artifact."""
        if self.manifest_address is not None:
            return {self.scheme.key: self.digest, "manifest-sha256": self.manifest_address}
        return {self.scheme.key: self.digest}


class Hashing(Protocol):
    """Computes the digests of a manifest's files, in manifest order, in the engine's shapes.

    The local engine, the streaming object hasher (:class:`~mlspec_attest.digest.remote.ObjectHashing`)
    and Dask tasks (:class:`~mlspec_attest.digest.cluster.ClusterHashing`) all are one;
    :func:`build_manifest` makes the same manifest from any of them.
    """

    def files(self) -> list[tuple[bytes, int]]: ...

    def shards(self) -> list[tuple[list[bytes], int]]: ...


class LocalHashing(Struct, frozen=True):
    """Local files through the engine: threads, helper processes, the opt-in cache."""

    paths: Sequence[str]
    scheme: DigestScheme
    workers: int | None = None
    progress: ProgressSink | None = None
    cache: DigestCache | None = None
    label: str = ""

    def files(self) -> list[tuple[bytes, int]]:
        return digest_files(
            self.paths,
            self.scheme.algorithm,
            workers=self.workers,
            progress=self.progress,
            cache=self.cache,
            label=self.label,
        )

    def shards(self) -> list[tuple[list[bytes], int]]:
        return digest_shards(
            self.paths,
            self.scheme.algorithm,
            self.scheme.shard_size,
            workers=self.workers,
            progress=self.progress,
            label=self.label,
        )


def build_manifest(
    names: Sequence[str], scheme: DigestScheme, hashing: Hashing
) -> DirectoryManifest:
    """The manifest of files ``names`` (in manifest order) hashed by ``hashing``."""
    if scheme.sharded:
        entries = [
            FileEntry(name, "", size, tuple(d.hex() for d in shards))
            for name, (shards, size) in zip(names, hashing.shards(), strict=True)
        ]
        return DirectoryManifest(tuple(entries), scheme)
    hashed = hashing.files()
    make = new_entry
    with _gc_paused():  # a million short-lived tuples: nothing for the collector to find
        entries = [
            make((name, raw.hex(), size, ()))
            for name, (raw, size) in zip(names, hashed, strict=True)
        ]
    manifest = DirectoryManifest(tuple(entries), scheme)
    # The root straight from the raw digests (no hex round trip).
    manifest.__dict__["root"] = model_root([r for r, _ in hashed])
    return manifest


def _local_hashing(
    paths: Sequence[str],
    scheme: DigestScheme,
    workers: int | None,
    progress: ProgressSink | None,
    cache: DigestCache | None,
    label: str,
) -> Hashing:
    """The engine, or the active Dask cluster (:func:`mlspec_attest.digest.cluster.session`)."""
    client = dask_client()
    if client is not None:
        return digest.ClusterHashing(client, paths, scheme, progress=progress, label=label)
    return LocalHashing(paths, scheme, workers, progress, cache, label)


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
    sort_found(found)
    names = [name for name, _ in found]
    paths = [path for _, path in found]
    label = os.fspath(root)
    return build_manifest(
        names, scheme, _local_hashing(paths, scheme, workers, progress, cache, label)
    )


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
    path: Path | str,
    *,
    ignore: Sequence[str] = (),
    scheme: DigestScheme = DEFAULT_SCHEME,
    workers: int | None = None,
    progress: ProgressSink | None = None,
    cache: DigestCache | None = None,
) -> ArtifactDigest:
    """Digest a file or a directory (see module docstring), or what an object store URL names.

    ``path`` given as text may be an object store URL (``s3://bucket/prefix``,
    :func:`digest_url`) or a ``file://`` URL (a local path). ``cache`` (opt-in,
    signing only) reuses digests of unchanged local files; a verifier must never
    pass one. Inside :func:`mlspec_attest.digest.cluster.session` the files are
    hashed on the Dask cluster, with the same result.
    """
    if isinstance(path, str):
        if is_object_url(path):
            return digest_url(
                path, ignore=ignore, scheme=scheme, workers=workers, progress=progress
            )
        path = Path(local_path_of(path) if is_url(path) else path)
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
    if scheme.sharded or dask_client() is not None:
        hashing = _local_hashing([name], scheme, workers, progress, cache, name)
        return _single_file(scheme, hashing)
    if cache is not None:
        [(raw, size)] = digest_files(
            [name], scheme.algorithm, workers=1, progress=progress, cache=cache, label=name
        )
    else:
        raw, size = digest_file(name, scheme.algorithm, progress)
    return ArtifactDigest(kind="file", digest=raw.hex(), size=size, scheme=scheme)


def _single_file(scheme: DigestScheme, hashing: Hashing) -> ArtifactDigest:
    if scheme.sharded:
        # model-signing names the only file of a single-file model ".".
        return _manifest_digest("file", build_manifest(["."], scheme, hashing), scheme)
    [(raw, size)] = hashing.files()
    return ArtifactDigest(kind="file", digest=raw.hex(), size=size, scheme=scheme)


def digest_url(
    url: str,
    *,
    ignore: Sequence[str] = (),
    scheme: DigestScheme = DEFAULT_SCHEME,
    workers: int | None = None,
    progress: ProgressSink | None = None,
) -> ArtifactDigest:
    """The digest of one object, or the manifest of every object under a prefix.

    Streamed (:mod:`mlspec_attest.digest.remote`): equal to the digest of a
    local file or folder holding the same bytes under the same names.
    """
    target = digest.open_target(url, ignore)
    client = dask_client()
    hashing: Hashing
    if client is not None:
        locators = [target.object_url(o) for o in target.objects]
        sizes = [o.size for o in target.objects]
        hashing = digest.ClusterHashing(
            client, locators, scheme, sizes=sizes, progress=progress, label=target.url
        )
    else:
        hashing = digest.ObjectHashing(target, scheme, workers=workers, progress=progress)
    if target.kind == "file":
        return _single_file(scheme, hashing)
    manifest = build_manifest([o.name for o in target.objects], scheme, hashing)
    return _manifest_digest("directory", manifest, scheme)


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
