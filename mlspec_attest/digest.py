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
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ArtifactPathError, MalformedDocumentError
from .fsutil import check_relative_name
from .jsonio import canonical

MANIFEST_TYPE = "https://mlspec-attest.dev/manifest/v1"
SHA256_HEX_LEN = 64

ArtifactKind = Literal["file", "directory"]


def sha256_file(path: Path) -> tuple[str, int]:
    """Return (hex sha256, size) of one regular file, read once in large chunks."""
    try:
        with open(path, "rb", buffering=0) as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ArtifactPathError(f"{path}: not a regular file")
            h = hashlib.file_digest(fh, "sha256")
    except FileNotFoundError as exc:
        raise ArtifactPathError(f"{path}: no such file or directory") from exc
    except IsADirectoryError as exc:
        raise ArtifactPathError(f"{path}: is a directory") from exc
    except PermissionError as exc:
        raise ArtifactPathError(f"{path}: permission denied") from exc
    return h.hexdigest(), st.st_size


def path_components_key(name: str) -> tuple[str, ...]:
    """Sort key that orders ``a/b`` before ``a-c`` (model-signing order)."""
    return tuple(name.split("/"))


@dataclass(frozen=True)
class FileEntry:
    """One file of a directory manifest."""

    path: str
    sha256: str
    size: int


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


@dataclass(frozen=True)
class DirectoryManifest:
    """Every file under a directory with its digest, in path-component order."""

    entries: tuple[FileEntry, ...]

    @classmethod
    def build(cls, entries: Iterable[FileEntry]) -> DirectoryManifest:
        ordered = sorted(entries, key=lambda e: path_components_key(e.path))
        return cls(tuple(ordered))

    @property
    def root(self) -> str:
        """The model-signing compatible root digest (hex)."""
        h = hashlib.sha256()
        for entry in self.entries:
            h.update(bytes.fromhex(entry.sha256))
        return h.hexdigest()

    @property
    def total_size(self) -> int:
        return sum(e.size for e in self.entries)

    def to_json(self) -> dict[str, Any]:
        return {
            "_type": MANIFEST_TYPE,
            "algorithm": "sha256",
            "root": self.root,
            "files": [{"path": e.path, "sha256": e.sha256, "size": e.size} for e in self.entries],
        }

    def canonical_bytes(self) -> bytes:
        return canonical(self.to_json())

    @property
    def address(self) -> str:
        """SHA-256 (hex) of the canonical manifest document; covers names and digests."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()

    @classmethod
    def from_json(cls, doc: Any) -> DirectoryManifest:
        if not isinstance(doc, dict) or doc.get("_type") != MANIFEST_TYPE:
            raise MalformedDocumentError("not an mlspec-attest directory manifest")
        files = doc.get("files")
        if doc.get("algorithm") != "sha256" or not isinstance(files, list):
            raise MalformedDocumentError("manifest: unsupported algorithm or missing files")
        entries = []
        for item in files:
            try:
                entry = FileEntry(
                    path=check_relative_name(str(item["path"])),
                    sha256=str(item["sha256"]),
                    size=int(item["size"]),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise MalformedDocumentError(f"manifest: bad file entry {item!r}") from exc
            entries.append(entry)
        manifest = cls.build(entries)
        if manifest.root != doc.get("root"):
            raise MalformedDocumentError("manifest: root does not match its files")
        return manifest

    def diff(self, other: DirectoryManifest) -> ManifestDiff:
        """Differences going from ``self`` (attested) to ``other`` (on disk)."""
        mine = {e.path: e.sha256 for e in self.entries}
        theirs = {e.path: e.sha256 for e in other.entries}
        return ManifestDiff(
            added=tuple(sorted(theirs.keys() - mine.keys(), key=path_components_key)),
            removed=tuple(sorted(mine.keys() - theirs.keys(), key=path_components_key)),
            changed=tuple(
                sorted(
                    (p for p in mine.keys() & theirs.keys() if mine[p] != theirs[p]),
                    key=path_components_key,
                )
            ),
        )


@dataclass(frozen=True)
class ArtifactDigest:
    """The digest of one attested path: a file, or a directory with its manifest."""

    kind: ArtifactKind
    sha256: str
    size: int
    manifest: DirectoryManifest | None = field(default=None, compare=False)
    manifest_address: str | None = None
    files: int = 1

    def digest_set(self) -> dict[str, str]:
        """The in-toto DigestSet recorded for this artifact."""
        if self.kind == "directory":
            assert self.manifest_address is not None
            return {"sha256": self.sha256, "manifest-sha256": self.manifest_address}
        return {"sha256": self.sha256}


def _walk(root: Path, ignore: Sequence[str]) -> list[tuple[str, Path]]:
    """All regular files under ``root`` as (relative posix name, path).

    Symlinks are followed only when their target stays inside ``root``.
    """
    real_root = root.resolve()
    found: list[tuple[str, Path]] = []
    ignored = set(ignore)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        current = Path(dirpath)
        rel_dir = current.relative_to(root)
        dirnames[:] = [d for d in dirnames if (rel_dir / d).as_posix() not in ignored]
        for name in list(dirnames) + filenames:
            full = current / name
            rel = (rel_dir / name).as_posix()
            if rel in ignored:
                continue
            if full.is_symlink():
                target = full.resolve()
                if not target.is_relative_to(real_root):
                    raise ArtifactPathError(
                        f"{full}: symlink points outside {root} (to {target})",
                        remedy="copy the file into the artifact directory or remove the link",
                    )
                if target.is_dir():
                    raise ArtifactPathError(f"{full}: symlinks to directories are not followed")
                found.append((rel, full))
            elif name in filenames:
                mode = full.lstat().st_mode
                if not stat.S_ISREG(mode):
                    raise ArtifactPathError(f"{full}: not a regular file (device, fifo or socket)")
                found.append((rel, full))
    return found


def digest_directory(
    root: Path, *, ignore: Sequence[str] = (), workers: int = 4
) -> DirectoryManifest:
    """Hash every file under ``root`` (threads across files) into a manifest."""
    files = _walk(root, ignore)

    def one(item: tuple[str, Path]) -> FileEntry:
        rel, full = item
        hexdigest, size = sha256_file(full)
        return FileEntry(rel, hexdigest, size)

    if len(files) <= 1 or workers <= 1:
        entries = [one(item) for item in files]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            entries = list(pool.map(one, files))
    return DirectoryManifest.build(entries)


def digest_path(path: Path, *, ignore: Sequence[str] = ()) -> ArtifactDigest:
    """Digest a file or a directory (see module docstring)."""
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise ArtifactPathError(f"{path}: no such file or directory") from exc
    except OSError as exc:
        raise ArtifactPathError(f"{path}: cannot stat ({exc.strerror})") from exc
    if stat.S_ISDIR(st.st_mode):
        manifest = digest_directory(path, ignore=ignore)
        return ArtifactDigest(
            kind="directory",
            sha256=manifest.root,
            size=manifest.total_size,
            manifest=manifest,
            manifest_address=manifest.address,
            files=len(manifest.entries),
        )
    if stat.S_ISREG(st.st_mode):
        hexdigest, size = sha256_file(path)
        return ArtifactDigest(kind="file", sha256=hexdigest, size=size)
    raise ArtifactPathError(f"{path}: not a regular file or directory")
