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


class Threads:
    """``count`` threads running ``work``; :meth:`join` waits for all and re-raises the
    first failure. (Plain threads: ``concurrent.futures`` and the logging it imports cost
    every hashing command a few milliseconds to load.)"""

    def __init__(self, work: Callable[[], None], count: int) -> None:
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._run, args=(work,), name="mlspec-hash", daemon=True)
            for _ in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self, work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as exc:  # handed to join()
            self.errors.append(exc)

    def join(self, *, raise_errors: bool = True) -> None:
        for thread in self.threads:
            thread.join()
        if raise_errors and self.errors:
            raise self.errors[0]


def run_workers(workers: int, count: int, work: Callable[[Cursor], None]) -> None:
    """Run ``work`` on ``workers`` threads sharing one cursor over ``count`` jobs."""
    cursor = Cursor(count, workers)
    if workers <= 1 or count <= 1:
        work(cursor)
        return

    def guarded() -> None:
        try:
            work(cursor)
        except BaseException:
            cursor.stop()  # the other workers stop after their current batch
            raise

    Threads(guarded, workers).join()
