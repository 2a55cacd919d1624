"""The wire between the inference log's writer process and the server that feeds it.

Both ends are this program (:mod:`mlspec_attest.log.process`, the server's side;
:mod:`mlspec_attest.log.process_main`, the writer's). Messages are pickles over a
socketpair only they hold; each is one :class:`multiprocessing.connection.Connection`
frame:

* server → writer: the settings (first, once: :class:`Settings`, the key as PKCS#8
  DER); then lists of ``append`` keyword dicts; then :data:`CLOSE`;
* writer → server: ``("ready", records, signed)`` or ``("failed", error)`` once the log
  is open; per list, ``("ack", per-request errors, group error, checkpoint failure,
  unusable, records, signed)``; ``("closed",)`` after the last checkpoint.

An error crosses as (class name in :mod:`mlspec_attest.errors`, message, remedy) and is
raised on the other side as that class, so exit codes and answers stay what they were.
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from msgspec import Struct

from mlspec_attest import errors
from mlspec_attest.errors import MlspecError, StoreError
from mlspec_attest.log.record import RecordError

#: Messages the writer folds into one group, at most.
MAX_GROUP_MESSAGES = 64
#: The server's last message: sign a last checkpoint and exit.
CLOSE = b"close"
#: Journal mode: there is more in the journal. :data:`SYNC`: and acknowledge it. Each is
#: sent with the index below which the journal's entries are whole (:func:`word_of`).
MORE = b"more"
SYNC = b"sync"
#: An error crossing the socket: (class name, message, remedy).
WireError = tuple[str, str, str | None]


class Settings(Struct, frozen=True):
    """What the writer needs to open the log: where, the key, the origin, and the other
    options of ``InferenceLog.open`` (``writer.LogOptions``)."""

    directory: str
    key_der: bytes
    origin: str
    options: dict[str, Any]
    journal: bool = False  # journal mode (mlspec_attest.log.journal)


T = TypeVar("T")


def encode_requests(
    batch: Sequence[tuple[Mapping[str, object], T]],
) -> tuple[bytes, list[T], list[tuple[T, WireError | None]]]:
    """One message of the batch's requests; the tags (waiters) of those it carries; and
    the refusals of any that cannot be sent (an output pickle cannot copy fails only its
    own request)."""
    with contextlib.suppress(Exception):  # whatever pickle raises is found again below
        return dump([fields for fields, _ in batch]), [tag for _, tag in batch], []
    kept: list[tuple[Mapping[str, object], T]] = []
    refused: list[tuple[T, WireError | None]] = []
    for fields, tag in batch:
        try:
            dump(fields)
        except Exception as exc:
            reason = f"log record: its values cannot be sent to the writer process ({exc})"
            refused.append((tag, ("RecordError", reason, None)))
        else:
            kept.append((fields, tag))
    return dump([fields for fields, _ in kept]), [tag for _, tag in kept], refused


def word_of(word: bytes, whole_below: int) -> bytes:
    """A journal-mode word (:data:`MORE` or :data:`SYNC`) with the index below which every
    journal entry is whole: ``b"more 1234"``."""
    return b"%s %d" % (word, whole_below)


def read_word(data: bytes) -> tuple[bytes, int | None]:
    """(word, index) of :func:`word_of`; (word, None) for a word without an index
    (:data:`CLOSE`)."""
    word, _, index = data.partition(b" ")
    return word, int(index) if index.isdigit() else None


def dump(message: object) -> bytes:
    return pickle.dumps(message, 5)


def load(data: bytes) -> Any:
    """A message from the other end of the socketpair: this program's own parent or child,
    the only two holders of that socket, so pickle carries no stranger's data."""
    return pickle.loads(data)  # noqa: S301 - the peer is this program (see above)


def error_of(exc: MlspecError) -> WireError:
    return (type(exc).__name__, exc.message, exc.remedy)


def rebuild(error: WireError) -> MlspecError:
    """The other side's error as the same class of :mod:`mlspec_attest.errors`
    (RecordError too; StoreError if the name is neither)."""
    name, message, remedy = error
    kind = getattr(errors, name, None)
    if (
        isinstance(kind, type)
        and issubclass(kind, MlspecError)
        and kind.__init__ is (MlspecError.__init__)
    ):
        return kind(message, remedy=remedy)
    if name == "RecordError":
        return RecordError(message, remedy=remedy)
    return StoreError(message, remedy=remedy)
