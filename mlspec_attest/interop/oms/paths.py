"""Which entry of a model folder a path names: lexically, never through a symlink.

What is left out of a model (the signature file, ignore paths) is decided by the
path as the caller wrote it (:func:`os.path.abspath` folds ``.`` and ``..``; symlinks
are not followed). Resolving it instead would leave out the file a symlink points
to: a ``model.sig`` that is a symlink to an added, unsigned file would hide that
file from verification.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlspec_attest.errors import ArtifactPathError

__all__ = ["path_in_model", "signature_in_model"]


def path_in_model(path: Path, model: Path) -> str | None:
    """``path`` relative to the folder ``model`` (posix), lexically; None if it is not inside.

    Relative paths are taken from the working directory, as the operating system
    opens them. ``model`` itself is not inside ``model``.
    """
    root = os.path.abspath(model)
    where = os.path.abspath(path)
    if where == root or os.path.commonpath([root, where]) != root:
        return None
    return Path(os.path.relpath(where, root)).as_posix()


def signature_in_model(signature: Path, model: Path) -> str | None:
    """The model-relative name of the signature file to leave out of ``model``, or None
    when ``model`` is not a folder or the signature path does not lie inside it.

    Refused (:class:`~mlspec_attest.errors.ArtifactPathError`, exit 3): a signature
    path inside the model reached through a symlink (the file itself or any folder
    between the model and it), and one whose ``..`` components lead elsewhere than
    the path read lexically. Either way the file read would not be the entry left
    out, and an unsigned file could hide behind the signature's name.
    """
    if not model.is_dir():
        return None
    rel = path_in_model(signature, model)
    if rel is None:
        return None
    parts = rel.split("/")
    entry = os.fspath(model)
    for part in parts:
        entry = os.path.join(entry, part)
        if os.path.islink(entry):
            raise ArtifactPathError(
                f"{signature}: the signature path goes through a symlink inside the model "
                f"({Path(entry).relative_to(model).as_posix()}); refusing, since the file "
                "left out of the model must be the signature itself",
                remedy="pass the signature file itself (not a symlink to it), or keep the "
                "signature outside the model folder",
            )
    given = os.path.join(os.getcwd(), os.fspath(signature))
    left_out_folder = os.path.join(os.fspath(model), *parts[:-1])
    try:
        same = os.path.samefile(os.path.dirname(given), left_out_folder)
    except OSError as exc:
        raise ArtifactPathError(
            f"{signature}: cannot read the signature's folder: {exc.strerror or exc}"
        ) from exc
    if not same or os.path.basename(given) != parts[-1]:
        raise ArtifactPathError(
            f"{signature}: the signature path's '..' leads elsewhere than {rel} in the model; "
            "refusing, since the file left out of the model must be the signature itself",
            remedy="pass the signature path without '..' components",
        )
    return rel
