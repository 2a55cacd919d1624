"""The serving gate: a model is opened only through a checked verification summary.

:func:`open_model` checks the signed summary (:func:`~.vsa_check.check_summary`), then
:func:`read_verified` reads the model's files (docs/serving.md, "Gate"):

* walked by the one walker (:func:`~mlspec_attest.digest.walk.walk_tree`): a symlink
  leaving the model, a FIFO, a device or a socket is refused;
* each file opened once (``O_NOFOLLOW``, non-blocking, ``fstat`` regular), read whole
  into a buffer of its size while sha256 hashes it (8 MiB reads, no second copy), and
  streamed into the verified copy (``copy_to``) if asked;
* BOTH the manifest's root and its address compared with the subject's ``sha256`` and
  ``manifest-sha256`` (a single file: its sha256): a renamed file changes the address.

Nothing is deserialized before that passes, and the loader gets the hashed bytes, never
a path. The copy is written under a private name and moved into place only then.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Literal

from msgspec import Struct

from mlspec_attest.digest.directory import DirectoryManifest, FileEntry, sort_found
from mlspec_attest.digest.walk import walk_tree
from mlspec_attest.errors import ArtifactPathError, BadInputError
from mlspec_attest.formats.fsutil import open_beneath
from mlspec_attest.formats.limits import MAX_MODEL_BYTES, format_size, too_large
from mlspec_attest.formats.memory import memory_available
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.serve.gate_copy import VerifiedCopy
from mlspec_attest.serve.loaders import Loader, load_model, read_card
from mlspec_attest.serve.model import Binding, ServedModel
from mlspec_attest.serve.vsa_check import (
    CheckedSummary,
    GateCheck,
    GateExpectations,
    GateReason,
    VerifierTrust,
    check_summary,
    deny,
)

MAX_FILES = 100_000  # files in one model: one descriptor and one manifest entry each
CHUNK = 8 << 20  # bytes per read: few system calls, still hashed from cache
HUGE = 2 << 20  # files from this size on go into huge-page memory (see _buffer)
WORKERS = 4  # files hashed at once (hashlib releases the GIL)
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class VerifiedFiles(Struct, frozen=True):
    """A model whose digests matched: ``digest`` (the root, or the single file's sha256)
    and ``address`` (directories), every file name in manifest order, the total size,
    read-only views of the bytes by name (empty unless kept), where the copy went."""

    kind: Literal["file", "directory"]
    digest: str
    address: str | None
    names: tuple[str, ...]
    size: int
    files: Mapping[str, memoryview]
    copy: Path | None = None


class _Read(Struct):
    name: str
    path: str
    sha256: str = ""
    size: int = 0
    data: memoryview | None = None


def read_verified(
    model: Path,
    subject_digest: Mapping[str, str],
    *,
    copy_to: Path | None = None,
    keep: bool = True,
    max_bytes: int | None = None,
    max_files: int = MAX_FILES,
) -> VerifiedFiles:
    """Read and hash every file of ``model``, compare with ``subject_digest`` (module doc);
    ``keep=False`` hashes (and copies) without holding the bytes. Denials raise
    :class:`~mlspec_attest.errors.GateDeniedError`."""
    root = _model_path(model)
    is_dir = os.path.isdir(root)
    reads = _listing(root, is_dir, max_files)
    copy = VerifiedCopy(copy_to, root) if copy_to is not None else None
    limit = MAX_MODEL_BYTES if max_bytes is None else max_bytes
    try:
        _read_all(reads, root, limit, keep, copy)
        digest, address = _compare(reads, is_dir, subject_digest, f"model {model}")
        written = copy.publish() if copy is not None else None
    except BaseException:
        if copy is not None:
            copy.discard()
        raise
    return VerifiedFiles(
        kind="directory" if is_dir else "file",
        digest=digest,
        address=address,
        names=tuple(r.name for r in reads),
        size=sum(r.size for r in reads),
        files={r.name: r.data for r in reads if r.data is not None},
        copy=written,
    )


def _model_path(model: Path) -> str:
    """The model's real path (the operator names it; links inside it are the walker's)."""
    path = os.path.realpath(model)
    if not os.path.lexists(path):
        raise ArtifactPathError(f"{model}: model not found")
    if not (os.path.isdir(path) or os.path.isfile(path)):
        raise ArtifactPathError(f"{model}: not a regular file or directory")
    return path


_refused = partial(
    GateReason,
    GateCheck.MODEL_FILES,
    expected="regular files inside the model",
    remedy="serve the files verify checked, without links out, pipes or devices",
)


def _listing(root: str, is_dir: bool, max_files: int) -> list[_Read]:
    if not is_dir:
        return [_Read(os.path.basename(root), root)]
    try:
        found = walk_tree(root)
    except ArtifactPathError as exc:
        raise deny([_refused(exc.message)], f"model {root}") from exc
    if len(found) > max_files:
        raise BadInputError(
            f"model {root}: {len(found)} files, more than {max_files}, the limit for a model"
        )
    sort_found(found)
    return [_Read(name, path) for name, path in found]


# ------------------------------------------------------------------ reading
class _Budget:
    """The total size bound, shared by the threads that read; when the bytes are kept for
    the loader, also the memory the process has left (a file's stated size is taken
    before its buffer is made: a sparse file of a few KiB on disk may claim gigabytes)."""

    def __init__(self, limit: int, keep: bool) -> None:
        self.limit, self.used, self.lock = limit, 0, threading.Lock()
        self.memory = memory_available() if keep else None

    def take(self, size: int, what: str) -> None:
        with self.lock:
            self.used += size
            if self.used > self.limit:
                raise BadInputError(too_large(what, self.limit, "a model the gate reads"))
            if self.memory is not None and self.used > self.memory:
                raise BadInputError(
                    f"{what}: the model's files need more than the {format_size(self.memory)} "
                    "of memory this process has left (the gate holds the bytes it verified "
                    "for the loader)",
                    remedy="serve it where there is more memory; `gate` alone checks a model "
                    "without holding it",
                )


def _read_all(
    reads: list[_Read], root: str, limit: int, keep: bool, copy: VerifiedCopy | None
) -> None:
    budget = _Budget(limit, keep)
    real_root = root if os.path.isdir(root) else os.path.dirname(root)
    root_fd = os.open(real_root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(WORKERS, len(reads)))) as pool:
            # list() re-raises the first failure
            list(
                pool.map(
                    lambda item: _read_one(item, (real_root, root_fd), budget, keep, copy), reads
                )
            )
    finally:
        os.close(root_fd)


def _open(item: _Read, root: tuple[str, int]) -> int:
    """Open once, below the model's folder as the gate opened it, following no link on
    the way (:func:`~mlspec_attest.formats.fsutil.open_beneath`: a folder swapped for a
    link after the walk cannot lead outside); a link the walker allowed (to a file inside
    the model) is opened at its target, itself opened the same way."""
    real_root, root_fd = root
    path = os.path.realpath(item.path) if os.path.islink(item.path) else item.path
    relative = os.path.relpath(path, real_root)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        raise ArtifactPathError(f"{item.name}: link points outside the model")
    try:
        fd = open_beneath(root_fd, relative.replace(os.sep, "/"), _OPEN)
    except OSError as exc:
        raise ArtifactPathError(
            f"{item.name}: cannot open ({exc.strerror}; a link in its path is never followed)"
        ) from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ArtifactPathError(f"{item.name}: not a regular file (a link, pipe or device)")
    os.set_blocking(fd, True)
    return fd


def _read_one(
    item: _Read, root: tuple[str, int], budget: _Budget, keep: bool, copy: VerifiedCopy | None
) -> None:
    try:
        fd = _open(item, root)
    except ArtifactPathError as exc:
        raise deny([_refused(exc.message)], f"model file {item.name}") from exc
    out = -1
    try:
        size = os.fstat(fd).st_size
        budget.take(size, f"model file {item.name}")
        out = copy.create(item.name) if copy is not None else -1
        buffer = _buffer(size, item.name) if keep else memoryview(bytearray(min(size, CHUNK)))
        item.sha256, item.size = _hash_into(fd, buffer, size, keep, out, item.name)
        item.data = buffer.toreadonly() if keep else None
        if out >= 0:
            os.fsync(out)
    finally:
        os.close(fd)
        if out >= 0:
            os.close(out)


def _buffer(size: int, name: str) -> memoryview:
    """Private memory for one file. Large ones are anonymous maps backed by huge pages
    where the kernel offers them (512 times fewer page faults than 4 KiB pages)."""
    try:
        if size < HUGE or not hasattr(mmap, "MADV_HUGEPAGE"):
            return memoryview(bytearray(size))
        memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (MemoryError, OSError) as exc:
        raise BadInputError(
            f"model file {name}: no memory for its {format_size(size)} ({exc or 'MemoryError'})"
        ) from None
    memory.madvise(mmap.MADV_HUGEPAGE)
    return memoryview(memory)  # the view keeps the map alive


def _hash_into(
    fd: int, buffer: memoryview, size: int, keep: bool, out: int, name: str
) -> tuple[str, int]:
    """Read exactly ``size`` bytes (into ``buffer`` at their offset when kept, else through
    it), hashing and copying each chunk; a file that changed length while read is refused."""
    h = hashlib.sha256()
    done = 0
    while done < size:
        step = min(CHUNK, size - done)
        chunk = buffer[done : done + step] if keep else buffer[:step]
        n = os.readv(fd, [chunk])
        if n == 0:
            break
        h.update(chunk[:n])
        if out >= 0:
            _write_all(out, chunk[:n])
        done += n
    if done != size or os.read(fd, 1):
        raise deny([_refused(f"{name} changed length while the gate read it")], name)
    return h.hexdigest(), size


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


# ------------------------------------------------------------------ comparing
def _compare(
    reads: list[_Read], is_dir: bool, subject: Mapping[str, str], what: str
) -> tuple[str, str | None]:
    """The digests that matched the subject's, or the one reason they do not."""
    want_root, want_address = subject.get("sha256", ""), subject.get("manifest-sha256")
    root, address = reads[0].sha256 if reads and not is_dir else "", None
    if is_dir:
        manifest = DirectoryManifest.build(FileEntry(r.name, r.sha256, r.size) for r in reads)
        root, address = manifest.root, manifest.address
    size = format_size(sum(r.size for r in reads))
    kinds = ["a directory", "a single file"][:: 1 if is_dir else -1]
    if (want_address is None) == is_dir:
        message = f"the summary covers {kinds[1]}, the model is {kinds[0]}"
        expected, found = kinds[1], kinds[0]
        fix = "point the gate at the model verify checked"
    elif root != want_root:
        message = (
            "the model's bytes are not the ones the summary covers; which files were added, "
            "removed or changed is unknown (the summary carries only the digests)"
        )
        expected, found = f"sha256 {want_root}", f"sha256 {root} ({len(reads)} files, {size})"
        fix = "serve exactly the files verify checked, or verify these files again"
    elif address != want_address:
        message = "the same file contents under other names: a file was renamed or moved"
        expected, found = f"manifest address {want_address}", f"manifest address {address}"
        fix = "serve the files under the names verify checked"
    else:
        return root, address
    raise deny([GateReason(GateCheck.MODEL_DIGEST, message, expected, found, fix)], what)


# ------------------------------------------------------------------ opening a model
def binding_of(checked: CheckedSummary) -> Binding:
    """The facts a server is bound to, all from the checked summary."""
    s = checked.summary
    return Binding(
        model_digest=checked.model_digest,
        vsa_digest=checked.digest,
        policy_digest=s.policy_digest,
        run_id=s.run_id or "",
        time_verified=format_rfc3339(s.time_verified),
        verifier_id=s.verifier_id,
        resource_uri=s.resource_uri,
    )


def open_model(
    model: Path,
    summary: CheckedSummary | Path | bytes,
    trust: VerifierTrust | None = None,
    expect: GateExpectations | None = None,
    *,
    copy_to: Path | None = None,
    entry: str | None = None,
    loader: str | Loader | None = None,
    name: str | None = None,
    version: str | None = None,
    max_bytes: int | None = None,
) -> ServedModel:
    """The model at ``model``, loaded from bytes the signed ``summary`` covers.

    ``summary`` is a :class:`CheckedSummary`, or the bundle (path or bytes) to check with
    ``trust`` and ``expect``. Name, version and features come from the arguments, else
    the package's ``model-card.json``, else the folder's name and the digest.
    """
    if isinstance(summary, CheckedSummary):
        checked = summary
    else:
        checked = check_summary(summary, trust or VerifierTrust(), expect)
    files = read_verified(model, checked.subject.digest, copy_to=copy_to, max_bytes=max_bytes)
    card = read_card(files.files)
    loaded = load_model(files.files, entry=entry, loader=loader)
    extra = {
        "entry": loaded.entry,
        "files": len(files.names),
        "bytes": files.size,
        "signer": checked.signer,
        **({"copy": str(files.copy)} if files.copy is not None else {}),
        **({"card": card.extra} if card.extra else {}),
    }
    return ServedModel(
        name=name or card.name or Path(os.path.realpath(model)).name,
        version=version or card.version or checked.model_digest[:12],
        binding=binding_of(checked),
        predictor=loaded.predictor,
        format=loaded.format,
        features=card.features,
        extra=extra,
    )
