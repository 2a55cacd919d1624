"""Transitional: the names callers imported from ``digest.manifest`` before the split.

The old module now lives in three: :mod:`~mlspec_attest.digest.artifact` (digest of
a path: ``digest_path``, ``ArtifactDigest``), :mod:`~mlspec_attest.digest.directory`
(the manifest document: ``DirectoryManifest``, ``FileEntry``) and
:mod:`~mlspec_attest.digest.scheme` (``DigestScheme``). This module only re-exports
them so that modules outside the digest layer keep working until their imports
point at those homes; then it is deleted. Nothing in ``digest/`` imports it.
"""

from __future__ import annotations

from mlspec_attest.digest.artifact import (
    ArtifactDigest,
    digest_directory,
    digest_path,
    intoto_dir_digest,
    sha256_file,
)
from mlspec_attest.digest.directory import (
    MANIFEST_TYPE,
    MANIFEST_TYPE_V2,
    DirectoryManifest,
    FileEntry,
    ManifestDiff,
    path_components_key,
)
from mlspec_attest.digest.scheme import DEFAULT_SCHEME, DEFAULT_SHARD_SIZE, DigestScheme

__all__ = [
    "DEFAULT_SCHEME",
    "DEFAULT_SHARD_SIZE",
    "MANIFEST_TYPE",
    "MANIFEST_TYPE_V2",
    "ArtifactDigest",
    "DigestScheme",
    "DirectoryManifest",
    "FileEntry",
    "ManifestDiff",
    "digest_directory",
    "digest_path",
    "intoto_dir_digest",
    "path_components_key",
    "sha256_file",
]
