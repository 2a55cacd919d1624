"""The one directory walker: which files a manifest lists, under which names.

One scan (:func:`_scan`) under two rule sets:

* **artifacts** (:func:`walk_tree`, every mlspec-attest manifest): DESIGN §7 and
  docs/formats.md §5-6: only regular files; a symlink is followed only to a
  regular file inside the root (one leaving the root, or to a directory, is
  refused); devices, FIFOs and sockets are refused; names must be UTF-8 without
  ``\\``, so every recorded name is one a verifier accepts.
* **models** (:func:`walk_model`, OpenSSF model-signing serializations): as
  model-signing walks a model, symlinks are followed (to files and folders,
  anywhere) only when the serialization allows them; a symlink it does not
  allow, a broken one, a loop or a special file is a :class:`Refusal` left out
  of the walk, which the caller reports as a denial.

The scan uses ``os.scandir`` and the entry type the kernel already returned: no
``stat`` per entry.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from msgspec import Struct

from mlspec_attest.errors import ArtifactPathError
from mlspec_attest.formats.inputs import named

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

    @classmethod
    def exact_paths(cls, paths: Iterable[str]) -> IgnoreRules:
        """model-signing's ``ignore_paths``: literal model-relative paths, never globs.

        ``\\`` separates like ``/``, ``.`` components are dropped, and ``.`` alone
        is the whole model.
        """
        rules = cls(())
        rules.exact = frozenset(
            "/".join(part for part in PurePosixPath(p.replace("\\", "/")).parts if part != ".")
            for p in paths
        )
        return rules

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


# ------------------------------------------------------------------ the scan
Found = list[tuple[str, str]]
"""``(relative posix name, path)`` of every file found."""
Ancestors = frozenset[tuple[int, int]]
"""``(st_dev, st_ino)`` of the folders above an entry (model walks: loop detection)."""
Pending = list[tuple[str, str, Ancestors]]
NO_ANCESTORS: Ancestors = frozenset()


class Refusal(Struct, frozen=True):
    """An entry a model cannot hold: left out of a model walk, reported by the caller."""

    check: str  # "symlink" or "special-file"
    name: str
    message: str
    remedy: str | None = None


class _ArtifactRules:
    """:func:`walk_tree`'s rules: anything unexpected raises :class:`ArtifactPathError`."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)

    def check_name(self, name: str, where: str) -> None:
        _check_name(name, where)

    def descend(self, entry: os.DirEntry[str], rel: str, ancestors: Ancestors) -> Ancestors | None:
        return ancestors  # symlinked folders are never entered: no loop to detect

    def symlink(
        self,
        entry: os.DirEntry[str],
        rel: str,
        ancestors: Ancestors,
        found: Found,
        pending: Pending,
    ) -> None:
        target = os.path.realpath(entry.path)
        if not _inside(target, self.real_root):
            raise ArtifactPathError(
                f"{entry.path}: symlink points outside {self.root} (to {target})",
                remedy="copy the file into the artifact directory or remove the link",
            )
        if os.path.isdir(target):
            raise ArtifactPathError(f"{entry.path}: symlinks to directories are not followed")
        found.append((rel, entry.path))

    def special(self, entry: os.DirEntry[str], rel: str) -> None:
        raise ArtifactPathError(f"{entry.path}: not a regular file (device, fifo or socket)")


class _ModelRules:
    """:func:`walk_model`'s rules: model-signing's, with refusals collected, not raised."""

    def __init__(self, allow_symlinks: bool) -> None:
        self.allow_symlinks = allow_symlinks
        self.refused: list[Refusal] = []

    def check_name(self, name: str, where: str) -> None:
        """model-signing records any name the file system gives."""

    def descend(self, entry: os.DirEntry[str], rel: str, ancestors: Ancestors) -> Ancestors | None:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            raise ArtifactPathError(f"{entry.path}: cannot read ({exc.strerror})") from exc
        return self.enter(rel, st, ancestors)

    def enter(self, rel: str, st: os.stat_result, ancestors: Ancestors) -> Ancestors | None:
        """The ancestors of a folder's entries, or None (refused) if it is one of its own."""
        ident = (st.st_dev, st.st_ino)
        if ident in ancestors:
            self.refused.append(Refusal("symlink", rel, f"{rel} links back to a folder above it"))
            return None
        return ancestors | {ident}

    def symlink(
        self,
        entry: os.DirEntry[str],
        rel: str,
        ancestors: Ancestors,
        found: Found,
        pending: Pending,
    ) -> None:
        if not self.allow_symlinks:
            self.refused.append(_link_not_allowed(rel))
            return
        try:
            st = os.stat(entry.path)
        except OSError:
            self.refused.append(Refusal("symlink", rel, f"{rel} is a broken symbolic link"))
            return
        if stat.S_ISREG(st.st_mode):
            found.append((rel, entry.path))
        elif not stat.S_ISDIR(st.st_mode):
            self.special(entry, rel)
        elif (inner := self.enter(rel, st, ancestors)) is not None:
            pending.append((rel, entry.path, inner))

    def special(self, entry: os.DirEntry[str], rel: str) -> None:
        message = f"{rel} is neither a regular file nor a directory"
        self.refused.append(Refusal("special-file", rel, message))


def _link_not_allowed(name: str) -> Refusal:
    return Refusal(
        "symlink",
        name,
        f"{name} is a symbolic link and the serialization does not allow symlinks",
        remedy=f"remove the link, or sign with {named('allow_symlinks')}",
    )


def _list(dir_path: str) -> AbstractContextManager[Iterator[os.DirEntry[str]]]:
    try:
        return os.scandir(dir_path)
    except PermissionError as exc:
        raise ArtifactPathError(f"{dir_path}: permission denied") from exc
    except OSError as exc:
        raise ArtifactPathError(f"{dir_path}: cannot list ({exc.strerror})") from exc


def _scan(
    root: str,
    ignore: IgnoreRules | None,
    rules: _ArtifactRules | _ModelRules,
    ancestors: Ancestors = NO_ANCESTORS,
) -> Found:
    """Every regular file under the folder ``root``, unordered, under ``rules``.

    (Sorting afterwards is cheaper than walking in order: one keyed sort in C
    against a Python step per entry.)
    """
    found: Found = []
    append = found.append
    pending: Pending = [("", root, ancestors)]
    while pending:
        rel_dir, dir_path, above = pending.pop()
        with _list(dir_path) as scanner:
            for entry in scanner:
                name = entry.name
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if ignore and ignore.matches(rel, name):
                    continue
                if not name.isascii() or "\\" in name:
                    rules.check_name(name, entry.path)
                # A regular file first: one call for most entries (False for a link).
                if entry.is_file(follow_symlinks=False):
                    append((rel, entry.path))
                elif entry.is_symlink():
                    rules.symlink(entry, rel, above, found, pending)
                elif entry.is_dir(follow_symlinks=False):
                    inner = rules.descend(entry, rel, above)
                    if inner is not None:
                        pending.append((rel, entry.path, inner))
                else:
                    rules.special(entry, rel)
    return found


def walk_tree(root: str, ignore: IgnoreRules | None = None) -> Found:
    """Every regular file under ``root`` as ``(relative posix name, path)``, unordered.

    Symlinks are followed only to regular files inside ``root``; a link leaving
    the root, a link to a directory, a device, FIFO or socket is refused.
    """
    return _scan(root, ignore, _ArtifactRules(root))


def walk_model(
    model: str, ignore: IgnoreRules | None, *, allow_symlinks: bool
) -> tuple[Found, list[Refusal]]:
    """Every file of a model (a folder, or one file named ``.``), unordered, and the
    entries it cannot hold; ``ignore`` is usually :meth:`IgnoreRules.exact_paths`."""
    try:
        top = os.lstat(model)
    except FileNotFoundError as exc:
        raise ArtifactPathError(f"{model}: model not found") from exc
    except OSError as exc:
        raise ArtifactPathError(f"{model}: cannot read ({exc.strerror})") from exc
    rules = _ModelRules(allow_symlinks)
    if ignore is not None and "" in ignore.exact:
        return [], []
    if stat.S_ISLNK(top.st_mode):
        if not allow_symlinks:
            return [], [_link_not_allowed(".")]
        try:
            top = os.stat(model)
        except OSError:
            return [], [Refusal("symlink", ".", ". is a broken symbolic link")]
    if stat.S_ISREG(top.st_mode):
        return [(".", model)], []
    if not stat.S_ISDIR(top.st_mode):
        return [], [Refusal("special-file", ".", ". is neither a regular file nor a directory")]
    found = _scan(model, ignore, rules, rules.enter(".", top, NO_ANCESTORS) or NO_ANCESTORS)
    return found, rules.refused
