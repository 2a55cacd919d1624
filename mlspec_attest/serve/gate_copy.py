"""The gate's verified copy (``gate --copy-to``): the files the gate hashed, written while
it reads them under a private name inside the target, moved into place only once the
digests matched (files 0400, folders 0500), or removed."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

from mlspec_attest.errors import BadInputError, UsageError
from mlspec_attest.formats.fsutil import sync_directory
from mlspec_attest.formats.inputs import named


class VerifiedCopy:
    """The verified copy: written under a private name inside ``target``, then moved into
    place once the digests matched (files 0400, folders 0500), or removed."""

    def __init__(self, target: Path, model: str) -> None:
        real = os.path.realpath(target)
        if real == model or real.startswith(model.rstrip(os.sep) + os.sep):
            raise UsageError(
                f"{target}: the verified copy cannot be written inside the model",
                remedy=f"give {named('copy_to')} a directory outside {model}",
            )
        self.target = target
        self.created = not target.exists()
        if self.created:
            try:
                target.mkdir(mode=0o700)
            except OSError as exc:
                raise BadInputError(f"{target}: cannot create ({exc.strerror})") from exc
        elif not target.is_dir() or any(target.iterdir()):
            raise UsageError(
                f"{target}: exists and is not an empty directory",
                remedy=f"give {named('copy_to')} a new or empty directory",
            )
        self.stage = Path(tempfile.mkdtemp(prefix=".mlspec-gate-", dir=target))
        self.lock = threading.Lock()

    def create(self, name: str) -> int:
        path = self.stage / name
        with self.lock:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        return os.open(path, flags, 0o400)

    def publish(self) -> Path:
        for entry in sorted(os.listdir(self.stage)):
            os.rename(self.stage / entry, self.target / entry)
        self.stage.rmdir()
        folders = [Path(d) for d, _, _ in os.walk(self.target)]
        for folder in reversed(folders):  # deepest first: a parent stays writable until last
            sync_directory(folder)
            with contextlib.suppress(PermissionError):  # a mount point may not be ours
                folder.chmod(0o500)
        return self.target

    def discard(self) -> None:
        for folder, _, _ in os.walk(self.stage):
            os.chmod(folder, 0o700)
        shutil.rmtree(self.stage, ignore_errors=True)
        if self.created:
            with contextlib.suppress(OSError):
                self.target.rmdir()


__all__ = ["VerifiedCopy"]
