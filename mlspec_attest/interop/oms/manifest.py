"""OpenSSF model-signing (OMS) manifests: serializations, hashing and the signed statement.

A model is serialized as model-signing does it, so that a manifest built here
equals the one ``model_signing`` builds for the same folder:

* **files**: one resource per regular file, named by its path relative to the
  model (``.`` when the model is a single file), digest = hash of the file.
* **shards**: every non-empty file is cut into ``shard_size`` byte ranges; one
  resource per range, named ``path:start:end``, algorithm
  ``<hash>-sharded-<shard_size>``. Empty files have no shards.

Resources are sorted by path components (``a/b`` before ``a-c``), then offsets.
The statement's single subject carries ROOT = sha256 over the raw resource
digests concatenated in the order listed. ``hash_type`` is ``sha256``,
``blake2b`` or ``blake3`` (blake3 needs the ``blake3`` package).

``ignore_paths`` are model-relative paths; a file is left out when one of them
is the file itself or a folder above it. Symlinks are followed only when the
serialization allows them; sockets, pipes and devices are never part of a model.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mlspec_attest.errors import ArtifactPathError, MalformedDocumentError, UsageError

IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
PREDICATE_V1 = "https://model_signing/signature/v1.0"
PREDICATE_LEGACY = "https://model_signing/Digests/v0.1"
HASH_SIZES: dict[str, int] = {"sha256": 32, "blake2b": 64, "blake3": 32}
METHODS = ("files", "shards")
GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
DEFAULT_SHARD_SIZE = 1_000_000_000
# shard_size travels as a JSON (double) number: keep it exactly representable.
MAX_SHARD_SIZE = 2**53
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Problem:
    """One reason a model signature is denied: the check, what was expected and found, the fix."""

    check: str
    message: str
    expected: str | None = None
    found: str | None = None
    remedy: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"check": self.check, "message": self.message}
        for key in ("expected", "found", "remedy"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out

    def __str__(self) -> str:
        return f"[{self.check}] {self.message}"


@dataclass(frozen=True)
class Serialization:
    """How a model was turned into resources (``predicate.serialization``)."""

    method: str = "files"
    hash_type: str = "sha256"
    allow_symlinks: bool = False
    shard_size: int | None = None
    ignore_paths: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UsageError(f"unknown serialization {self.method!r}", remedy="use files or shards")
        if self.hash_type not in HASH_SIZES:
            raise UsageError(
                f"unknown hash {self.hash_type!r}", remedy="use sha256, blake2b or blake3"
            )
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
        if method not in METHODS:
            raise MalformedDocumentError(f"{what}: unknown method {method!r}")
        if not isinstance(hash_type, str) or hash_type not in HASH_SIZES:
            raise MalformedDocumentError(
                f"{what}: unsupported hash_type {hash_type!r}",
                remedy="model-signing hashes with sha256, blake2b or blake3",
            )
        allow_symlinks = doc.get("allow_symlinks")
        if not isinstance(allow_symlinks, bool):
            raise MalformedDocumentError(f"{what}: allow_symlinks must be true or false")
        shard_size: int | None = None
        if method == "shards":
            raw = doc.get("shard_size")
            if (
                isinstance(raw, bool)
                or not isinstance(raw, int | float)
                or not math.isfinite(raw)
                or raw != int(raw)
                or not 0 < raw <= MAX_SHARD_SIZE
            ):
                raise MalformedDocumentError(
                    f"{what}: shard_size must be a positive integer, got {raw!r}"
                )
            shard_size = int(raw)
        ignore = doc.get("ignore_paths", [])
        if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
            raise MalformedDocumentError(f"{what}: ignore_paths must be a list of strings")
        return cls(str(method), str(hash_type), allow_symlinks, shard_size, frozenset(ignore))


@dataclass(frozen=True)
class Resource:
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
            return (tuple(parts[0].split("/")), parts[1], parts[2])
    return (tuple(name.split("/")), 0, 0)


def unsafe_name_reason(name: str) -> str | None:
    """Why a resource path cannot name a file inside the model (None if it can)."""
    if name == ".":
        return None
    if not name:
        return "empty name"
    drive = len(name) > 1 and name[0].isalpha() and name[1] == ":"
    if name.startswith(("/", "\\")) or (drive and (len(name) == 2 or name[2] in "/\\")):
        return "absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "contains '..'"
    if any(p in ("", ".") for p in parts):
        return "not a normalized relative path"
    if "\x00" in name:
        return "contains a NUL byte"
    return None


def root_digest(resources: Iterable[Resource]) -> str:
    """sha256 over the raw digests concatenated in the order given (the subject digest)."""
    h = hashlib.sha256()
    for r in resources:
        h.update(bytes.fromhex(r.digest))
    return h.hexdigest()


@dataclass(frozen=True)
class ModelManifest:
    """A serialized model: name (informative only), serialization and sorted resources."""

    model_name: str
    serialization: Serialization
    resources: tuple[Resource, ...]

    @property
    def root_digest(self) -> str:
        return root_digest(self.resources)

    def statement(self) -> dict[str, Any]:
        """The in-toto Statement model-signing signs, keys in the order it writes them."""
        return {
            "_type": IN_TOTO_STATEMENT_V1,
            "subject": [{"name": self.model_name, "digest": {"sha256": self.root_digest}}],
            "predicateType": PREDICATE_V1,
            "predicate": {
                "serialization": self.serialization.to_json(),
                "resources": [r.to_json() for r in self.resources],
            },
        }

    def payload(self) -> bytes:
        """The DSSE payload, formatted as model-signing formats it (2-space JSON)."""
        return json.dumps(self.statement(), indent=2, ensure_ascii=False).encode()


@dataclass(frozen=True)
class SignedManifest:
    """What a verified signature says about the model."""

    predicate_type: str
    model_name: str | None
    serialization: Serialization
    resources: tuple[Resource, ...]
    subject_digest: str | None
    problems: tuple[Problem, ...] = ()

    @property
    def legacy(self) -> bool:
        return self.predicate_type == PREDICATE_LEGACY


def _hex(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise MalformedDocumentError(f"{what}: digest must be a hex string")
    try:
        bytes.fromhex(value)
    except ValueError as exc:
        raise MalformedDocumentError(f"{what}: digest {value!r} is not hex") from exc
    if not value or len(value) % 2:
        raise MalformedDocumentError(f"{what}: digest {value!r} is not hex")
    return value.lower()


def _name_problems(resources: Sequence[Resource], method: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for r in resources:
        path = r.name
        if method == "shards":
            parts = split_shard_name(r.name)
            if parts is None or parts[2] <= parts[1]:
                problems.append(
                    Problem(
                        "resource-name",
                        f"shard resource {r.name!r} is not 'path:start:end' with end > start",
                    )
                )
                continue
            path = parts[0]
        reason = unsafe_name_reason(path)
        if reason:
            problems.append(
                Problem(
                    "resource-name",
                    f"resource name {r.name!r} is refused: {reason}",
                    expected="a normalized path relative to the model",
                    found=r.name,
                    remedy="the signature was not made by model-signing for this model; "
                    "do not use the model",
                )
            )
        if r.name in seen:
            problems.append(Problem("resource-name", f"resource {r.name!r} is listed twice"))
        seen.add(r.name)
    return problems


def parse_statement(payload: bytes) -> SignedManifest:
    """Read the (already signature-checked) in-toto statement of a model signature.

    Raises :class:`MalformedDocumentError` when it is not a model-signing
    statement at all; unsafe resource names, duplicates and a subject digest that
    does not cover the resources are returned as problems (denials).
    """
    from mlspec_attest.formats.jsonio import loads_strict

    doc = loads_strict(payload, what="signed statement")
    if not isinstance(doc, dict):
        raise MalformedDocumentError("signed statement: expected a JSON object")
    if doc.get("_type") != IN_TOTO_STATEMENT_V1:
        raise MalformedDocumentError(
            f"signed statement: _type {doc.get('_type')!r} is not {IN_TOTO_STATEMENT_V1}"
        )
    predicate_type = doc.get("predicateType")
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or not all(isinstance(s, dict) for s in subjects):
        raise MalformedDocumentError("signed statement: subject must be a list of objects")
    if predicate_type == PREDICATE_LEGACY:
        return _parse_legacy(subjects)
    if predicate_type != PREDICATE_V1:
        raise MalformedDocumentError(
            f"signed statement: predicateType {predicate_type!r} is not a model signature",
            remedy=f"expected {PREDICATE_V1} (or the legacy {PREDICATE_LEGACY})",
        )
    if len(subjects) != 1:
        raise MalformedDocumentError(
            f"signed statement: expected exactly one subject, got {len(subjects)}"
        )
    subject = subjects[0]
    digest = subject.get("digest")
    if not isinstance(digest, dict) or "sha256" not in digest:
        raise MalformedDocumentError("signed statement: subject has no sha256 digest")
    subject_digest = _hex(digest["sha256"], "subject")
    name = subject.get("name")
    predicate = doc.get("predicate")
    if not isinstance(predicate, dict):
        raise MalformedDocumentError("signed statement: predicate must be an object")
    serialization = Serialization.from_json(
        predicate.get("serialization"), what="predicate.serialization"
    )
    raw_resources = predicate.get("resources")
    if not isinstance(raw_resources, list):
        raise MalformedDocumentError("signed statement: predicate.resources must be a list")
    resources = []
    for i, raw in enumerate(raw_resources):
        what = f"predicate.resources[{i}]"
        if not isinstance(raw, dict):
            raise MalformedDocumentError(f"{what}: expected an object")
        r_name, algorithm = raw.get("name"), raw.get("algorithm")
        if not isinstance(r_name, str) or not isinstance(algorithm, str):
            raise MalformedDocumentError(f"{what}: name and algorithm must be strings")
        resources.append(Resource(r_name, algorithm, _hex(raw.get("digest"), what)))
    problems = _name_problems(resources, serialization.method)
    listed_root = root_digest(resources)
    if listed_root != subject_digest:
        problems.append(
            Problem(
                "root-digest",
                "the subject digest does not cover the listed resources (manifest is inconsistent)",
                expected=f"sha256:{subject_digest}",
                found=f"sha256:{listed_root}",
            )
        )
    for i, ignored in enumerate(sorted(serialization.ignore_paths)):
        reason = unsafe_name_reason(ignored.rstrip("/") or ignored)
        if reason:
            problems.append(
                Problem(
                    "ignore-path",
                    f"recorded ignore_paths entry {ignored!r} is refused: {reason}",
                    found=f"ignore_paths[{i}]",
                )
            )
    return SignedManifest(
        str(predicate_type),
        name if isinstance(name, str) else None,
        serialization,
        tuple(resources),
        subject_digest,
        tuple(problems),
    )


def _parse_legacy(subjects: list[dict[str, Any]]) -> SignedManifest:
    """model-signing v0.2: one subject per file, always sha256 over whole files, no root."""
    resources = []
    for i, subject in enumerate(subjects):
        name, digest = subject.get("name"), subject.get("digest")
        if not isinstance(name, str) or not isinstance(digest, dict) or "sha256" not in digest:
            raise MalformedDocumentError(f"signed statement: subject[{i}] needs a name and sha256")
        resources.append(Resource(name, "sha256", _hex(digest["sha256"], f"subject[{i}]")))
    problems = _name_problems(resources, "files")
    return SignedManifest(
        PREDICATE_LEGACY, None, Serialization(), tuple(resources), None, tuple(problems)
    )


# --- walking and hashing a model ------------------------------------------------------------


@dataclass(frozen=True)
class ModelFile:
    name: str
    path: Path
    size: int


@dataclass
class _Walk:
    files: list[ModelFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def normalize_ignore(paths: Iterable[str]) -> frozenset[tuple[str, ...]]:
    """Model-relative ignore paths as component tuples (``.`` = the whole model)."""
    out = set()
    for p in paths:
        pure = PurePosixPath(p.replace("\\", "/"))
        out.add(tuple(part for part in pure.parts if part != "."))
    return frozenset(out)


def _is_ignored(parts: tuple[str, ...], ignore: Collection[tuple[str, ...]]) -> bool:
    return any(parts[:n] in ignore for n in range(len(parts) + 1))


def collect_files(
    model: Path, *, ignore: Collection[tuple[str, ...]], allow_symlinks: bool
) -> tuple[list[ModelFile], list[Problem]]:
    """Every file of the model (not ignored), and why some entries cannot be part of it."""
    walk = _Walk()
    try:
        top = os.lstat(model)
    except FileNotFoundError as exc:
        raise ArtifactPathError(f"{model}: model not found") from exc
    except OSError as exc:
        raise ArtifactPathError(f"{model}: cannot read ({exc.strerror})") from exc
    if _is_ignored((), ignore):
        return [], []
    _visit(model, (), top, walk, ignore, allow_symlinks, frozenset())
    return walk.files, walk.problems


def _visit(
    path: Path,
    parts: tuple[str, ...],
    st: os.stat_result,
    walk: _Walk,
    ignore: Collection[tuple[str, ...]],
    allow_symlinks: bool,
    ancestors: frozenset[tuple[int, int]],
) -> None:
    name = "/".join(parts) or "."
    if stat.S_ISLNK(st.st_mode):
        if not allow_symlinks:
            walk.problems.append(
                Problem(
                    "symlink",
                    f"{name} is a symbolic link and the serialization does not allow symlinks",
                    remedy="remove the link, or sign with --allow-symlinks",
                )
            )
            return
        try:
            st = os.stat(path)
        except OSError:
            walk.problems.append(Problem("symlink", f"{name} is a broken symbolic link"))
            return
    if stat.S_ISREG(st.st_mode):
        walk.files.append(ModelFile(name, path, st.st_size))
        return
    if not stat.S_ISDIR(st.st_mode):
        walk.problems.append(
            Problem("special-file", f"{name} is neither a regular file nor a directory")
        )
        return
    ident = (st.st_dev, st.st_ino)
    if ident in ancestors:
        walk.problems.append(Problem("symlink", f"{name} links back to a folder above it"))
        return
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as exc:
        raise ArtifactPathError(f"{path}: cannot list folder ({exc.strerror})") from exc
    for entry in entries:
        child = (*parts, entry.name)
        if _is_ignored(child, ignore):
            continue
        try:
            child_st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            raise ArtifactPathError(f"{entry.path}: cannot read ({exc.strerror})") from exc
        _visit(Path(entry.path), child, child_st, walk, ignore, allow_symlinks, ancestors | {ident})


def _hasher_factory(hash_type: str) -> Callable[[], Any]:
    if hash_type == "sha256":
        return hashlib.sha256
    if hash_type == "blake2b":
        return hashlib.blake2b
    from mlspec_attest.errors import require

    blake3: Any = require("blake3", "the blake3 digest algorithm")

    def make() -> Any:
        return blake3.blake3(max_threads=blake3.blake3.AUTO)

    return make


def _hash_range(path: Path, make: Callable[[], Any], start: int, length: int | None) -> str:
    h = make()
    try:
        with open(path, "rb") as fh:
            if start:
                fh.seek(start)
            remaining = length
            while remaining is None or remaining > 0:
                want = _CHUNK if remaining is None else min(_CHUNK, remaining)
                data = fh.read(want)
                if not data:
                    break
                h.update(data)
                if remaining is not None:
                    remaining -= len(data)
    except OSError as exc:
        raise ArtifactPathError(f"{path}: cannot read ({exc.strerror})") from exc
    return str(h.hexdigest())


def shard_ranges(size: int, shard_size: int) -> list[tuple[int, int]]:
    """(start, end) of every shard of a ``size``-byte file; none for an empty file."""
    return [(start, min(start + shard_size, size)) for start in range(0, size, shard_size)]


def hash_files(
    files: Sequence[ModelFile], serialization: Serialization, *, workers: int | None = None
) -> tuple[Resource, ...]:
    """The resources of ``files`` under ``serialization``, sorted as model-signing sorts them."""
    make = _hasher_factory(serialization.hash_type)
    algorithm = serialization.resource_algorithm
    jobs: list[tuple[str, Path, int, int | None]] = []
    for f in files:
        if serialization.method == "files":
            jobs.append((f.name, f.path, 0, None))
            continue
        assert serialization.shard_size is not None
        for start, end in shard_ranges(f.size, serialization.shard_size):
            jobs.append((f"{f.name}:{start}:{end}", f.path, start, end - start))

    def run(job: tuple[str, Path, int, int | None]) -> Resource:
        name, path, start, length = job
        return Resource(name, algorithm, _hash_range(path, make, start, length))

    if len(jobs) <= 1 or workers == 1:
        resources = [run(j) for j in jobs]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            resources = list(pool.map(run, jobs))
    method = serialization.method
    return tuple(sorted(resources, key=lambda r: resource_sort_key(r.name, method)))


def model_name_of(model: Path) -> str:
    """The informative subject name: the model path's last component."""
    name = model.name
    if not name or name == "..":
        name = os.path.basename(os.path.abspath(model))
    return name


def build_manifest(
    model: Path,
    serialization: Serialization,
    *,
    extra_ignore: Iterable[str] = (),
    workers: int | None = None,
) -> tuple[ModelManifest, list[Problem]]:
    """Serialize ``model``; ignores = the serialization's ignore_paths plus ``extra_ignore``.

    Entries that cannot be part of a model (symlinks when not allowed, special
    files) are returned as problems and left out.
    """
    ignore = normalize_ignore([*serialization.ignore_paths, *extra_ignore])
    files, problems = collect_files(
        model, ignore=ignore, allow_symlinks=serialization.allow_symlinks
    )
    resources = hash_files(files, serialization, workers=workers)
    return ModelManifest(model_name_of(model), serialization, resources), problems


def compare_resources(
    signed: Sequence[Resource], actual: Sequence[Resource], *, method: str
) -> list[Problem]:
    """Every difference between the signed resources and the model on disk."""
    expected = {r.name: r for r in signed}
    found = {r.name: r for r in actual}
    problems: list[Problem] = []

    def key(name: str) -> tuple[Any, ...]:
        return resource_sort_key(name, method)

    for name in sorted(found.keys() - expected.keys(), key=key):
        problems.append(
            Problem(
                "file-added",
                f"{name} is in the model but not in the signature",
                expected="absent",
                found=f"{found[name].algorithm}:{found[name].digest}",
                remedy="remove the file, ignore it with --ignore-paths, or re-sign the model",
            )
        )
    for name in sorted(expected.keys() - found.keys(), key=key):
        problems.append(
            Problem(
                "file-removed",
                f"{name} is signed but missing from the model",
                expected=f"{expected[name].algorithm}:{expected[name].digest}",
                found="absent",
                remedy="restore the file from the signed model",
            )
        )
    for name in sorted(expected.keys() & found.keys(), key=key):
        want, got = expected[name], found[name]
        if (want.algorithm, want.digest) != (got.algorithm, got.digest):
            problems.append(
                Problem(
                    "digest-mismatch",
                    f"{name} differs from the signed file",
                    expected=f"{want.algorithm}:{want.digest}",
                    found=f"{got.algorithm}:{got.digest}",
                    remedy="the file was modified after signing; restore it or re-sign",
                )
            )
    return problems
