"""Feeding batches of files to one helper process (:mod:`mlspec_attest.digest._helper`).

For kilobyte files the interpreter, not the hash, is the bottleneck, and threads
in one process would only take turns on the GIL; so from
``engine.PROCESS_MIN_FILES`` files on, every engine worker but the calling
thread drives a helper process through this loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from mlspec_attest.digest._helper import HelperClient
from mlspec_attest.digest._reader import ByteProgress
from mlspec_attest.digest._schedule import Cursor

PIPELINE = 2
"""Batches in flight per helper: it hashes one while this process reads the other's reply."""

HashHere = Callable[[range], None]


def drive_helper(
    cursor: Cursor,
    paths: Sequence[str],
    results: list[tuple[bytes, int]],
    algorithm: str,
    progress: ByteProgress | None,
    *,
    script: Path,
    make_local: Callable[[], HashHere],
) -> None:
    """Feed batches from ``cursor`` to one helper process until none are left.

    If the helper cannot start or fails, the rest is hashed in this thread (by
    one ``make_local()``, made when first needed); a file the helper could not hash is hashed here too, which
    raises the error a user can act on (or succeeds, if the problem has gone).
    """
    fallback: HashHere | None = None

    def hash_here(batch: range) -> None:
        nonlocal fallback
        if fallback is None:
            fallback = make_local()
        fallback(batch)

    client = HelperClient.start(algorithm, script)
    inflight: deque[range] = deque()
    try:
        while True:
            if client is not None:
                client = _send_batches(client, cursor, paths, inflight)
            if not inflight:
                break
            batch = inflight.popleft()
            replies = None
            if client is not None:
                replies, client = _receive(client, len(batch))
            if replies is None:
                hash_here(batch)
                continue
            _store_replies(batch, replies, results, progress, hash_here)
        while (rest := cursor.claim()) is not None:
            hash_here(rest)
    finally:
        if client is not None:
            client.close()


def _send_batches(
    client: HelperClient, cursor: Cursor, paths: Sequence[str], inflight: deque[range]
) -> HelperClient | None:
    """Keep :data:`PIPELINE` batches in flight; None once the helper cannot take more."""
    while len(inflight) < PIPELINE:
        batch = cursor.claim()
        if batch is None:
            break
        inflight.append(batch)
        try:
            client.send([paths[i] for i in batch])
        except OSError:
            client.close()
            return None
    return client


def _receive(
    client: HelperClient, count: int
) -> tuple[list[tuple[bytes, int] | None] | None, HelperClient | None]:
    try:
        return client.receive(count), client
    except (OSError, EOFError, ValueError):
        client.close()
        return None, None


def _store_replies(
    batch: range,
    replies: list[tuple[bytes, int] | None],
    results: list[tuple[bytes, int]],
    progress: ByteProgress | None,
    hash_here: HashHere,
) -> None:
    nbytes = 0
    for i, reply in zip(batch, replies, strict=True):
        if reply is None:
            hash_here(range(i, i + 1))
        else:
            results[i] = reply
            nbytes += reply[1]
    if progress is not None:
        progress.advance(nbytes, len(batch))
