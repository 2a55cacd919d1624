"""Hashing progress on a terminal: a rich progress bar on stderr, only when it helps.

The bar appears only when stderr is a terminal, ``--quiet`` was not given, and
the work has already taken about a second (a quick command stays silent). It is
transient: it disappears when hashing ends, leaving stdout and logs clean. rich
is imported only when a bar is actually shown, so ``--help`` stays fast.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from mlspec_attest.formats.printable import printable

if TYPE_CHECKING:  # a protocol: `verify` without --artifact loads no digest engine
    from mlspec_attest.digest.engine import ProgressSink

SHOW_AFTER_SECONDS = 1.0


class TerminalProgress:
    """A :class:`~mlspec_attest.digest.engine.ProgressSink` drawing a rich bar on stderr."""

    def __init__(self, *, show_after: float = SHOW_AFTER_SECONDS, stream: Any = None) -> None:
        self.show_after = show_after
        self.stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()
        self._bar: Any = None
        self._task: Any = None
        self._label = ""
        self._files = 0
        self._total: int | None = None
        self._done_bytes = 0
        self._done_files = 0
        self._started = 0.0
        self._active = False

    def begin(self, label: str, files: int, total_bytes: int | None) -> None:
        with self._lock:
            self._label = label
            self._files = files
            self._total = total_bytes
            self._done_bytes = 0
            self._done_files = 0
            self._started = time.monotonic()
            self._active = True

    def advance(self, nbytes: int, files: int = 0) -> None:
        with self._lock:
            self._done_bytes += nbytes
            self._done_files += files
            if not self._active:
                return
            if self._bar is None:
                if time.monotonic() - self._started < self.show_after:
                    return
                self._show()
            elapsed = time.monotonic() - self._started
            self._bar.update(
                self._task,
                completed=self._done_bytes if self._total is not None else self._done_files,
                rate=self._done_bytes / elapsed if elapsed > 0 else 0.0,
            )

    def end(self) -> None:
        with self._lock:
            self._active = False
            if self._bar is not None:
                self._bar.stop()
                self._bar = None
                self._task = None

    def _show(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.text import Text

        class BytesPerSecond(ProgressColumn):
            """Throughput in bytes/s when the bar counts files."""

            def render(self, task: Any) -> Text:
                rate = float(task.fields.get("rate", 0.0))
                return Text(f"{rate / 1e6:,.0f} MB/s", style="progress.data.speed")

        console = Console(file=self.stream, stderr=True)
        # The label is a path or URL, so markup is off: a name holding ``[/x]`` made rich
        # raise (hashing failed) and ``[red]`` styled the bar; its control characters escaped.
        columns: list[Any] = [TextColumn("hashing {task.description}", markup=False), BarColumn()]
        if self._total is not None:
            columns += [DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
            total: float = self._total
        else:
            columns += [MofNCompleteColumn(), TextColumn("files"), BytesPerSecond()]
            total = self._files
        columns.append(TimeElapsedColumn())
        self._bar = Progress(*columns, console=console, transient=True, refresh_per_second=8)
        name = printable(self._label)
        label = name if len(name) <= 40 else "…" + name[-39:]
        self._task = self._bar.add_task(label, total=total, rate=0.0)
        self._bar.start()


def progress_for(quiet: bool, stream: Any = None) -> ProgressSink | None:
    """A terminal progress bar, or None when quiet or stderr is not a terminal."""
    target = stream if stream is not None else sys.stderr
    if quiet or not getattr(target, "isatty", lambda: False)():
        return None
    return TerminalProgress(stream=target)
