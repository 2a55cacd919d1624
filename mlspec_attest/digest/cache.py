"""Opt-in cache of per-file digests for re-signing large, unchanged datasets.

A file's digest is reused when its device, inode, size, modification time and
change time (nanoseconds) are all what they were when it was hashed. The change
time is there because anyone who can write a file can also reset its mtime
(``touch -d``), but not its ctime. Even so, a cache trusts file metadata instead
of file bytes, so:

* it is used only when asked for (``sign --digest-cache DIR`` or
  ``MLSPEC_ATTEST_DIGEST_CACHE``), only for signing, and never by ``verify`` or
  a serving gate, which always read every byte;
* files modified in the last two seconds are not cached (their next change could
  keep the same timestamps on a coarse clock: git's "racily clean" problem);
* files under 64 KiB bypass it (``hashengine.CACHE_MIN_SIZE``): hashing them costs
  less than a lookup;
* a file is cached only if it did not change while it was being hashed.

The cache is one SQLite database in the directory; a damaged one is discarded.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path

from mlspec_attest.errors import StoreError

CACHE_ENV = "MLSPEC_ATTEST_DIGEST_CACHE"
CACHE_FILE = "digests-v1.sqlite"
RACY_NS = 2_000_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS digests (
    dev INTEGER NOT NULL, ino INTEGER NOT NULL, algorithm TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    digest BLOB NOT NULL,
    PRIMARY KEY (dev, ino, algorithm)
) WITHOUT ROWID
"""


def _key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class DigestCache:
    """Per-file digests keyed by (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / CACHE_FILE
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"digest cache {directory}: cannot create ({exc.strerror})") from exc
        self._local = threading.local()
        self._pending: list[tuple[int, int, str, int, int, int, bytes]] = []
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self._connect_main()

    def _connect_main(self) -> None:
        try:
            conn = self._connection()
            conn.execute(_SCHEMA)
            conn.commit()
        except sqlite3.DatabaseError:
            # A damaged cache is worth nothing: start again.
            self._local.conn = None
            with contextlib.suppress(OSError):
                self.path.unlink()
            conn = self._connection()
            conn.execute(_SCHEMA)
            conn.commit()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    def lookup(self, path: str, algorithm: str) -> tuple[bytes, int] | None:
        """The cached ``(digest, size)`` of ``path`` if it is unchanged, else None."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        dev, ino, size, mtime_ns, ctime_ns = _key(st)
        try:
            row = (
                self._connection()
                .execute(
                    "SELECT size, mtime_ns, ctime_ns, digest FROM digests "
                    "WHERE dev = ? AND ino = ? AND algorithm = ?",
                    (dev, ino, algorithm),
                )
                .fetchone()
            )
        except sqlite3.Error:
            row = None
        if row is None or tuple(row[:3]) != (size, mtime_ns, ctime_ns):
            self.misses += 1
            return None
        self.hits += 1
        return bytes(row[3]), size

    def offer(
        self, fd: int, before: os.stat_result, algorithm: str, result: tuple[bytes, int]
    ) -> None:
        """Remember ``result`` for the open file ``fd`` if it was stable while hashed."""
        after = os.fstat(fd)
        if _key(after) != _key(before) or result[1] != before.st_size:
            return
        if time.time_ns() - max(before.st_mtime_ns, before.st_ctime_ns) < RACY_NS:
            return
        dev, ino, size, mtime_ns, ctime_ns = _key(before)
        with self._lock:
            self._pending.append((dev, ino, algorithm, size, mtime_ns, ctime_ns, result[0]))

    def flush(self) -> None:
        """Write what was hashed since the last flush (one transaction)."""
        with self._lock:
            rows, self._pending = self._pending, []
        if not rows:
            return
        conn = self._connection()
        try:
            conn.execute("BEGIN")
            conn.executemany("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise StoreError(f"digest cache {self.path}: cannot write ({exc})") from exc


def cache_from_option(directory: Path | None) -> DigestCache | None:
    """The cache named by ``--digest-cache`` or ``MLSPEC_ATTEST_DIGEST_CACHE``, if any."""
    if directory is None:
        env = os.environ.get(CACHE_ENV)
        directory = Path(env) if env else None
    return DigestCache(directory) if directory is not None else None
