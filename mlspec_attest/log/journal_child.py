"""The writer process's side of ``journal`` mode (:mod:`mlspec_attest.log.journal`).

After the log is open, every entry the journal holds beyond the log's last record (what
a crash left) is committed and signed before the server hears ``ready``; then, each
time the server says there is more (or closes, or is gone), every entry already
journaled is committed as groups, in journal order, and acknowledged with the log's
state. A record the log refuses (over the size bound) is written without its output and
input, which a marker replaces and names why: a request that was answered always has a
record. When the server closes or is gone, what is left is committed, a checkpoint is
signed and the journal removed.
"""

from __future__ import annotations

from multiprocessing.connection import Connection
from typing import Any

from mlspec_attest.errors import MlspecError
from mlspec_attest.log.journal import JournalReader
from mlspec_attest.log.record import RecordError
from mlspec_attest.log.wire import CLOSE, SYNC, WireError, dump, error_of, read_word, rebuild
from mlspec_attest.log.writer import InferenceLog

#: Entries committed as one group, at most.
GROUP_ENTRIES = 4096
#: The output a record holds in place of one the log could not hold.
UNLOGGED_KEY = "mlspec.unlogged"


def recover(log: InferenceLog, reader: JournalReader) -> None:
    """Commit what the journal holds beyond the log, sign it, remove the journal;
    raise (a tampered journal, a write that failed) so that the log is not opened."""
    failure = commit_available(log, reader)
    if failure is not None:
        raise rebuild(failure)
    finish(log, reader)


def finish(log: InferenceLog, reader: JournalReader) -> None:
    """Everything journaled is in the log: sign it, then drop the journal."""
    if log.signed_size < log.size:
        log.checkpoint()
    if log.signed_size == log.size and log.unusable is None:
        reader.remove_all()


def serve(conn: Connection, log: InferenceLog, reader: JournalReader) -> None:
    """Commit what the server journals until it closes or is gone (then finish). The
    server hears back when it asks (:data:`SYNC`), when a checkpoint was signed and when
    the writer's failure changes; not for every group."""
    said: tuple[Any, ...] = ()
    cleared = -1  # the signed size the last removal of covered segments saw
    while True:
        closing, asked, whole_below = _wait(conn)
        # Live, only entries the server said are whole are judged; once it is gone or
        # closed, every entry it wrote is whole.
        reader.complete_below = None if closing else whole_below
        failure = commit_available(log, reader)
        status = (failure, log.checkpoint_failure, log.unusable, log.size, log.signed_size)
        news = (failure, log.checkpoint_failure, log.unusable, log.signed_size)
        if asked or news != said:
            try:
                conn.send_bytes(dump(("ack", None, *status)))
            except OSError:
                closing = True  # the server is gone: finish what it journaled
            said = news
        if failure is None and log.signed_size != cleared:  # only a checkpoint frees any
            reader.remove_covered(log.signed_size)
            cleared = log.signed_size
        if closing:
            if failure is None:
                finish(log, reader)
            return


def _wait(conn: Connection) -> tuple[bool, bool, int]:
    """Block for the server's next word, then take every word already waiting: whether
    the server closed or is gone, whether it asked for an acknowledgement, and the index
    below which it said the journal's entries are whole."""
    asked, whole_below = False, 0
    try:
        while True:
            data = conn.recv_bytes()
            if data == CLOSE:
                return True, asked, whole_below
            word, index = read_word(data)
            asked = asked or word == SYNC
            whole_below = max(whole_below, index or 0)
            if not conn.poll(0):
                return False, asked, whole_below
    except (EOFError, OSError):
        return True, asked, whole_below


def commit_available(log: InferenceLog, reader: JournalReader) -> WireError | None:
    """Commit every entry journaled so far; the error that stopped it, if any. A group
    the log could not write stays in the journal, to be tried again next time (the log
    cut its files back: it goes on whole once there is room)."""
    while True:
        mark = reader.mark()
        try:
            batch = reader.read(GROUP_ENTRIES)
            if not batch:
                return None
            log.commit_fields(batch, _without_values)
        except MlspecError as exc:
            reader.rewind(mark)
            return error_of(exc)


def _without_values(m: dict[str, Any], error: RecordError) -> dict[str, Any]:
    """A record over the bound, in its place: its output replaced by why, no input."""
    kept = {k: v for k, v in m.items() if k not in ("in", "nl")}
    kept["o"] = {UNLOGGED_KEY: error.message}
    return kept
