"""How the engine's workers share out a list of jobs (files, shards).

Workers claim *batches* of indices from one shared :class:`Cursor`, largest
batches first and shrinking towards the end (guided self-scheduling), so a small
file costs an ``open``/``fstat``/``read``/``close`` and one hash call, never an
executor round trip.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

MAX_BATCH = 512


class Cursor:
    """Hands out index ranges: large batches first, shrinking towards the end."""

    def __init__(self, total: int, workers: int) -> None:
        self.total = total
        self.workers = workers
        self.next = 0
        self.lock = threading.Lock()

    def stop(self) -> None:
        """Hand out nothing more (a worker failed)."""
        with self.lock:
            self.next = self.total

    def claim(self) -> range | None:
        with self.lock:
            start = self.next
            if start >= self.total:
                return None
            step = min(MAX_BATCH, max(1, (self.total - start) // (self.workers * 4)))
            self.next = start + step
            return range(start, start + step)


def run_workers(workers: int, count: int, work: Callable[[Cursor], None]) -> None:
    """Run ``work`` on ``workers`` threads sharing one cursor over ``count`` jobs."""
    cursor = Cursor(count, workers)
    if workers <= 1 or count <= 1:
        work(cursor)
        return
    from concurrent.futures import ThreadPoolExecutor  # not needed by a one-worker command

    def guarded(cursor: Cursor) -> None:
        try:
            work(cursor)
        except BaseException:
            cursor.stop()  # the other workers stop after their current batch
            raise

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlspec-hash") as pool:
        futures = [pool.submit(guarded, cursor) for _ in range(workers)]
        for future in futures:
            future.result()
