"""One file, hashed: :func:`digest_file`, the one file hasher, and the progress protocol.

Apart from :mod:`mlspec_attest.digest.engine` (which re-exports both) so that checking a
bundle's artifact, or a single deploy file, does not load the parallel engine with its
helper processes.
"""

from __future__ import annotations

import os
from typing import Protocol

from mlspec_attest.digest._reader import SMALL_FILE, ByteProgress, FileReader, open_regular


class ProgressSink(ByteProgress, Protocol):
    """Receives progress from the engine. ``advance`` is called from worker threads.

    Each engine call is one task: ``begin`` (``total_bytes`` is None when the
    sizes are not known up front), any number of ``advance``, then ``end``,
    also when hashing fails.
    """

    def begin(self, label: str, files: int, total_bytes: int | None) -> None: ...

    def end(self) -> None: ...


def digest_file(
    path: str, algorithm: str = "sha256", progress: ProgressSink | None = None
) -> tuple[bytes, int]:
    """Raw digest and size of one regular file, read once: the one file hasher.

    Anything but a regular file (a directory, FIFO, device, a missing path) is
    refused with :class:`~mlspec_attest.errors.ArtifactPathError` (exit 3).
    """
    fd, st = open_regular(path)
    if progress is not None:
        progress.begin(path, 1, st.st_size)
    try:
        result = FileReader(algorithm, progress).digest_fd(fd, st.st_size, path)
        if progress is not None and result[1] <= SMALL_FILE:
            progress.advance(result[1], 1)
        return result
    finally:
        os.close(fd)
        if progress is not None:
            progress.end()
