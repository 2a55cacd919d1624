"""The inference log's writer process: ``python -m mlspec_attest.log.process_main FD``.

Started by :class:`mlspec_attest.log.process.LogWriterProcess`, never by hand. It opens
the log (:class:`~mlspec_attest.log.writer.InferenceLog`) with the settings the server
sends over the socket ``FD`` (:mod:`mlspec_attest.log.wire`), then prepares and commits
every list of requests already waiting as one group, acknowledging each list, until
the server says close or is gone; then it signs a last checkpoint and exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from mlspec_attest.errors import MlspecError
from mlspec_attest.log import journal_child
from mlspec_attest.log.journal import JournalReader, journal_key
from mlspec_attest.log.wire import (
    CLOSE,
    MAX_GROUP_MESSAGES,
    Settings,
    WireError,
    dump,
    error_of,
    load,
)
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.signing.keys import signer_from_der


def _child(conn: Connection) -> None:
    settings = Settings(**load(conn.recv_bytes()))
    try:
        signer = signer_from_der(settings.key_der)
        directory = Path(settings.directory)
        log = InferenceLog.open(directory, signer, origin=settings.origin, **settings.options)
    except MlspecError as exc:
        conn.send_bytes(dump(("failed", error_of(exc))))
        return
    try:
        reader = None
        if settings.journal:
            reader = JournalReader(directory, journal_key(settings.key_der), log.size)
            journal_child.recover(log, reader)
    except MlspecError as exc:
        log.close()
        conn.send_bytes(dump(("failed", error_of(exc))))
        return
    conn.send_bytes(dump(("ready", log.size, log.signed_size)))
    try:
        if reader is None:
            _commit_loop(conn, log)
        else:
            journal_child.serve(conn, log, reader)
    finally:
        if reader is not None:
            reader.close()
        log.close()
        with contextlib.suppress(OSError):  # the server is gone
            conn.send_bytes(dump(("closed",)))


def _commit_loop(conn: Connection, log: InferenceLog) -> None:
    """Commit what arrives, every message already waiting as one group, until told to
    close or the server is gone."""
    while True:
        messages, closing = _receive_group(conn)
        if messages:
            _commit_group(conn, log, messages)
        if closing:
            return


def _receive_group(conn: Connection) -> tuple[list[list[dict[str, Any]]], bool]:
    messages: list[list[dict[str, Any]]] = []
    try:
        while True:
            data = conn.recv_bytes()
            if data == CLOSE:
                return messages, True
            messages.append(load(data))
            if len(messages) >= MAX_GROUP_MESSAGES or not conn.poll(0):
                return messages, False
    except (EOFError, OSError):
        return messages, True


def _commit_group(
    conn: Connection, log: InferenceLog, messages: list[list[dict[str, Any]]]
) -> None:
    """Prepare and commit every request of ``messages`` as one group; acknowledge each
    message with its requests' outcomes."""
    results, whole = _prepare_and_commit(log, [f for message in messages for f in message])
    status = (log.checkpoint_failure, log.unusable, log.size, log.signed_size)
    start = 0
    for message in messages:
        part = results[start : start + len(message)]
        start += len(message)
        try:
            conn.send_bytes(dump(("ack", part, whole, *status)))
        except OSError:
            return  # the server is gone; what was written stays (reopening audits it)


def _prepare_and_commit(
    log: InferenceLog, requests: list[dict[str, Any]]
) -> tuple[list[WireError | None], WireError | None]:
    """Per request, None once written or the error that kept it out; and the error that
    kept the whole group out (a write that failed), if any."""
    results: list[WireError | None] = []
    prepared = []
    for fields in requests:
        try:
            prepared.append(log.prepare(**fields))
        except MlspecError as exc:
            results.append(error_of(exc))
            continue
        except TypeError as exc:  # keywords prepare does not take
            results.append(("UsageError", f"log record: {exc}", None))
            continue
        results.append(None)
    try:
        committed = iter(log.commit(prepared))
    except MlspecError as exc:
        return results, error_of(exc)
    for index, result in enumerate(results):
        if result is None:
            error = next(committed)
            results[index] = None if error is None else error_of(error)
    return results, None


def main() -> None:
    """The child's entry: ``python -m mlspec_attest.log.process_main FD``."""
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: python -m mlspec_attest.log.process_main FD (started by LogWriterProcess)")
    conn = Connection(int(sys.argv[1]))
    # a file size limit is a write error (EFBIG) that fails a group, not a killed writer
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        _child(conn)
    except (EOFError, OSError):
        pass  # the server went away before the log was open
    finally:
        conn.close()
        os._exit(0)  # no atexit work: the log is closed above


if __name__ == "__main__":
    main()
