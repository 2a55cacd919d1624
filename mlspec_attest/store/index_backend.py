"""Where the index lives, and the one connection type the queries and the writer use.

Two backends stand behind the same SQL (written with ``?`` placeholders, in the subset
both speak): SQLite, the default, a file in the store (``STORE/index.sqlite3``, the
standard library's ``sqlite3``, no server), and PostgreSQL for teams
(:mod:`mlspec_attest.store.index_pg`). What differs between them is here and there only:
placeholders, column types, bulk loading, locking and how a full rebuild is swapped in.

An :class:`IndexLocation` gives readers (:meth:`~IndexLocation.reader`) and runs one
write (:meth:`~IndexLocation.write`) in one transaction under a writers' lock. A write is
either in place (incremental) or a full rebuild into fresh tables swapped in at commit,
so a reader sees the old index or the new one, never half of one.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from mlspec_attest.errors import StoreError
from mlspec_attest.formats.fsutil import sync_directory
from mlspec_attest.store.index_schema import INDEXES, TABLES, IndexState, statements

R = TypeVar("R")
Work = Callable[["IndexDb", IndexState | None], R]

REBUILD_REMEDY = "rebuild it from the bundles (store reindex, in full)"


class IndexDb(ABC):
    """One open connection to an index. SQL is written with ``?`` placeholders; a backend
    whose driver wants another style translates it (:attr:`placeholder`). A database
    error is a :class:`StoreError` (exit 4) naming the index, never a driver exception."""

    placeholder = "?"
    begin_read = "BEGIN"
    errors: tuple[type[Exception], ...] = ()

    def __init__(self, where: str) -> None:
        self.where = where

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    @contextmanager
    def guard(self) -> Iterator[None]:
        try:
            yield
        except self.errors as exc:
            raise StoreError(
                f"the index {self.where} failed: {self.scrub(one_line(exc))}",
                remedy=REBUILD_REMEDY,
            ) from exc

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows ``sql`` selects (none for a statement that selects nothing)."""
        with self.guard():
            return self._fetch(self.sql(sql), params)

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.all(sql, params)

    def script(self, script: str) -> None:
        for statement in statements(script):
            self.run(statement)

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """``sql`` once per row of ``rows``."""
        with self.guard():
            self._many(self.sql(sql), rows)

    def insert(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Bulk-load ``rows`` (tuples in ``columns`` order) into ``table``."""
        with self.guard():
            self._insert(table, columns, rows)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read inside sees one committed state of the index (a read transaction)."""
        self.run(self.begin_read)
        try:
            yield
        finally:
            self.run("COMMIT")

    def scrub(self, text: str) -> str:
        """``text`` without secrets (a backend whose URL can hold a password removes it)."""
        return text

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...

    @abstractmethod
    def _insert(
        self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None: ...


class IndexLocation(Protocol):
    """Where one store's index lives: readers, its state, and one write at a time."""

    where: str

    def state(self) -> IndexState | None:
        """What the index says about itself; None when missing or unreadable."""

    def reader(self) -> IndexDb:
        """A read-only connection (each statement, or each :meth:`IndexDb.snapshot`,
        sees a committed state)."""

    def write(self, work: Work[R], *, full: bool) -> R:
        """``work(db, state)`` in one transaction under the writers' lock: in place with
        the index's current ``state`` when it was built by this schema from this store
        and ``full`` is false, else on fresh empty tables (``state`` None), swapped in at
        commit."""


def one_line(exc: BaseException) -> str:
    return "; ".join(part.strip() for part in str(exc).splitlines() if part.strip())


# SQLite ----------------------------------------------------------------------------

SQLITE_TYPES = {"text": "TEXT", "int": "INTEGER"}


class SqliteDb(IndexDb):
    errors = (sqlite3.Error,)

    def __init__(self, connection: sqlite3.Connection, where: str) -> None:
        super().__init__(where)
        self.connection = connection

    def close(self) -> None:
        self.connection.close()

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self.connection.execute(sql, params).fetchall()

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.connection.executemany(sql, rows)

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        marks = ", ".join("?" for _ in columns)
        self.connection.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608 (constants)
            rows,
        )


class SqliteIndex:
    """``STORE/index.sqlite3``: updated in place under SQLite's write lock (``BEGIN
    IMMEDIATE``); rebuilt as a new file renamed over the old one."""

    def __init__(self, path: Path, store_id: str) -> None:
        self.path = path
        self.where = str(path)
        self.store_id = store_id

    def state(self) -> IndexState | None:
        if not self.path.is_file():
            return None
        try:
            connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                return IndexState.of(connection.execute("SELECT key, value FROM meta"))
            finally:
                connection.close()
        except sqlite3.Error:
            return None

    def reader(self) -> IndexDb:
        try:
            connection = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, isolation_level=None, timeout=30
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the index {self.path}: {exc}") from exc
        return SqliteDb(connection, self.where)

    def write(self, work: Work[R], *, full: bool) -> R:
        try:
            if not full and self.path.is_file():
                done, result = self._in_place(work)
                if done:
                    return result  # type: ignore[return-value]
            return self._rebuild(work)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot write the index {self.path}: {exc}") from exc

    def _in_place(self, work: Work[R]) -> tuple[bool, R | None]:
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        db = SqliteDb(connection, self.where)
        try:
            try:
                db.run("BEGIN IMMEDIATE")
                state: IndexState | None = IndexState.of(db.all("SELECT key, value FROM meta"))
            except StoreError:
                state = None  # not an index (any more): rebuilt
            if state is None or not state.usable_for(self.store_id):
                return False, None
            result = work(db, state)
            db.run("COMMIT")
            return True, result
        finally:
            connection.close()  # without a COMMIT, the transaction is rolled back

    def _rebuild(self, work: Work[R]) -> R:
        temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.tmp")
        try:
            connection = sqlite3.connect(temp, isolation_level=None)
            db = SqliteDb(connection, self.where)
            try:
                # A crash leaves only the hidden temporary file: no journal is needed.
                db.run("PRAGMA journal_mode = OFF")
                db.run("PRAGMA synchronous = OFF")
                db.run("BEGIN")
                db.script(TABLES.format(**SQLITE_TYPES))
                result = work(db, None)
                db.script(INDEXES)
                db.run("COMMIT")
            finally:
                connection.close()
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
            sync_directory(self.path.parent)
        finally:
            temp.unlink(missing_ok=True)
        return result
