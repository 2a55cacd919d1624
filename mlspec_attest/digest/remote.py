"""Objects in a store named by URL (``s3://``, ``gs://``, any fsspec scheme), listed and hashed.

:func:`open_target` finds what a URL names: one object, or a prefix whose
objects are listed recursively under the artifact walker's rules where they
apply (:class:`~mlspec_attest.digest.walk.IgnoreRules`, names a manifest can
hold; object stores have no symlinks or special files). :class:`ObjectHashing`
hashes the objects *streaming*: each is read in :data:`READ_BLOCK` ranges into
the engine's own hash objects (:func:`~mlspec_attest.digest.engine.hasher_factory`),
never copied to disk, several objects (or shards) at once. The results are the
engine's shapes, so :mod:`mlspec_attest.digest.artifact` builds the very same
manifest as for a local folder holding the same bytes.

fsspec and the store's own package (s3fs, gcsfs ...) are imported on first use;
credentials come from the store's usual configuration (docs/scale.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from msgspec import Struct

from mlspec_attest.digest._schedule import Cursor, run_workers
from mlspec_attest.digest.directory import order_key
from mlspec_attest.digest.engine import ProgressSink, hasher_factory, shard_bounds
from mlspec_attest.digest.scheme import DigestScheme
from mlspec_attest.digest.walk import IgnoreRules
from mlspec_attest.errors import (
    PACKAGES,
    ArtifactPathError,
    BackendError,
    BadInputError,
    MlspecError,
    install_hint,
    require,
)
from mlspec_attest.formats.fsutil import check_relative_name
from mlspec_attest.formats.limits import MAX_SHARDS
from mlspec_attest.formats.objecturl import normalized_url

READ_BLOCK = 8 << 20
"""Bytes asked of the store per request: large enough to amortize a round trip."""
DEFAULT_REMOTE_WORKERS = 8
"""Objects (or shards) read at once: object stores reward concurrent requests."""


class RemoteObject(Struct, frozen=True):
    """One object of a target: its manifest name (``.`` for a lone object), path and size."""

    name: str
    path: str
    size: int


class RemoteTarget(Struct, frozen=True):
    """What a URL names: one object or a prefix, with its objects in manifest order."""

    url: str
    fs: Any
    kind: Literal["file", "directory"]
    objects: tuple[RemoteObject, ...]

    def object_url(self, obj: RemoteObject) -> str:
        """The URL of one object (what a cluster worker opens)."""
        return self.url if obj.name == "." else f"{self.url}/{obj.name}"


# --------------------------------------------------------------- errors
@contextlib.contextmanager
def store_errors(url: str) -> Iterator[None]:
    """Turn what fsspec and the store's client raise into the contract's errors.

    Not found is bad input (exit 3); missing credentials, access refused or a
    store that cannot be reached is an unavailable backend (exit 4).
    """
    try:
        yield
    except MlspecError:
        raise
    except FileNotFoundError as exc:
        raise ArtifactPathError(f"{url}: no such object or prefix") from exc
    except ImportError as exc:
        raise _missing_package(url, exc) from exc
    except PermissionError as exc:
        raise BackendError(
            f"{url}: access denied by the object store ({exc})",
            remedy="check the credentials and the bucket's permissions (docs/scale.md)",
        ) from exc
    except Exception as exc:
        name = type(exc).__name__
        if "Credential" in name or "Token" in name:
            raise BackendError(
                f"{url}: no credentials for the object store ({exc})",
                remedy="configure credentials as the store's client expects "
                "(AWS_ACCESS_KEY_ID/AWS_PROFILE for S3; docs/scale.md)",
            ) from exc
        raise BackendError(f"{url}: object store unavailable ({name}: {exc})") from exc


def _missing_package(url: str, exc: ImportError) -> BackendError:
    top = (exc.name or "").partition(".")[0]
    if top in PACKAGES:
        return BackendError(
            f"{url}: reading this object store needs {PACKAGES[top][0]}, which is not installed",
            remedy=install_hint(PACKAGES[top][1]),
        )
    return BackendError(f"{url}: {exc}", remedy=install_hint("remote"))


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system and the path within it that ``url`` names."""
    fsspec = require("fsspec", "object store URLs")
    with store_errors(url):
        try:
            fs, path = fsspec.core.url_to_fs(url)
        except ValueError as exc:  # "Protocol not known: ..."
            raise BadInputError(
                f"{url}: {exc}", remedy="use s3://, gs://, or another scheme fsspec knows"
            ) from exc
    return fs, str(path)


# -------------------------------------------------------------- listing
def open_target(url: str, ignore: Sequence[str] = ()) -> RemoteTarget:
    """The object ``url`` names, or every object under it (a prefix), in manifest order."""
    url = normalized_url(url)
    fs, path = filesystem(url)
    with store_errors(url):
        fs.invalidate_cache()  # never a listing remembered from before: list it now
        info = fs.info(path)
        if info.get("type") != "directory":
            obj = RemoteObject(".", path, int(info.get("size") or 0))
            return RemoteTarget(url, fs, "file", (obj,))
        found = fs.find(path, withdirs=False, detail=True)
    rules = IgnoreRules(ignore) if ignore else None
    base = path.rstrip("/") + "/"
    objects = []
    for full, entry in found.items():
        if entry.get("type") != "file" or not full.startswith(base) or full.endswith("/"):
            continue  # "folder" marker objects hold no bytes of the artifact
        rel = full[len(base) :]
        if rules is not None and _ignored(rules, rel):
            continue
        _check_key(url, rel)
        objects.append(RemoteObject(rel, full, int(entry.get("size") or 0)))
    objects.sort(key=lambda o: order_key(o.name))
    return RemoteTarget(url, fs, "directory", tuple(objects))


def _ignored(rules: IgnoreRules, rel: str) -> bool:
    """As the local walker: a folder that matches leaves out everything below it."""
    parts = rel.split("/")
    return any(rules.matches("/".join(parts[: i + 1]), parts[i]) for i in range(len(parts)))


def _check_key(url: str, rel: str) -> None:
    try:
        check_relative_name(rel)
    except ArtifactPathError as exc:
        raise ArtifactPathError(
            f"{url}/{rel}: this object's key cannot be named in a manifest "
            "(an empty, '.' or '..' component, or a '\\')",
            remedy="rename the object, or leave it out with an ignore pattern",
        ) from exc


# -------------------------------------------------------------- hashing
def digest_stream(
    fs: Any,
    path: str,
    algorithm: str,
    start: int = 0,
    end: int | None = None,
    progress: ProgressSink | None = None,
) -> tuple[bytes, int]:
    """Digest and length of bytes ``[start, end)`` of one object (to its end if None).

    Read in :data:`READ_BLOCK` ranges into one hash object: memory stays bounded
    whatever the object's size.
    """
    h = hasher_factory(algorithm)()
    done = 0
    want = None if end is None else end - start
    with fs.open(path, "rb", block_size=READ_BLOCK, cache_type="none") as stream:
        if start:
            stream.seek(start)
        while want is None or done < want:
            block = stream.read(READ_BLOCK if want is None else min(READ_BLOCK, want - done))
            if not block:
                break
            h.update(block)
            done += len(block)
            if progress is not None:
                progress.advance(len(block))
    if want is not None and done != want:
        raise ArtifactPathError(f"{path}: object shrank while it was hashed")
    return bytes(h.digest()), done


def digest_object_url(
    url: str, algorithm: str, start: int = 0, end: int | None = None
) -> tuple[bytes, int]:
    """:func:`digest_stream` of the object at ``url`` (what a cluster worker runs)."""
    fs, path = filesystem(url)
    with store_errors(url):
        return digest_stream(fs, path, algorithm, start, end)


class ObjectHashing:
    """The objects of one target hashed streaming, several at once, as the engine returns them."""

    def __init__(
        self,
        target: RemoteTarget,
        scheme: DigestScheme,
        *,
        workers: int | None = None,
        progress: ProgressSink | None = None,
    ) -> None:
        self.target = target
        self.algorithm = scheme.algorithm
        self.shard_size = scheme.shard_size
        self.workers = workers or DEFAULT_REMOTE_WORKERS
        self.progress = progress

    def _run(self, count: int, job: Any) -> None:
        objects = self.target.objects
        if self.progress is not None:
            self.progress.begin(self.target.url, len(objects), sum(o.size for o in objects))
        try:

            def work(cursor: Cursor) -> None:
                while (batch := cursor.claim()) is not None:
                    for j in batch:
                        job(j)

            with store_errors(self.target.url):
                run_workers(self.workers, count, work)
        finally:
            if self.progress is not None:
                self.progress.end()

    def files(self) -> list[tuple[bytes, int]]:
        """``(raw digest, size)`` of every object, in the target's order."""
        objects = self.target.objects
        out: list[tuple[bytes, int]] = [(b"", 0)] * len(objects)

        def job(i: int) -> None:
            obj = objects[i]
            out[i] = digest_stream(self.target.fs, obj.path, self.algorithm, 0, None, self.progress)
            if out[i][1] != obj.size:
                raise ArtifactPathError(f"{self.target.object_url(obj)}: changed while hashed")
            if self.progress is not None:
                self.progress.advance(0, 1)

        self._run(len(objects), job)
        return out

    def shards(self) -> list[tuple[list[bytes], int]]:
        """The shard digests of every object (model-signing's byte ranges) and its size."""
        objects = self.target.objects
        bounds = [shard_bounds(o.size, self.shard_size) for o in objects]
        jobs = [(i, k, s, e) for i, b in enumerate(bounds) for k, (s, e) in enumerate(b)]
        if len(jobs) > MAX_SHARDS:
            raise BadInputError(
                f"{self.target.url} would be split into {len(jobs)} shards "
                f"(the limit is {MAX_SHARDS})",
                remedy="use a larger shard size",
            )
        out: list[list[bytes]] = [[b""] * len(b) for b in bounds]

        def job(j: int) -> None:
            i, k, start, end = jobs[j]
            path = objects[i].path
            out[i][k] = digest_stream(
                self.target.fs, path, self.algorithm, start, end, self.progress
            )[0]

        self._run(len(jobs), job)
        return [(digests, o.size) for digests, o in zip(out, objects, strict=True)]
