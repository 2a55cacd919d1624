"""What a process forked from the server does with the logs it inherited: nothing.

Its copies are its parent's: the writer process's socket (closing it at exit, as atexit
would, tells the parent's writer to finish and exit) and the journal's mapping (copying
entries there would put two entries of one seq in one place). After a fork every open
log and journal writer is refused in the child (StoreError) and left as it is.
"""

from __future__ import annotations

import atexit
import os
import weakref
from collections.abc import Callable
from typing import Any

_GUARDED: weakref.WeakKeyDictionary[Any, Callable[[Any], None]] = weakref.WeakKeyDictionary()
_WHY = "this process was forked from the server that opened it"


def guard(owner: Any, forget: Callable[[Any], None]) -> None:
    """Have ``forget(owner)`` run in a child forked while ``owner`` lives (a plain
    function, so that this table holds no reference to ``owner``)."""
    _GUARDED[owner] = forget


def forget_log(log: Any) -> None:
    """A writer process's client (``LogWriterProcess``): refused, not closed at exit."""
    log._closed = True
    log._broken = log._broken or _WHY
    atexit.unregister(log.close)


def forget_journal(writer: Any) -> None:
    """A journal writer: refused; its mapping and file are not touched (nor cut back)."""
    writer._map, writer._fd, writer._fork_refused = None, -1, True


def _forked() -> None:
    for owner, forget in list(_GUARDED.items()):
        forget(owner)


os.register_at_fork(after_in_child=_forked)
