"""OpenSSF model-signing serializations: strategies over the one engine.

A model is serialized as model-signing does it, so that the resources computed
here equal the ones ``model_signing`` computes for the same folder:

* **files**: one resource per regular file, named by its path relative to the
  model (``.`` when the model is a single file), digest = hash of the file
  (:func:`mlspec_attest.digest.engine.digest_files`).
* **shards**: every non-empty file is cut into ``shard_size`` byte ranges; one
  resource per range, named ``path:start:end``, algorithm
  ``<hash>-sharded-<shard_size>`` (:func:`mlspec_attest.digest.engine.digest_shards`).
  Empty files have no shards.

Resources are sorted by path components (``a/b`` before ``a-c``), then offsets.
The model's root is :func:`mlspec_attest.digest.directory.model_root` over the
raw resource digests in that order, as for every mlspec-attest manifest. The
walk is :func:`mlspec_attest.digest.walk.walk_model`; which algorithm may be
combined with which serialization is :func:`mlspec_attest.digest.scheme.check_combination`
(blake3 is never sharded), the same rule as ``mlspec-attest digest``.

The OMS statement that carries a serialization and its resources is
:mod:`mlspec_attest.interop.oms.manifest`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from msgspec import Struct

from mlspec_attest.digest.directory import model_root, path_components_key, sort_found
from mlspec_attest.digest.engine import digest_files, digest_shards, shard_bounds
from mlspec_attest.digest.scheme import ALGORITHMS, SERIALIZATIONS, check_combination
from mlspec_attest.digest.walk import Found, IgnoreRules, Refusal, walk_model
from mlspec_attest.errors import MalformedDocumentError, UsageError

# shard_size travels as a JSON (double) number: keep it exactly representable.
MAX_SHARD_SIZE = 2**53


class Serialization(Struct, frozen=True):
    """How a model is turned into resources (model-signing's ``predicate.serialization``)."""

    method: str = "files"
    hash_type: str = "sha256"
    allow_symlinks: bool = False
    shard_size: int | None = None
    ignore_paths: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        check_combination(self.hash_type, self.method)
        if self.method == "shards":
            if self.shard_size is None or not 0 < self.shard_size <= MAX_SHARD_SIZE:
                raise UsageError(f"shard size must be in 1..{MAX_SHARD_SIZE}")
        elif self.shard_size is not None:
            raise UsageError("a shard size only applies to the shards serialization")

    @property
    def resource_algorithm(self) -> str:
        """The ``algorithm`` of every resource: ``sha256`` or ``sha256-sharded-1000000000``."""
        if self.method == "shards":
            return f"{self.hash_type}-sharded-{self.shard_size}"
        return self.hash_type

    def to_json(self) -> dict[str, Any]:
        """The predicate's ``serialization`` object, keys in the order model-signing writes."""
        out: dict[str, Any] = {
            "method": self.method,
            "hash_type": self.hash_type,
            "allow_symlinks": self.allow_symlinks,
        }
        if self.shard_size is not None:
            # model-signing's protobuf Struct stores numbers as doubles: 1000000000.0
            out["shard_size"] = float(self.shard_size)
        if self.ignore_paths:
            out["ignore_paths"] = sorted(self.ignore_paths)
        return out

    @classmethod
    def from_json(cls, doc: Any, *, what: str = "serialization") -> Serialization:
        if not isinstance(doc, dict):
            raise MalformedDocumentError(f"{what}: expected an object")
        method, hash_type = doc.get("method"), doc.get("hash_type")
        if method not in SERIALIZATIONS:
            raise MalformedDocumentError(f"{what}: unknown method {method!r}")
        if not isinstance(hash_type, str) or hash_type not in ALGORITHMS:
            raise MalformedDocumentError(
                f"{what}: unsupported hash_type {hash_type!r}",
                remedy="model-signing hashes with sha256, blake2b or blake3",
            )
        allow_symlinks = doc.get("allow_symlinks")
        if not isinstance(allow_symlinks, bool):
            raise MalformedDocumentError(f"{what}: allow_symlinks must be true or false")
        shard_size = _shard_size(doc, what) if method == "shards" else None
        ignore = doc.get("ignore_paths", [])
        if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
            raise MalformedDocumentError(f"{what}: ignore_paths must be a list of strings")
        try:
            return cls(str(method), hash_type, allow_symlinks, shard_size, frozenset(ignore))
        except UsageError as exc:  # blake3 with shards: no tool computes that manifest
            raise MalformedDocumentError(f"{what}: {exc.message}", remedy=exc.remedy) from exc


def _shard_size(doc: dict[str, Any], what: str) -> int:
    raw = doc.get("shard_size")
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | float)
        or not math.isfinite(raw)
        or raw != int(raw)
        or not 0 < raw <= MAX_SHARD_SIZE
    ):
        raise MalformedDocumentError(f"{what}: shard_size must be a positive integer, got {raw!r}")
    return int(raw)


class Resource(Struct, frozen=True):
    """One signed item: a file or a file shard with its digest (lowercase hex)."""

    name: str
    algorithm: str
    digest: str

    def to_json(self) -> dict[str, str]:
        return {"algorithm": self.algorithm, "digest": self.digest, "name": self.name}


def split_shard_name(name: str) -> tuple[str, int, int] | None:
    """``path:start:end`` -> (path, start, end), or None when it is not a shard name."""
    path, sep1, rest = name.rpartition(":")
    path, sep2, start = path.rpartition(":")
    if not (sep1 and sep2 and start.isdecimal() and rest.isdecimal()):
        return None
    return path, int(start), int(rest)


def resource_sort_key(name: str, method: str) -> tuple[Any, ...]:
    """model-signing's order: path components, then shard offsets."""
    if method == "shards":
        parts = split_shard_name(name)
        if parts is not None:
            return (path_components_key(parts[0]), parts[1], parts[2])
    return (path_components_key(name), 0, 0)


def root_digest(resources: Iterable[Resource]) -> str:
    """The model's root over the resources in the order given (the subject digest)."""
    return model_root([bytes.fromhex(r.digest) for r in resources])


class SerializedModel(Struct, frozen=True):
    """A model's resources in model-signing order, and the entries it could not hold."""

    resources: tuple[Resource, ...]
    refused: tuple[Refusal, ...]

    @property
    def root(self) -> str:
        return root_digest(self.resources)


Strategy = Callable[[Found, Serialization, "int | None"], list[Resource]]


def _by_file(found: Found, spec: Serialization, workers: int | None) -> list[Resource]:
    hashed = digest_files([path for _, path in found], spec.hash_type, workers=workers)
    algorithm = spec.resource_algorithm
    return [
        Resource(name, algorithm, raw.hex())
        for (name, _), (raw, _size) in zip(found, hashed, strict=True)
    ]


def _by_shard(found: Found, spec: Serialization, workers: int | None) -> list[Resource]:
    assert spec.shard_size is not None  # checked by Serialization
    paths = [path for _, path in found]
    sharded = digest_shards(paths, spec.hash_type, spec.shard_size, workers=workers)
    algorithm = spec.resource_algorithm
    return [
        Resource(f"{name}:{start}:{end}", algorithm, raw.hex())
        for (name, _), (digests, size) in zip(found, sharded, strict=True)
        for (start, end), raw in zip(shard_bounds(size, spec.shard_size), digests, strict=True)
    ]


STRATEGIES: dict[str, Strategy] = {"files": _by_file, "shards": _by_shard}
"""model-signing's serializations, each over the engine."""


def serialize_model(
    model: Path,
    serialization: Serialization,
    *,
    extra_ignore: Iterable[str] = (),
    workers: int | None = None,
) -> SerializedModel:
    """Walk and hash ``model``; ignores = the serialization's ignore_paths plus ``extra_ignore``.

    Entries a model cannot hold (symlinks when not allowed, special files) are
    left out and returned as refusals, in path order.
    """
    ignore = IgnoreRules.exact_paths([*serialization.ignore_paths, *extra_ignore])
    found, refused = walk_model(
        os.fspath(model), ignore, allow_symlinks=serialization.allow_symlinks
    )
    sort_found(found)
    resources = STRATEGIES[serialization.method](found, serialization, workers)
    ordered = sorted(refused, key=lambda r: path_components_key(r.name))
    return SerializedModel(tuple(resources), tuple(ordered))
