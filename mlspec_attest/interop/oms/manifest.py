"""OpenSSF model-signing (OMS) manifests: the signed statement and its reading.

A model signature signs an in-toto Statement whose single subject carries the
model's root digest and whose predicate (``https://model_signing/signature/v1.0``)
lists the serialization and every resource. This module writes that statement
byte for byte as model-signing does (:meth:`ModelManifest.payload`), reads it back
(:func:`parse_statement`, also the legacy ``Digests/v0.1`` form) and compares a
signed manifest with the model on disk (:func:`compare_resources`).

Serializing a model (walking, hashing files or shards, the root) is not done
here: it is :mod:`mlspec_attest.digest.serialization`, a strategy over the one
digest engine, so that ``verify`` (below this layer) can check a served model
without the OMS format. :func:`build_manifest` only puts its result into a
statement.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from msgspec import Struct

from mlspec_attest.digest.serialization import (
    Resource,
    Serialization,
    resource_sort_key,
    root_digest,
    serialize_model,
    split_shard_name,
)
from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.jsonio import loads_strict

__all__ = [
    "GIT_PATHS",
    "IN_TOTO_STATEMENT_V1",
    "PREDICATE_LEGACY",
    "PREDICATE_V1",
    "ModelManifest",
    "Problem",
    "Resource",
    "Serialization",
    "SignedManifest",
    "build_manifest",
    "compare_resources",
    "model_name_of",
    "parse_statement",
    "resource_sort_key",
    "root_digest",
    "split_shard_name",
    "unsafe_name_reason",
]

IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
PREDICATE_V1 = "https://model_signing/signature/v1.0"
PREDICATE_LEGACY = "https://model_signing/Digests/v0.1"
GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")


class Problem(Struct, frozen=True):
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


class ModelManifest(Struct, frozen=True):
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


class SignedManifest(Struct, frozen=True):
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
    name, subject_digest = _subject(subjects)
    predicate = doc.get("predicate")
    if not isinstance(predicate, dict):
        raise MalformedDocumentError("signed statement: predicate must be an object")
    serialization = Serialization.from_json(
        predicate.get("serialization"), what="predicate.serialization"
    )
    resources = _resources(predicate.get("resources"))
    problems = _name_problems(resources, serialization.method)
    problems += _root_problems(resources, subject_digest)
    problems += _ignore_problems(serialization)
    return SignedManifest(
        str(predicate_type), name, serialization, tuple(resources), subject_digest, tuple(problems)
    )


def _subject(subjects: list[dict[str, Any]]) -> tuple[str | None, str]:
    """The (informative) name and the sha256 digest of the statement's one subject."""
    if len(subjects) != 1:
        raise MalformedDocumentError(
            f"signed statement: expected exactly one subject, got {len(subjects)}"
        )
    subject = subjects[0]
    digest = subject.get("digest")
    if not isinstance(digest, dict) or "sha256" not in digest:
        raise MalformedDocumentError("signed statement: subject has no sha256 digest")
    name = subject.get("name")
    return (name if isinstance(name, str) else None), _hex(digest["sha256"], "subject")


def _resources(raw_resources: Any) -> list[Resource]:
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
    return resources


def _root_problems(resources: Sequence[Resource], subject_digest: str) -> list[Problem]:
    listed_root = root_digest(resources)
    if listed_root == subject_digest:
        return []
    return [
        Problem(
            "root-digest",
            "the subject digest does not cover the listed resources (manifest is inconsistent)",
            expected=f"sha256:{subject_digest}",
            found=f"sha256:{listed_root}",
        )
    ]


def _ignore_problems(serialization: Serialization) -> list[Problem]:
    problems = []
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
    return problems


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
    """Serialize ``model`` (:func:`~mlspec_attest.digest.serialization.serialize_model`)
    into the manifest a signature carries; ignores = the serialization's
    ignore_paths plus ``extra_ignore``.

    Entries that cannot be part of a model (symlinks when not allowed, special
    files) are returned as problems and left out.
    """
    serialized = serialize_model(model, serialization, extra_ignore=extra_ignore, workers=workers)
    problems = [Problem(r.check, r.message, remedy=r.remedy) for r in serialized.refused]
    return ModelManifest(model_name_of(model), serialization, serialized.resources), problems


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
                remedy=f"remove the file, ignore it with {named('ignore_paths')}, or re-sign the model",
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
