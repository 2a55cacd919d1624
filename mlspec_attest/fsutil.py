"""Filesystem helpers: atomic writes and safe relative artifact names."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path, PurePosixPath

from .errors import ArtifactPathError, StoreError


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half.

    The bytes go to a temporary file in the same directory, are fsynced, and are
    renamed over the destination.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StoreError(f"cannot write {path}: {exc.strerror}") from exc


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
            remedy="run from the pipeline's root or pass --base-dir",
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
