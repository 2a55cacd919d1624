"""Opening a log directory for writing: checks before anything is served, and the repair
of what a crash leaves (a partial last record, a missing or partial last line)."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from mlspec_attest.errors import BadInputError, StoreError, VerificationError
from mlspec_attest.formats.fsutil import write_error
from mlspec_attest.formats.limits import MiB, format_size
from mlspec_attest.log.audit import OK, UNREADABLE, LogAudit, LogState
from mlspec_attest.log.files import ACCESS_LOG, CHECKPOINTS, RECORDS
from mlspec_attest.log.record import decode_record
from mlspec_attest.log.scan import RecordScanner

DEFAULT_MIN_FREE_BYTES = 64 * MiB


def prepare_directory(directory: Path, min_free_bytes: int) -> None:
    """Create ``directory`` (and ``checkpoints/``) and check it can take writes: a
    StoreError naming it if it cannot be created or written or its disk is nearly full,
    a BadInputError if it is not a directory."""
    if directory.exists() and not directory.is_dir():
        raise BadInputError(
            f"inference log {directory}: not a directory",
            remedy="name a directory for the log (it is created if missing)",
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"inference log {directory}: cannot create the directory ({exc.strerror or exc})",
            remedy="create it, or give the server's user write access to its parent",
        ) from exc
    probe = directory / f".write-test.{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
        (directory / CHECKPOINTS).mkdir(exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"inference log {directory}: cannot write there ({exc.strerror or exc})",
            remedy="give the server's user write access to the log directory",
        ) from exc
    free = _free_bytes(directory)
    if free < min_free_bytes:
        raise StoreError(
            f"inference log {directory}: only {format_size(free)} free on its filesystem, "
            f"less than the {format_size(min_free_bytes)} required to start",
            remedy="free space on that filesystem, or put the log on another one",
        )


def _free_bytes(directory: Path) -> int:
    try:
        stats = os.statvfs(directory)
    except OSError as exc:
        raise StoreError(f"inference log {directory}: cannot stat ({exc.strerror or exc})") from exc
    return stats.f_bavail * stats.f_frsize


def require_intact(audit: LogAudit) -> LogState:
    """The state to continue from, if ``audit`` says the log may be appended to."""
    if audit.result == UNREADABLE or audit.state is None:
        raise StoreError(f"inference log {audit.directory}: {audit.problem}")
    if audit.result != OK:
        first = "; ".join(f.describe() for f in audit.problems[:3])
        more = len(audit.problems) - 3
        raise VerificationError(
            f"inference log {audit.directory} has been tampered with, refusing to append: "
            f"{first}" + (f" (and {more} more)" if more > 0 else ""),
            remedy="keep the directory as evidence, audit it, and start the server on a new "
            "log directory",
        )
    return audit.state


def repair(directory: Path, state: LogState) -> None:
    """Undo a crash's traces: cut a partial last record, cut a partial last line, and
    write the lines of the last records if they are missing (a crash between writing a
    group's records and its lines). Never removes a whole record."""
    records, lines = directory / RECORDS, directory / ACCESS_LOG
    try:
        if state.torn:
            os.truncate(records, state.records_end)
        if lines.exists() and lines.stat().st_size != state.lines_end:
            os.truncate(lines, state.lines_end)
        if state.lines_complete < state.count:
            _write_missing_lines(records, lines, state)
    except OSError as exc:
        raise write_error(records if exc.filename == str(records) else lines, exc) from exc


def _write_missing_lines(records: Path, lines: Path, state: LogState) -> None:
    """Render the lines of the records from the first without one to the last (each a
    whole record the audit read exactly) and append them, synced."""
    missing = state.count - state.lines_complete
    if state.unlined_offset is None:
        raise StoreError(f"inference log {records.parent}: cannot restore the missing lines")
    rendered: list[bytes] = []
    for item in RecordScanner(records, state.unlined_offset):
        if item.offset >= state.records_end or len(rendered) == missing:
            break
        record = decode_record(item.raw, what=f"the record at byte {item.offset} of {records}")
        rendered.append((record.line() + "\n").encode())
    if len(rendered) != missing:
        raise StoreError(f"inference log {records.parent}: cannot restore the missing lines")
    fd = os.open(lines, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        write_all(fd, b"".join(rendered))
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (it may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "write returned no progress")
        view = view[written:]


def hold_lock(directory: Path) -> int:
    """An exclusive lock on ``<directory>/.lock`` for the writer's lifetime: two servers
    appending to one log would interleave their records."""
    path = directory / ".lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise StoreError(
            f"inference log {directory} is open for writing by another process",
            remedy="stop the other server, or give this one its own log directory",
        ) from exc
    return fd
