"""Hashing a stage's materials and products into in-toto resource descriptors.

Every digest goes through the one engine (:func:`mlspec_attest.digest.artifact.digest_path`);
a directory's manifest is kept as a blob for the store, so the verifier can
compare file by file. A material or product is a local path, named relative to
the base directory, or an object store URL (:data:`ArtifactRef`), named by its URL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from msgspec import Struct

from mlspec_attest.digest.artifact import ArtifactDigest, digest_path
from mlspec_attest.digest.cache import DigestCache, cache_from_option
from mlspec_attest.digest.engine import ProgressSink
from mlspec_attest.digest.scheme import DEFAULT_SCHEME, DEFAULT_SHARD_SIZE, DigestScheme
from mlspec_attest.errors import ArtifactPathError, UsageError
from mlspec_attest.formats.fsutil import artifact_name
from mlspec_attest.formats.objecturl import ArtifactRef as ArtifactRef
from mlspec_attest.formats.objecturl import artifact_ref as artifact_ref
from mlspec_attest.formats.objecturl import is_object_url, normalized_url
from mlspec_attest.formats.statement import ResourceDescriptor


def ref_name(ref: ArtifactRef, base: Path) -> str:
    """The attested name: the URL of an object store location, else the path relative to ``base``."""
    if isinstance(ref, str) and is_object_url(ref):
        return normalized_url(ref)
    return artifact_name(Path(ref), base)


def local_paths(refs: Sequence[ArtifactRef]) -> list[Path]:
    """The local paths among ``refs`` (what row fingerprints and model checks can open)."""
    return [r for r in (artifact_ref(r) for r in refs) if isinstance(r, Path)]


class HashingOptions(Struct, frozen=True):
    """How ``sign`` hashes materials and products.

    ``cache`` (opt-in) reuses digests of files whose (device, inode, size,
    mtime, ctime) did not change; it is for re-signing only, never verification.
    """

    scheme: DigestScheme = DEFAULT_SCHEME
    workers: int | None = None
    progress: ProgressSink | None = None
    cache: DigestCache | None = None

    @classmethod
    def from_env(cls) -> HashingOptions:
        """The scheme and cache named by the environment, as ``sign`` reads them.

        ``MLSPEC_ATTEST_DIGEST_ALGORITHM``, ``MLSPEC_ATTEST_DIGEST_SERIALIZATION``,
        ``MLSPEC_ATTEST_SHARD_SIZE`` and ``MLSPEC_ATTEST_DIGEST_CACHE``: set once for a
        pipeline, they make CLI and Python API stages hash alike (artifact rules
        compare digests of one scheme).
        """
        size = os.environ.get("MLSPEC_ATTEST_SHARD_SIZE", "")
        try:
            shard_size = int(size) if size else DEFAULT_SHARD_SIZE
        except ValueError as exc:
            raise UsageError(f"MLSPEC_ATTEST_SHARD_SIZE={size!r} is not a number") from exc
        scheme = DigestScheme(
            os.environ.get("MLSPEC_ATTEST_DIGEST_ALGORITHM") or "sha256",
            os.environ.get("MLSPEC_ATTEST_DIGEST_SERIALIZATION") or "files",
            shard_size,
        )
        return cls(scheme=scheme, cache=cache_from_option(None))


def descriptors(
    paths: Sequence[ArtifactRef],
    base: Path,
    blobs: list[bytes],
    hashing: HashingOptions | None = None,
) -> tuple[list[ResourceDescriptor], dict[str, ArtifactDigest]]:
    """Digest each path; manifests are appended to ``blobs`` for storing later."""
    opts = hashing or HashingOptions()
    out: list[ResourceDescriptor] = []
    digests: dict[str, ArtifactDigest] = {}
    root = base.resolve()
    for ref in paths:
        path = artifact_ref(ref)
        name = ref_name(path, base)
        if name in digests:
            continue
        if isinstance(path, Path) and path.is_symlink() and not path.resolve().is_relative_to(root):
            raise ArtifactPathError(
                f"{path}: symlink points outside {base} (to {path.resolve()})",
                remedy="attest the real path, or copy the artifact into the pipeline directory",
            )
        digest = digest_path(
            path,
            scheme=opts.scheme,
            workers=opts.workers,
            progress=opts.progress,
            cache=opts.cache,
        )
        annotations: dict[str, Any] = {}
        if digest.manifest is not None:
            blobs.append(digest.manifest.canonical_bytes())
        if digest.kind == "directory":
            annotations = {"mlspec.kind": "directory", "mlspec.files": digest.files}
        annotations["mlspec.size"] = digest.size
        digests[name] = digest
        out.append(ResourceDescriptor(name, digest.digest_set(), annotations))
    return out, digests


def _sha256_of(digest: ArtifactDigest, path: Path) -> str:
    """The default-scheme digest (details records name it ``sha256``), re-hashing if needed."""
    return digest.digest if digest.scheme.is_default else digest_path(path).digest


def conversion_sha256(digests: Mapping[str, ArtifactDigest], path: Path, base: Path) -> str:
    """sha256 of a conversion output: from its product digest, else hashed on its own."""
    name = artifact_name(path, base)
    if name in digests:
        return _sha256_of(digests[name], path)
    return digest_path(path).digest
