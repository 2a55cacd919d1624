"""``JournaledLog``: the inference log written by a process of its own, fed through a
write-ahead journal, so that a request never waits for the writer.

:class:`~mlspec_attest.log.process.LogWriterProcess` answers a request once the writer
has acknowledged its record: a round trip between two processes per group, and on a
busy machine the server's share of it is most of what the log costs. Here the server
checks the request's values (:meth:`~mlspec_attest.log.prepare.RecordMaker.fields`,
which refuses what no record can hold, before anything is written), writes them to the
journal with one ``write`` (:mod:`mlspec_attest.log.journal`) and answers; once per
turn of its event loop it tells the writer there is more. The writer commits journaled
entries in order (:mod:`mlspec_attest.log.journal_child`) and acknowledges with the
log's state, which the server reads for ``/ok`` and to stop answering when the log
cannot go on.

What a request's answer means: its values are in the operating system's hands in the
log directory, and the record that follows from them is deterministic (the server
stamps the time). A crash of the server loses nothing the writer can read; a crash of
the writer loses nothing either: reopening the log commits what the journal holds
beyond it. If the writer fails (a write error, a tampered journal) the server refuses
every later request (503) until it is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import Any, ClassVar, Unpack

from mlspec_attest.errors import StoreError
from mlspec_attest.log.backlog import MAX_BEHIND_BYTES, MAX_BEHIND_ENTRIES, Backlog
from mlspec_attest.log.journal import JournalWriter, journal_key
from mlspec_attest.log.prepare import Fields, RequestRow, RequestValues
from mlspec_attest.log.process import LogWriterProcess, settle
from mlspec_attest.log.wire import MORE, SYNC, word_of

#: How long a server in an event loop waits before it tells the writer the journal has
#: more: what arrives meanwhile shares one word (the answers never wait for it). Each word
#: wakes the writer process, and on a machine with few CPUs every wake-up is taken from
#: the server: at 2 ms a model server answering 2,400 requests/s lost a tenth of its
#: throughput to them, at 20 ms almost none (docs/benchmarks.md, "Serving"). A record
#: reaches the log about this long after its request was answered; it was journaled first.
NOTIFY_DELAY_S = 0.02


class JournaledLog(LogWriterProcess):
    """The server's side (see the module docstring). Create with :meth:`open`."""

    JOURNALED: ClassVar[bool] = True
    #: The backlog's bounds (:mod:`mlspec_attest.log.backlog`): entries, journal bytes.
    max_behind: ClassVar[tuple[int, int]] = (MAX_BEHIND_ENTRIES, MAX_BEHIND_BYTES)
    _journal: JournalWriter
    _notify_due: bool
    _backlog: Backlog

    def _opened(self, key_der: bytes) -> None:
        self._journal = JournalWriter(self.directory, journal_key(key_der), self._records)
        self._notify_due = False
        self._writer_failure: str | None = None
        self._backlog = Backlog(self._records, *self.max_behind)

    # ------------------------------------------------------------------ appending
    def append(self, **values: Unpack[RequestValues]) -> Awaitable[None] | None:
        """Journal one request (the keywords of
        :meth:`~mlspec_attest.log.prepare.RecordMaker.prepare`); returns once its values
        are written, None, or, in an event loop when the writer's backlog is over its
        bound, a future to await before answering (outside a loop it waits itself).
        RecordError for a value no record can hold, StoreError when the log cannot take
        it (closed, writer gone or failed, the journal's write failed)."""
        self._refuse_unless_usable()
        return self._journal_fields(self.fields(values, time.time_ns()))

    def append_row(self, row: RequestRow) -> Awaitable[None] | None:
        """:meth:`append` with the values as a
        :data:`~mlspec_attest.log.prepare.RequestRow` (what the middleware hands over: no
        keywords to bind, no map to build on the hot path). The record's time is the
        server's, now."""
        if self._broken is not None or self._closed or self._writer_failure is not None:
            self._refuse_unless_usable()
        return self._journal_fields(self.fields_of_row(row, time.time_ns()))

    def _refuse_unless_usable(self) -> None:
        if self._broken is not None or self._closed:
            self._refuse_if_unusable()
        if self._writer_failure is not None:
            self._refuse_while_failing()

    def _journal_fields(self, fields: Fields) -> Awaitable[None] | None:
        """Write checked fields to the journal; have the writer told within
        :data:`NOTIFY_DELAY_S` (at once outside an event loop). Held (a future, or a
        wait outside a loop) when the entry takes the writer's backlog over its bound."""
        try:
            index = self._journal.append(fields)
        except StoreError as exc:
            with self._lock:
                self._broken = self._broken or exc.message
            raise
        if self._backlog.over(index, self._journal.written):
            return self._hold()
        if not self._notify_due:
            self._notify_due = True
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._flush()
                self._read_waiting()
                return None
            if loop is not self._home:
                self._make_home(loop)
            loop.call_later(NOTIFY_DELAY_S, self._flush)
        return None

    def _hold(self) -> Awaitable[None] | None:
        """The entry just journaled took the writer's backlog over its bound: in an event
        loop, a future the answer waits for (:class:`~mlspec_attest.log.backlog.Backlog`);
        elsewhere, wait here until the writer has caught up. The entry is journaled
        either way: a writer that cannot go on is refused by the next append."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            with contextlib.suppress(StoreError):
                self.sync()
            return None
        if loop is not self._home:
            self._make_home(loop)
        waiter: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._backlog.hold(waiter, self._journal.next_index, self._journal.written)
        self._flush(SYNC)
        return waiter

    def _refuse_while_failing(self) -> None:
        """The writer could not write what it was given: refuse until it can, and have it
        try again (what it could not write waits in the journal)."""
        self._flush()
        if not self._home or not self._home.is_running():
            self._read_waiting()
        failure = self._writer_failure
        if failure is not None:
            raise StoreError(failure, remedy="free space in the log's directory")

    def submit(self, **values: Unpack[RequestValues]) -> asyncio.Future[None]:
        """:meth:`append`, as a future: already complete unless the request is held."""
        held = self.append(**values)
        if isinstance(held, asyncio.Future):
            return held
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def _flush(self, word: bytes = MORE) -> None:
        """Tell the writer the journal has more (``SYNC``: and to acknowledge it), and up
        to which index its entries are whole (:func:`~mlspec_attest.log.wire.word_of`)."""
        with self._send_lock:
            self._notify_due = False
            written = self._journal.written  # first: never more than the entries below index
            index = self._journal.next_index
            with self._lock:
                if self._backlog.told(index, written):
                    word = SYNC
            try:
                self._conn.send_bytes(word_of(word, index))
            except OSError as exc:
                self._fail_all(f"the writer process cannot be reached ({exc.strerror or exc})")

    # ------------------------------------------------------------------ acknowledgements
    def _handle(self, message: tuple[Any, ...] | None) -> None:
        if message is None or message[0] == "closed":
            super()._handle(message)
            return
        _, _, failure, checkpoint_failure, unusable, records, signed = message
        with self._lock:
            self.checkpoint_failure, self._records, self._signed = (
                checkpoint_failure,
                records,
                signed,
            )
            self._writer_failure = None if failure is None else failure[1]
            if unusable is not None and self._broken is None:
                self._broken = unusable
            released = self._backlog.acknowledged(records)
            if failure is not None or self._broken is not None:
                released += self._backlog.release_all()
        settle([(waiter, None) for waiter in released])

    def _fail_all(self, reason: str) -> None:
        super()._fail_all(reason)
        self._release_held()

    def _release_held(self) -> None:
        """The held requests were journaled: their answers may go (the writer is gone,
        failing or closed)."""
        with self._lock:
            released = self._backlog.release_all()
        settle([(waiter, None) for waiter in released])

    def _read_waiting(self) -> None:
        """Outside an event loop: take the acknowledgements already here."""
        if self._read_lock.acquire(blocking=False):
            try:
                while not self._child_gone and self._conn.poll(0):
                    self._handle(self._receive())
            finally:
                self._read_lock.release()

    def sync(self, timeout: float = 60.0) -> None:
        """Block until the writer has committed everything journaled so far (for tools
        and tests; not from the event loop that serves). StoreError if it cannot."""
        target = self._journal.next_index
        self._flush(SYNC)
        deadline = time.monotonic() + timeout
        while self._records < target and not self._child_gone and self._broken is None:
            if self._writer_failure is not None:
                raise StoreError(self._writer_failure)
            if time.monotonic() > deadline:
                raise StoreError(f"inference log {self.directory}: the writer is behind")
            home = self._home
            if home is not None and home.is_running():
                time.sleep(0.005)  # that loop reads the acknowledgements
            elif self._read_lock.acquire(timeout=0.05):
                try:
                    if not self._child_gone and self._conn.poll(0.05):
                        self._handle(self._receive())
                finally:
                    self._read_lock.release()
        if self._records < target:
            self._refuse_if_unusable()
            raise StoreError(f"inference log {self.directory}: the writer process exited")

    # ------------------------------------------------------------------ state
    @property
    def journaled(self) -> int:
        """Requests journaled (the next record's seq once the writer has caught up)."""
        return self._journal.next_index

    @property
    def backlog(self) -> int:
        """Entries journaled that the writer has not acknowledged committing."""
        return self._journal.next_index - self._backlog.records

    def status(self) -> dict[str, Any]:
        status = super().status()
        with self._lock:
            behind, held = self.backlog, self._backlog.holding
        status.update(writer="journal", journaled=self.journaled, backlog=behind, holding=held)
        return status

    def close(self) -> None:
        """Have the writer commit and sign everything journaled, then exit."""
        super().close()
        self._journal.close()
        self._release_held()


__all__ = ["NOTIFY_DELAY_S", "JournaledLog"]
