"""Digest schemes: which algorithm hashes an artifact, and how its files are serialized.

The one registry of digest algorithms (:data:`ALGORITHMS`), serializations
(:data:`SERIALIZATIONS`), the one shard-size default (:data:`DEFAULT_SHARD_SIZE`)
and the one rule on which combinations exist (:func:`check_combination`). Both
mlspec-attest's own manifests (:class:`DigestScheme`) and OpenSSF model-signing
serializations (:class:`mlspec_attest.digest.serialization.Serialization`) are
checked by that rule, so ``mlspec-attest digest`` and ``mlspec-attest model
sign``/``model verify`` accept and refuse the same things.

This module imports nothing heavy: the CLI reads its constants for ``--help``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from msgspec import Struct

from mlspec_attest.errors import BadInputError, UsageError

ALGORITHMS: Mapping[str, int] = {"sha256": 32, "blake2b": 64, "blake3": 32}
"""Every digest algorithm mlspec-attest computes, with its digest size in bytes."""

SERIALIZATIONS = ("files", "shards")
"""model-signing's serializations: one digest per file, or one per byte range."""

DEFAULT_SHARD_SIZE = 1_000_000_000
"""model-signing's default shard length (1 GB), for every ``--shard-size``."""

_SHARDED_KEY = re.compile(r"^(sha256|blake2b)-sharded-([1-9][0-9]{0,17})$")


def check_combination(algorithm: str, serialization: str) -> None:
    """Refuse an unknown algorithm or serialization, and blake3 with shards.

    blake3 with shards is refused everywhere (the safe rule; docs/formats.md,
    "Digest schemes"): model-signing itself never shards blake3 (its
    ``use_shard_serialization`` falls back to files) and re-hashes a recorded
    ``blake3`` shards serialization as files, so such a manifest could never be
    checked by the reference tool.
    """
    if algorithm not in ALGORITHMS:
        raise UsageError(
            f"unknown digest algorithm {algorithm!r}",
            remedy="use one of: " + ", ".join(ALGORITHMS),
        )
    if serialization not in SERIALIZATIONS:
        raise UsageError(f"unknown serialization {serialization!r}", remedy="use files or shards")
    if serialization == "shards" and algorithm == "blake3":
        raise UsageError(
            "blake3 is not sharded: it already hashes one file on every core",
            remedy="use the files serialization with blake3",
        )


class DigestScheme(Struct, frozen=True):
    """How an artifact is hashed: algorithm, serialization and (for shards) shard size.

    The default, ``sha256``/``files``, is what every attestation used before
    schemes existed; its manifests keep the v1 format.
    """

    algorithm: str = "sha256"
    serialization: str = "files"
    shard_size: int = DEFAULT_SHARD_SIZE

    def __post_init__(self) -> None:
        check_combination(self.algorithm, self.serialization)
        if self.shard_size < 1:
            raise UsageError(f"shard size must be positive, got {self.shard_size}")

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
