"""The digest of one attested path: a file, or a directory with its manifest.

:func:`digest_path` is what every signer and verifier calls: a regular
file gets its digest under the scheme (a one-entry manifest named ``.`` for
shards, as in model-signing); a directory is walked (:mod:`~mlspec_attest.digest.walk`),
hashed in manifest order by the engine (:mod:`~mlspec_attest.digest.engine`) and
recorded as a :class:`~mlspec_attest.digest.directory.DirectoryManifest`.
:func:`intoto_dir_digest` is in-toto's ``dir:`` hash of a directory, for legacy links.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mlspec_attest.digest.directory import (
    DirectoryManifest,
    FileEntry,
    model_root,
    new_entry,
    order_key,
)
from mlspec_attest.digest.engine import ProgressSink, digest_file, digest_files, digest_shards
from mlspec_attest.digest.scheme import DEFAULT_SCHEME, DigestScheme
from mlspec_attest.digest.walk import IgnoreRules, walk_tree
from mlspec_attest.errors import ArtifactPathError

if TYPE_CHECKING:
    from mlspec_attest.digest.cache import DigestCache

ArtifactKind = Literal["file", "directory"]


def sha256_file(path: Path) -> tuple[str, int]:
    """Return (hex sha256, size) of one regular file (the engine's :func:`digest_file`)."""
    raw, size = digest_file(os.fspath(path))
    return raw.hex(), size


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
    keys = [order_key(rel) for rel, _ in found]
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
