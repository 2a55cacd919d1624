"""``LogWriterProcess``: the inference log written by a process of its own, in groups.

Making a record (its CBOR, its line, their hashes, the Merkle append) costs tens of
microseconds of CPU, taken from requests under the GIL when the server does it. Here
the server only queues each request's values; a child process that owns the
:class:`~mlspec_attest.log.writer.InferenceLog` prepares them
(:class:`~mlspec_attest.log.prepare.RecordMaker`) and commits every message already
waiting as one group (one ``write`` per file), then acknowledges each message. What one
turn of the event loop queues travels as one message (:mod:`mlspec_attest.log.wire`).

In an event loop, :meth:`LogWriterProcess.append` returns a future that completes once
the child has written the record (``InferenceLog.append``'s guarantee: in the operating
system's hands, fsynced at each checkpoint) and raises what kept it out otherwise; the
middleware answers only after that (docs/logging.md). Elsewhere it blocks until then.

Failures, each closed: if the child dies, every pending and later append raises
:class:`~mlspec_attest.errors.StoreError` (the server answers 503, ``/ok`` turns not
ready); restarting the server reopens the log, which repairs a torn write. If the
server dies, the child commits what it received, signs a last checkpoint and exits. A
write error fails the child's whole group and nothing of it is kept.

The child is ``python -m mlspec_attest.log.process_main FD``: it runs none of the
server's ``__main__``, and gets its settings, the signing key among them (PKCS#8 DER),
over its private socket, never through a file or its command line.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, ClassVar, Self, Unpack

from msgspec.structs import asdict

from mlspec_attest.errors import StoreError, UsageError
from mlspec_attest.log.fork_guard import forget_log, guard
from mlspec_attest.log.prepare import RecordMaker, RequestValues
from mlspec_attest.log.wire import (
    CLOSE,
    Settings,
    WireError,
    dump,
    encode_requests,
    load,
    rebuild,
)
from mlspec_attest.log.writer import LogOptions
from mlspec_attest.signing.keys import LocalKeySigner, private_key_der

#: How long :meth:`LogWriterProcess.close` waits for the child's last checkpoint.
CLOSE_TIMEOUT_S = 60.0

_Waiter = asyncio.Future[None] | concurrent.futures.Future[None]


class LogWriterProcess(RecordMaker):
    """The parent's side (see the module docstring). Create with :meth:`open`.

    Acknowledgements are read by the event loop the log is used from (its *home*: the
    socket is one more reader of that loop, so an acknowledgement costs no thread
    switch); a caller outside any running loop reads them itself, one at a time."""

    #: Whether the writer reads a journal (:class:`~mlspec_attest.log.journaled.JournaledLog`).
    JOURNALED: ClassVar[bool] = False

    def __init__(self, directory: Path, conn: Connection, child: subprocess.Popen[bytes]):
        self.directory, self._conn, self._child = directory, conn, child
        self._fd = conn.fileno()
        self._lock = threading.Lock()  # the queues and the state below
        self._send_lock = threading.Lock()  # one sender at a time, in queue order
        self._read_lock = threading.Lock()  # one reader of acknowledgements at a time
        self._queue: list[tuple[RequestValues, _Waiter]] = []
        self._sent: deque[list[_Waiter]] = deque()
        self._flush_due = False
        self._broken: str | None = None
        self._closed = self._child_gone = False
        self._home: asyncio.AbstractEventLoop | None = None
        self._records = self._signed = 0
        self.checkpoint_failure: str | None = None

    @classmethod
    def open(
        cls,
        directory: Path,
        signer: LocalKeySigner,
        *,
        origin: str,
        **options: Unpack[LogOptions],
    ) -> Self:
        """Start the writer process and open the log in ``directory`` there (the options of
        :meth:`InferenceLog.open <mlspec_attest.log.writer.InferenceLog.open>`); its errors
        (a tampered log, a log of another origin, a locked directory) are raised here."""
        if not isinstance(signer, LocalKeySigner):
            raise UsageError(
                "a writer process signs with a local key; give InferenceLog.open this signer"
            )
        directory = Path(directory)
        der = private_key_der(signer)
        settings = Settings(str(directory), der, origin, dict(options), cls.JOURNALED)
        conn, child = _start_child(settings)
        log = cls(directory, conn, child)
        log.log_inputs = options.get("log_inputs", False)
        log.log_user_ids = options.get("log_user_ids", False)
        log._await_ready()
        log._opened(der)
        return log

    def _opened(self, key_der: bytes) -> None:
        """Called once the writer has opened the log (a subclass's hook)."""

    def _await_ready(self) -> None:
        try:
            reply = load(self._conn.recv_bytes())
        except (EOFError, OSError) as exc:
            self._reap()
            raise StoreError(
                f"inference log {self.directory}: the writer process exited while opening it"
            ) from exc
        if reply[0] == "failed":
            self._reap()
            raise rebuild(reply[1])
        self._records, self._signed = reply[1], reply[2]
        atexit.register(self.close)
        guard(self, forget_log)  # a forked child leaves it alone

    # ------------------------------------------------------------------ appending
    def append(self, **fields: Unpack[RequestValues]) -> Awaitable[None] | None:
        """Hand one request's values to the writer (the keywords of
        :meth:`~mlspec_attest.log.prepare.RecordMaker.prepare`, which the writer process
        applies: the serving process only queues them). In an event loop, what
        :meth:`submit` returns; elsewhere, blocks until the record is written (and raises
        why it was not, a value no record can hold included)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._append_waiting(fields)
            return None
        return self._submit(loop, fields)

    def submit(self, **fields: Unpack[RequestValues]) -> asyncio.Future[None]:
        """In an event loop: a future that completes once the record is written, or
        raises why it was not."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise UsageError("submit is for a running event loop; call append") from None
        return self._submit(loop, fields)

    def _submit(
        self, loop: asyncio.AbstractEventLoop, fields: RequestValues
    ) -> asyncio.Future[None]:
        if loop is not self._home:
            self._make_home(loop)
        waiter = loop.create_future()
        with self._lock:
            self._refuse_if_unusable()
            self._queue.append((fields, waiter))
            first, self._flush_due = not self._flush_due, True
        if first:
            loop.call_soon(self._flush)  # what this turn of the loop hands over goes together
        return waiter

    def _append_waiting(self, fields: RequestValues) -> None:
        """Outside an event loop: send at once and wait for the acknowledgement."""
        waiter: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._lock:
            self._refuse_if_unusable()
            self._queue.append((fields, waiter))
        self._flush()
        home = self._home
        while not waiter.done():
            if home is not None and home.is_running():
                break  # the home loop reads the acknowledgement
            self._read_one()
        waiter.result()

    def _refuse_if_unusable(self) -> None:
        if self._closed or self._broken:
            raise StoreError(
                f"inference log {self.directory} is "
                + (f"unusable: {self._broken}" if self._broken else "closed"),
                remedy="restart the server: reopening the log repairs a partial write",
            )

    def _flush(self) -> None:
        """Send every queued map as one message, in queue order."""
        with self._send_lock:
            with self._lock:
                batch, self._queue, self._flush_due = self._queue, [], False
                if not batch:
                    return
            data, sent, refused = encode_requests(batch)
            with self._lock:
                self._sent.append(sent)
            settle(refused)
            try:
                self._conn.send_bytes(data)
            except OSError as exc:
                self._fail_all(f"the writer process cannot be reached ({exc.strerror or exc})")

    # ------------------------------------------------------------------ acknowledgements
    def _make_home(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read acknowledgements in ``loop`` from now on (the loop before is gone or idle;
        while it runs it keeps reading, and settles this loop's waiters through it)."""
        old = self._home
        if old is not None and old.is_running():
            return
        if old is not None and not old.is_closed():
            old.remove_reader(self._fd)
        self._home = loop
        if not self._child_gone:
            loop.add_reader(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        """The home loop's reader: every acknowledgement already here, without blocking."""
        if not self._read_lock.acquire(blocking=False):
            return  # a waiting caller is reading; the loop calls again
        try:
            while not self._child_gone and self._conn.poll(0):
                self._handle(self._receive())
        finally:
            self._read_lock.release()

    def _read_one(self) -> None:
        """Block for one message (a caller outside the home loop)."""
        with self._read_lock:
            if not self._child_gone:
                self._handle(self._receive())

    def _receive(self) -> tuple[Any, ...] | None:
        """The next message, or None once the child is gone (the caller holds the lock)."""
        try:
            message: tuple[Any, ...] = load(self._conn.recv_bytes())
        except (EOFError, OSError):
            return None
        return message

    def _handle(self, message: tuple[Any, ...] | None) -> None:
        if message is None or message[0] == "closed":
            self._child_gone = True
            self._stop_reading()
            self._fail_all("the writer process exited")
            return
        _, results, whole, failure, unusable, records, signed = message
        with self._lock:
            waiters = self._sent.popleft()
            self.checkpoint_failure, self._records, self._signed = failure, records, signed
            if unusable is not None and self._broken is None:
                self._broken = unusable
        outcomes = [whole] * len(waiters) if whole is not None else results
        settle(list(zip(waiters, outcomes, strict=True)))

    def _stop_reading(self) -> None:
        home = self._home
        if home is None or home.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is home or not home.is_running():
            home.remove_reader(self._fd)
        else:
            home.call_soon_threadsafe(home.remove_reader, self._fd)

    def _fail_all(self, reason: str) -> None:
        """The child is gone: everything pending and everything later fails."""
        with self._lock:
            if self._broken is None and not self._closed:
                self._broken = reason
            pending = [w for batch in self._sent for w in batch]
            pending += [w for _, w in self._queue]
            self._sent.clear()
            self._queue = []
        error: WireError = ("StoreError", f"inference log {self.directory}: {reason}", None)
        settle([(waiter, error) for waiter in pending])

    # ------------------------------------------------------------------ state
    @property
    def pid(self) -> int:
        """The writer process's id."""
        return self._child.pid

    @property
    def size(self) -> int:
        """Records written, as of the last acknowledgement."""
        return self._records

    @property
    def signed_size(self) -> int:
        """Records covered by a checkpoint, as of the last acknowledgement."""
        return self._signed

    def status(self) -> dict[str, Any]:
        """For health endpoints, as of the last acknowledgement."""
        with self._lock:
            return {
                "directory": str(self.directory),
                "records": self._records,
                "signedSize": self._signed,
                "closed": self._closed,
                "checkpointFailure": self.checkpoint_failure,
                "unusable": self._broken,
                "writer": "process",
            }

    def close(self) -> None:
        """Send what is queued, then have the child sign a last checkpoint and exit;
        returns once it has (acknowledging what it wrote on the way)."""
        with self._lock:
            if self._closed:
                return
        self._flush()
        with self._send_lock:
            with self._lock:
                self._closed = True
            with contextlib.suppress(OSError):  # the child is gone already
                self._conn.send_bytes(CLOSE)
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while not self._child_gone and time.monotonic() < deadline:
            if self._read_lock.acquire(timeout=0.05):
                try:
                    if not self._child_gone and self._conn.poll(0.05):
                        self._handle(self._receive())
                finally:
                    self._read_lock.release()
        self._stop_reading()
        self._reap()
        atexit.unregister(self.close)

    def _reap(self) -> None:
        try:
            self._child.wait(CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _start_child(settings: Settings) -> tuple[Connection, subprocess.Popen[bytes]]:
    ours, theirs = socket.socketpair()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "mlspec_attest.log.process_main", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        ours.close()
        raise StoreError(f"cannot start the inference-log writer process: {exc}") from exc
    finally:
        theirs.close()
    conn = Connection(ours.detach())
    conn.send_bytes(dump(asdict(settings)))
    return conn, child


def settle(outcomes: list[tuple[_Waiter, WireError | None]]) -> None:
    """Complete each waiter, in its own event loop (directly in the running one, one
    wake-up for each other loop)."""
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    elsewhere: dict[asyncio.AbstractEventLoop, list[tuple[_Waiter, WireError | None]]] = {}
    for waiter, error in outcomes:
        if isinstance(waiter, asyncio.Future) and waiter.get_loop() is not running:
            elsewhere.setdefault(waiter.get_loop(), []).append((waiter, error))
        else:
            _complete(waiter, error)
    for loop, items in elsewhere.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody awaits these
            loop.call_soon_threadsafe(settle, items)  # there, that loop is the running one


def _complete(waiter: _Waiter, error: WireError | None) -> None:
    if waiter.done():
        return
    if error is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(rebuild(error))
