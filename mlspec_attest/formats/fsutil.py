"""Filesystem helpers: atomic writes, a store lock, and safe relative artifact names.

Every writer here follows one rule: bytes go to a hidden temporary file
(``.<name>.<random>.tmp``) in the destination's directory and are fsynced before
the file gets its real name. A crash, a kill or a full disk at any point leaves
the old file, the new one, or nothing, plus at worst a hidden temporary that
readers skip; never a half-written file under a real name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from mlspec_attest.errors import ArtifactPathError, StoreError
from mlspec_attest.formats.inputs import named

#: errno values that mean "the filesystem (or this process) has no room left".
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: errno values by which a filesystem says it has no hard links or no locks.
_UNSUPPORTED = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.ENOLCK})


def write_error(path: Path, exc: OSError) -> StoreError:
    """A StoreError for a failed write, with a remedy when the disk or a quota is full."""
    remedy = None
    if exc.errno in _NO_ROOM:
        remedy = (
            f"free space on the filesystem holding {path.parent} (or raise the quota or file "
            "size limit) and run again; nothing was replaced or left half-written"
        )
    return StoreError(f"cannot write {path}: {exc.strerror or exc}", remedy=remedy)


def _write_temp(path: Path, data: bytes, mode: int) -> str:
    """``data`` in a fsynced hidden temporary beside ``path``; returns its name.

    On failure the temporary is removed and a StoreError raised.
    """
    import tempfile  # a verifier that writes nothing does not load it (nor shutil, random)

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked (signals, large buffers)
                view = view[os.write(fd, view) :]
            os.fchmod(fd, mode)
            os.fsync(fd)  # the bytes are on disk before the file gets its real name
        finally:
            os.close(fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise write_error(path, exc) from exc
    return tmp


def sync_directory(directory: Path) -> None:
    """Make a rename or link in ``directory`` durable (best effort: the file is complete
    either way; some filesystems cannot fsync a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half.

    The bytes go to a hidden temporary file in the same directory, are fsynced,
    and are renamed over the destination (replacing it).
    """
    tmp = _write_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise write_error(path, exc) from exc
    sync_directory(path.parent)


def create_once(path: Path, data: bytes, *, mode: int = 0o644) -> bool:
    """Atomically create ``path`` holding ``data``; False (and nothing written) if it exists.

    Unlike :func:`atomic_write` this never replaces a file: the fsynced temporary
    is hard-linked to its name, and ``link`` fails with EEXIST where ``rename``
    would silently overwrite. Two writers racing for one name: one wins, the
    other gets False.
    """
    tmp = _write_temp(path, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            raise StoreError(
                f"cannot write {path}: the filesystem does not support hard links ({exc.strerror})",
                remedy="put the store on a local or NFS filesystem (ext4, xfs, btrfs, tmpfs ...)",
            ) from exc
        raise write_error(path, exc) from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    sync_directory(path.parent)
    return True


@contextlib.contextmanager
def exclusive_lock(path: Path, *, timeout: float = 30.0) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if absent) for the ``with`` block.

    The kernel drops the lock when its holder dies, so a killed process never
    leaves the store locked; the lock file itself is empty and harmless. Waits
    at most ``timeout`` seconds, then raises StoreError.
    """
    fd = _open_lock_file(path)
    try:
        _acquire(fd, path, timeout)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _open_lock_file(path: Path) -> int:
    flags = os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Read-write where possible: NFS emulates flock with POSIX locks,
            # and an exclusive POSIX lock needs a descriptor open for writing.
            return os.open(path, flags | os.O_RDWR, 0o644)
        except PermissionError:
            return os.open(path, flags | os.O_RDONLY)  # a store shared read-write by group
    except OSError as exc:
        raise StoreError(f"cannot open the store lock {path}: {exc.strerror or exc}") from exc


def _acquire(fd: int, path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pause = 0.002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"the store lock {path} has been held by another process for "
                    f"more than {timeout:g} s",
                    remedy="wait for the other mlspec-attest process, or name the run "
                    f"explicitly ({named('run_id')}) so no lock is needed",
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        except OSError as exc:
            raise StoreError(
                f"cannot lock {path}: {exc.strerror or exc} (the store's filesystem may "
                "not support locks)",
                remedy=f"name the run explicitly ({named('run_id')}) so no lock is "
                "needed, or put the store on a filesystem with working locks",
            ) from exc


def artifact_name(path: Path, base: Path) -> str:
    """The normalized, relative, forward-slash name under which ``path`` is attested.

    Names never start with ``/`` and never contain ``..``: a path outside
    ``base`` is refused rather than recorded in a form a verifier could misread.
    """
    absolute = Path(os.path.abspath(path))
    root = Path(os.path.abspath(base))
    try:
        rel = absolute.relative_to(root)
    except ValueError as exc:
        raise ArtifactPathError(
            f"{path}: outside the base directory {root}",
            remedy=f"run from the pipeline's root or pass {named('base_dir')}",
        ) from exc
    name = rel.as_posix()
    return "." if name in ("", ".") else name


def check_relative_name(name: str) -> str:
    """Validate a name read from an attestation or policy: relative, normalized, no ``..``."""
    pure = PurePosixPath(name)
    if name == ".":
        return name
    if (
        not name
        or pure.is_absolute()
        or ".." in pure.parts
        or "\\" in name
        or str(pure) != name
        or name.startswith("./")
    ):
        raise ArtifactPathError(f"artifact name {name!r} is not a normalized relative path")
    return name


_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def open_beneath(root_fd: int, relative: str, flags: int) -> int:
    """Open ``relative`` (``/``-separated) below the directory ``root_fd`` following no
    link at any component (each folder opened ``O_NOFOLLOW`` from the one above it, the
    last component with ``flags``, which must hold ``O_NOFOLLOW``): a folder swapped for a
    link after a walk saw it cannot lead the open outside ``root_fd``. OSError as
    ``os.open`` raises it (``ELOOP`` or ``ENOTDIR`` for a link)."""
    *folders, last = relative.split("/")
    if any(part in ("", ".", "..") for part in (*folders, last)):
        raise OSError(errno.EINVAL, "not a plain relative name", relative)
    opened: list[int] = []
    try:
        at = root_fd
        for folder in folders:
            at = os.open(folder, _DIRECTORY_FLAGS, dir_fd=at)
            opened.append(at)
        return os.open(last, flags | os.O_NOFOLLOW, dir_fd=at)
    finally:
        for fd in opened:
            os.close(fd)
