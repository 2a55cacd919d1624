"""``InferenceLog``: the append-only, signed inference log a server writes per request.

One lock orders every append, so seq order is file order in ``records.cbor`` and
``access.log`` whatever the number of threads. Each record is one ``write`` to a file
opened with ``O_APPEND`` (no user-space buffer), then its line; the Merkle tree is
kept as a compact range, so an append costs O(log n) hashes at worst.

Durability (docs/logging.md): when :meth:`InferenceLog.append` returns, the record and
its line are in the operating system's hands: a killed server process (``kill -9``)
loses nothing that was acknowledged, at worst a record or line being written at that
instant, which reopening repairs. Before a checkpoint is signed both files are fsynced,
so a signed checkpoint never covers records a power failure could take back. With
``fsync=True`` every append is fsynced too (every acknowledged request survives a power
failure, at the cost of a disk flush per request).

A write that fails (a full disk) raises :class:`~mlspec_attest.errors.StoreError` and
leaves no partial record behind (the files are cut back to where they were); the
request must then fail, never be answered as if logged.
"""

from __future__ import annotations

import os
import threading
import time as _time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, TypeVar, Unpack

from mlspec_attest.errors import BadInputError, StoreError
from mlspec_attest.formats.fsutil import atomic_write, create_once, write_error
from mlspec_attest.formats.signer import Signer
from mlspec_attest.log.audit import verify_log
from mlspec_attest.log.checkpoint import Checkpoint, check_origin, sign_checkpoint
from mlspec_attest.log.files import (
    ACCESS_LOG,
    LATEST,
    PUBLIC_KEY,
    RECORDS,
    VKEY,
    numbered,
    peek_origin,
)
from mlspec_attest.log.merkle import leaf_hash
from mlspec_attest.log.note import note_key
from mlspec_attest.log.prepare import (
    Fields,
    RecordMaker,
    RequestValues,
    Substitute,
    encoded_fields,
    encoded_record,
    record_map,
)
from mlspec_attest.log.record import (
    InferenceRecord,
    RecordError,
    format_time,
    record_from_map,
)
from mlspec_attest.log.recover import (
    DEFAULT_MIN_FREE_BYTES,
    hold_lock,
    prepare_directory,
    repair,
    require_intact,
    write_all,
)

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
_Item = TypeVar("_Item")


def _same(m: dict[str, Any]) -> dict[str, Any]:
    return m


class LogOptions(TypedDict, total=False):
    """The options of :meth:`InferenceLog.open` a writer process is given as well (the
    defaults are :meth:`InferenceLog.open`'s)."""

    key_name: str | None
    checkpoint_every: int
    checkpoint_interval_s: float
    log_inputs: bool
    log_user_ids: bool
    fsync: bool
    min_free_bytes: int


class InferenceLog(RecordMaker):
    """A log directory open for appending. Create with :meth:`open`; thread-safe."""

    def __init__(self, directory: Path, signer: Signer, key_name: str, origin: str) -> None:
        self.directory, self.signer, self.key_name, self.origin = (
            directory,
            signer,
            key_name,
            origin,
        )
        self.checkpoint_every, self.checkpoint_interval_s = 1000, 10.0
        self.fsync = False
        self.clock: Callable[[], float] = _time.monotonic
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock_fd = self._records_fd = self._lines_fd = -1
        self._sizes = (0, 0)
        self._broken: str | None = None
        self.checkpoint_failure: str | None = None

    @classmethod
    def open(
        cls,
        directory: Path,
        signer: Signer,
        *,
        origin: str,
        key_name: str | None = None,
        checkpoint_every: int = 1000,
        checkpoint_interval_s: float = 10.0,
        log_inputs: bool = False,
        log_user_ids: bool = False,
        fsync: bool = False,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
        clock: Callable[[], float] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> InferenceLog:
        """Open (creating if needed) the log in ``directory``, signed by ``signer`` as
        ``key_name`` (default: ``origin``). An existing log is audited first: a tampered
        one is refused, a crash's traces are repaired, unsigned records are signed."""
        directory = Path(directory)
        name = key_name or origin
        check_origin(origin)
        note_key(signer.public_key, name)  # refuse an unusable key before touching files
        prepare_directory(directory, min_free_bytes)
        log = cls(directory, signer, name, origin)
        log.checkpoint_every, log.checkpoint_interval_s = (
            max(1, checkpoint_every),
            checkpoint_interval_s,
        )
        log.log_inputs, log.log_user_ids, log.fsync = log_inputs, log_user_ids, fsync
        log.clock, log.now = clock or log.clock, now or log.now
        log._start()
        return log

    def _start(self) -> None:
        self._lock_fd = hold_lock(self.directory)
        try:
            existing = peek_origin(self.directory)
            if existing is not None and existing != self.origin:
                raise BadInputError(
                    f"inference log {self.directory} was written for origin {existing!r}, "
                    f"not {self.origin!r}",
                    remedy="give a log of another origin (model or verification summary) "
                    "its own directory",
                )
            audit = verify_log(
                self.directory, self.signer.public_key, key_name=self.key_name, origin=self.origin
            )
            state = require_intact(audit)
            repair(self.directory, state)
            self._tree, self._prev, self._seq = state.tree.copy(), state.last_leaf, state.count
            self._signed = audit.signed if audit.checkpoints else -1
            self._records_fd = self._open(RECORDS)
            self._lines_fd = self._open(ACCESS_LOG)
            self._sizes = (os.fstat(self._records_fd).st_size, os.fstat(self._lines_fd).st_size)
            self._publish_key()
            self._last_checkpoint = self.clock()
            if self._signed < self._seq:
                self.checkpoint()
        except BaseException:
            self._release()
            raise
        if self.checkpoint_interval_s > 0:
            self._thread = threading.Thread(
                target=self._ticker, name="inference-log-checkpoints", daemon=True
            )
            self._thread.start()

    def _open(self, name: str) -> int:
        path = self.directory / name
        try:
            return os.open(path, _FLAGS, 0o644)
        except OSError as exc:
            raise write_error(path, exc) from exc

    def _publish_key(self) -> None:
        key = note_key(self.signer.public_key, self.key_name)
        for name, text in ((PUBLIC_KEY, key.public_key.pem()), (VKEY, key.vkey() + "\n")):
            path = self.directory / name
            if not path.is_file() or path.read_text(errors="replace") != text:
                atomic_write(path, text.encode())

    # ------------------------------------------------------------------ appending
    def append(self, **fields: Unpack[RequestValues]) -> InferenceRecord:
        """Log one request (the keywords of :meth:`prepare`); returns its record.
        StoreError if it cannot be written (nothing half-written), BadInputError for a
        value a record cannot hold (non-JSON output ...)."""
        m = self.prepare(**fields)
        failed = self.commit([m])[0]
        if failed is not None:
            raise failed
        return record_from_map(m, check=False)

    def commit(
        self, maps: list[dict[str, Any]], substitute: Substitute | None = None
    ) -> list[RecordError | None]:
        """Write prepared maps (:meth:`prepare`) as one group, in order: one write per
        file for all of them, so a group costs two system calls however large. Returns,
        per map, None once it is written or the RecordError that kept it out (a record
        over the size bound; it takes no seq), unless ``substitute`` gives the map to
        write in its place. StoreError if the group cannot be written: then none of it
        is (the files are cut back)."""
        return self._commit(maps, encoded_record, _same, substitute)

    def commit_fields(
        self, batch: list[Fields], substitute: Substitute | None = None
    ) -> list[RecordError | None]:
        """:meth:`commit` of the maps of these :meth:`fields` (``record_map`` of each),
        without making the maps: the writer process's way."""
        return self._commit(batch, encoded_fields, record_map, substitute)

    def _commit(
        self,
        items: list[_Item],
        encode: Callable[[_Item, int, bytes, str], tuple[bytes, bytes]],
        to_map: Callable[[_Item], dict[str, Any]],
        substitute: Substitute | None,
    ) -> list[RecordError | None]:
        with self._lock:
            if self._closed or self._broken:
                raise StoreError(
                    f"inference log {self.directory} is "
                    + (f"unusable: {self._broken}" if self._broken else "closed"),
                    remedy="restart the server: reopening the log repairs a partial write",
                )
            now = format_time(self.now())
            seq, prev = self._seq, self._prev
            records, lines, leaves = [], [], []
            errors: list[RecordError | None] = []
            for item in items:
                try:
                    data, line = encode(item, seq, prev, now)
                except RecordError as exc:
                    if substitute is None:
                        errors.append(exc)
                        continue
                    data, line = encoded_record(substitute(to_map(item), exc), seq, prev, now)
                errors.append(None)
                records.append(data)
                lines.append(line + b"\n")
                prev = leaf_hash(data)
                leaves.append(prev)
                seq += 1
            if records:
                self._write(b"".join(records), b"".join(lines))
                for leaf in leaves:
                    self._tree.append(leaf)
                self._prev, self._seq = prev, seq
                if self._due():
                    self._checkpoint_quietly()
        return errors

    def _write(self, record: bytes, line: bytes) -> None:
        """Both writes, or neither: on failure the files are cut back to where they were."""
        fds = ((self._records_fd, RECORDS, record), (self._lines_fd, ACCESS_LOG, line))
        for fd, name, data in fds:
            try:
                write_all(fd, data)
                if self.fsync:
                    os.fsync(fd)
            except OSError as exc:
                error = write_error(self.directory / name, exc)
                if not self._undo():
                    self._broken = f"{error.message}, and the partial write could not be undone"
                raise error from exc
        self._sizes = (self._sizes[0] + len(record), self._sizes[1] + len(line))

    def _undo(self) -> bool:
        """Cut both files back to their sizes before the failed append."""
        undone = True
        for fd, size in zip((self._records_fd, self._lines_fd), self._sizes, strict=True):
            try:
                os.ftruncate(fd, size)
            except OSError:
                undone = False
        return undone

    # ------------------------------------------------------------------ checkpoints
    def _due(self) -> bool:
        unsigned = self._seq - max(self._signed, 0)
        if unsigned >= self.checkpoint_every:
            return True
        interval = self.checkpoint_interval_s
        return unsigned > 0 and interval > 0 and self.clock() - self._last_checkpoint >= interval

    def checkpoint(self) -> str:
        """Sign and write a checkpoint of the log as it is now; returns the signed note."""
        with self._lock:
            if self._closed:
                raise StoreError(f"inference log {self.directory} is closed")
            return self._checkpoint()

    def _checkpoint(self) -> str:
        size = self._seq
        for fd in (self._records_fd, self._lines_fd):  # what is signed is on disk first
            try:
                os.fsync(fd)
            except OSError as exc:
                raise write_error(self.directory / RECORDS, exc) from exc
        body = Checkpoint(self.origin, size, self._tree.root())
        note = sign_checkpoint(body, self.signer, self.key_name)
        path = numbered(self.directory, size)
        if not create_once(path, note.encode()) and path.read_bytes() != note.encode():
            note = path.read_text()  # signed before (the same tree): keep the first
        atomic_write(self.directory / LATEST, note.encode())
        self._signed, self._last_checkpoint = size, self.clock()
        self.checkpoint_failure = None
        return note

    def _checkpoint_quietly(self) -> None:
        """A checkpoint after an append: a failure is kept (:attr:`checkpoint_failure`)
        and retried later; the record itself is written and stays acknowledged."""
        try:
            self._checkpoint()
        except StoreError as exc:
            self.checkpoint_failure = exc.message
            self._last_checkpoint = self.clock()

    def _ticker(self) -> None:
        while not self._stop.wait(self.checkpoint_interval_s):
            with self._lock:
                if self._closed:
                    return
                if self._due():
                    self._checkpoint_quietly()

    # ------------------------------------------------------------------ state
    @property
    def size(self) -> int:
        """Records written so far."""
        return self._seq

    @property
    def unusable(self) -> str | None:
        """Why the log takes no more records (a write that could not be undone), if so."""
        return self._broken

    @property
    def signed_size(self) -> int:
        """Records covered by the latest checkpoint."""
        return max(self._signed, 0)

    def status(self) -> dict[str, Any]:
        """For health endpoints: sizes, the root, and any checkpoint failure."""
        with self._lock:
            return {
                "directory": str(self.directory),
                "records": self._seq,
                "signedSize": max(self._signed, 0),
                "root": self._tree.root().hex(),
                "origin": self.origin,
                "closed": self._closed,
                "checkpointFailure": self.checkpoint_failure,
                "unusable": self._broken,
            }

    def close(self) -> None:
        """Sign a last checkpoint (if records are unsigned) and close the files."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            if self._closed:
                return
            try:
                if self._signed < self._seq:
                    self._checkpoint()
            finally:
                self._closed = True
                self._release()

    def _release(self) -> None:
        for fd in (self._records_fd, self._lines_fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._records_fd = self._lines_fd = self._lock_fd = -1

    def __enter__(self) -> InferenceLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
