"""How far a journal's writer process is behind its server, and the requests held until it
catches up (:class:`Backlog`).

In ``journal`` mode (:mod:`mlspec_attest.log.journaled`) a request is answered once its
values are journaled; the writer process makes and signs the records afterwards. A writer
that cannot keep up (the server's threads take every CPU, the writer runs at a lower
priority, or records cost it more than they cost the server) would let the journal and
the log's delay grow without bound, until the disk is full. So the server bounds the
*backlog*: the entries and the journal bytes it has journaled beyond what the writer has
acknowledged committing. A request whose entry takes the backlog over either bound is
journaled as usual, but its answer is held until the writer is back within half of both
bounds. Load beyond what the writer can do then turns into latency, as with any server at
its capacity, never into an unbounded journal; nothing is refused or lost.

The backlog is known from the writer's acknowledgements, which it sends after each
checkpoint and whenever the server asks; the server asks with each notice once the
backlog passes a quarter of a bound, and at once for a held request. Journal bytes are
counted at the points the server told the writer about (its *marks*), so the committed
bytes are never overestimated.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final

from mlspec_attest.formats.limits import MiB

#: Entries journaled beyond the writer's acknowledged records before requests are held:
#: about 22 MiB of journal at a typical 350-byte entry, about 1.6 s of a writer's work at
#: 25 µs a record.
MAX_BEHIND_ENTRIES: Final = 65_536
#: Journal bytes beyond the acknowledged records before requests are held (one segment).
MAX_BEHIND_BYTES: Final = 64 * MiB


class Backlog:
    """The server's account of its writer's backlog (not thread-safe: its owner locks)."""

    def __init__(
        self, records: int, max_entries: int = MAX_BEHIND_ENTRIES, max_bytes: int = MAX_BEHIND_BYTES
    ) -> None:
        if max_entries < 2 or max_bytes < 2:
            raise ValueError("a backlog bound must be at least 2")
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.records = records  # entries the writer has acknowledged committing
        self.committed_bytes = 0  # journal bytes below a mark at or under ``records``
        self._marks: deque[tuple[int, int]] = deque()  # (index, journal bytes below it)
        self._held: list[tuple[int, int, asyncio.Future[None]]] = []
        self.hold_index, self.hold_bytes = self._limits()

    def _limits(self) -> tuple[int, int]:
        """The first entry index, and the journal bytes, that take the backlog over."""
        return self.records + self.max_entries, self.committed_bytes + self.max_bytes

    def over(self, index: int, written: int) -> bool:
        """Whether the entry at ``index``, ending at ``written`` journal bytes, takes the
        backlog over a bound (its request is to be held)."""
        return index >= self.hold_index or written > self.hold_bytes

    def told(self, index: int, written: int) -> bool:
        """The writer was told the entries below ``index`` (``written`` bytes) are there;
        whether to ask it to acknowledge (the backlog is past a quarter of a bound)."""
        if not self._marks or self._marks[-1][0] < index:
            self._marks.append((index, written))
        return (
            index - self.records > self.max_entries // 4
            or written - self.committed_bytes > self.max_bytes // 4
            or bool(self._held)
        )

    def hold(self, waiter: asyncio.Future[None], index: int, written: int) -> None:
        """Hold ``waiter`` until the backlog is within half of both bounds of the journal
        as it is now: ``index`` entries, ``written`` bytes."""
        target = (index - self.max_entries // 2, written - self.max_bytes // 2)
        self._held.append((*target, waiter))

    def acknowledged(self, records: int) -> list[asyncio.Future[None]]:
        """The writer has committed ``records`` entries: the held requests now released."""
        self.records = max(self.records, records)
        while self._marks and self._marks[0][0] <= self.records:
            self.committed_bytes = max(self.committed_bytes, self._marks.popleft()[1])
        self.hold_index, self.hold_bytes = self._limits()
        kept: list[tuple[int, int, asyncio.Future[None]]] = []
        released: list[asyncio.Future[None]] = []
        for held in self._held:
            if held[0] <= self.records and held[1] <= self.committed_bytes:
                released.append(held[2])
            else:
                kept.append(held)
        self._held = kept
        return released

    @property
    def holding(self) -> bool:
        """Whether any request is held."""
        return bool(self._held)

    def release_all(self) -> list[asyncio.Future[None]]:
        """Every held request (the writer is gone, failing or closing: each one's entry is
        journaled, which is what its answer promises)."""
        held, self._held = [w for _, _, w in self._held], []
        return held


__all__ = ["MAX_BEHIND_BYTES", "MAX_BEHIND_ENTRIES", "Backlog"]
