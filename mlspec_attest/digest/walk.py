"""Walking an artifact directory: which files a manifest lists, under which names.

The rules are DESIGN §7 and docs/formats.md §5-6: only regular files; a symlink
is followed only to a regular file inside the root (one leaving the root, or to
a directory, is refused); devices, FIFOs and sockets are refused; names must be
UTF-8 without ``\\``, so every recorded name is one a verifier accepts. The walk
uses ``os.scandir`` and the entry type the kernel already returned: no ``stat``
per entry.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fnmatch import fnmatchcase

from mlspec_attest.errors import ArtifactPathError

_GLOB_CHARS = frozenset("*?[")


class IgnoreRules:
    """Which relative paths a walk leaves out.

    A pattern without glob characters is a path relative to the root (as in
    OpenSSF model-signing's ``ignore_paths``): it matches that file, or that
    directory and everything below it. A pattern with ``*``, ``?`` or ``[`` is
    matched against the relative path, and, if it has no ``/``, also against the
    entry's own name (``*.tmp`` anywhere), as in ``.gitignore``.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        self.exact = frozenset(p.strip("/") for p in patterns if not (_GLOB_CHARS & set(p)))
        globs = [p.strip("/") for p in patterns if _GLOB_CHARS & set(p)]
        self.path_globs = tuple(globs)
        self.name_globs = tuple(p for p in globs if "/" not in p)

    def __bool__(self) -> bool:
        return bool(self.exact or self.path_globs)

    def matches(self, rel: str, name: str) -> bool:
        if rel in self.exact:
            return True
        return any(fnmatchcase(rel, p) for p in self.path_globs) or any(
            fnmatchcase(name, p) for p in self.name_globs
        )


def _inside(target: str, real_root: str) -> bool:
    return target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)


def _check_name(name: str, where: str) -> None:
    if name.isascii():
        if "\\" in name:
            raise ArtifactPathError(
                f"{where}: file names with '\\' cannot be attested (not a portable path)",
                remedy="rename the file",
            )
        return
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ArtifactPathError(
            f"{os.fsencode(where)!r}: file name is not valid UTF-8",
            remedy="rename the file; attested names are UTF-8 text",
        ) from exc
    if "\\" in name:
        raise ArtifactPathError(f"{where}: file names with '\\' cannot be attested")


def walk_tree(root: str, ignore: IgnoreRules | None = None) -> list[tuple[str, str]]:
    """Every regular file under ``root`` as ``(relative posix name, path)``, unordered.

    Symlinks are followed only to regular files inside ``root``; a link leaving
    the root, a link to a directory, a device, FIFO or socket is refused.
    (Sorting afterwards is cheaper than walking in order: one keyed sort in C
    against a Python step per entry.)
    """
    real_root = os.path.realpath(root)
    found: list[tuple[str, str]] = []
    append = found.append
    pending: list[tuple[str, str]] = [("", root)]
    while pending:
        rel_dir, dir_path = pending.pop()
        try:
            scanner = os.scandir(dir_path)
        except PermissionError as exc:
            raise ArtifactPathError(f"{dir_path}: permission denied") from exc
        except OSError as exc:
            raise ArtifactPathError(f"{dir_path}: cannot list ({exc.strerror})") from exc
        with scanner:
            for entry in scanner:
                name = entry.name
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if ignore and ignore.matches(rel, name):
                    continue
                if not name.isascii() or "\\" in name:
                    _check_name(name, entry.path)
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if not _inside(target, real_root):
                        raise ArtifactPathError(
                            f"{entry.path}: symlink points outside {root} (to {target})",
                            remedy="copy the file into the artifact directory or remove the link",
                        )
                    if os.path.isdir(target):
                        raise ArtifactPathError(
                            f"{entry.path}: symlinks to directories are not followed"
                        )
                    append((rel, entry.path))
                elif entry.is_dir(follow_symlinks=False):
                    pending.append((rel, entry.path))
                elif entry.is_file(follow_symlinks=False):
                    append((rel, entry.path))
                else:
                    raise ArtifactPathError(
                        f"{entry.path}: not a regular file (device, fifo or socket)"
                    )
    return found
