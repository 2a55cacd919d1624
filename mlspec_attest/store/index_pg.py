"""The index in PostgreSQL (``postgresql://…``, psycopg 3, the ``postgres`` extra).

One database can hold the indexes of many stores: each store's index is a schema of its
own, ``mlspec_index_<16 hex digits of the sha256 of the store's absolute path>``, with the
same tables as the SQLite index (``store.index_schema``; text columns ``COLLATE "C"`` so
they sort as SQLite sorts them). Its ``meta`` table records the store's path and the
fingerprint it was built for, so two stores never share rows and a stale index is
refreshed before it answers.

Writes take a transaction-scoped advisory lock of the schema (one writer per store at a
time). An incremental update runs in place in that one transaction; a full rebuild fills
``<schema>_new`` (bulk ``COPY``, then the indexes and ``ANALYZE``) and, still in the same
transaction, drops the old schema and renames the new one: readers see the old index
until the commit, then the new one. Readers run each query in a ``REPEATABLE READ, READ
ONLY`` transaction (:meth:`IndexDb.snapshot`).

Connection problems are :class:`StoreError` (exit 4), a URL that cannot be a PostgreSQL
connection is :class:`BadInputError` (exit 3); the password is never shown (the URL is
shown without it, and driver messages are scrubbed of it).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from mlspec_attest.errors import BadInputError, StoreError, require
from mlspec_attest.store.index_backend import IndexDb, R, Work, one_line
from mlspec_attest.store.index_schema import INDEXES, TABLES, IndexState, statements

if TYPE_CHECKING:
    import psycopg

SCHEMES = ("postgresql", "postgres")
PG_TYPES = {"text": 'TEXT COLLATE "C"', "int": "BIGINT"}
CONNECT_TIMEOUT_S = 10
LOCK_TIMEOUT = "120s"
_PORTS = re.compile(r"[0-9]*(,[0-9]*)*")
_URL_REMEDY = "give a URL of the form postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
_CONNECT_REMEDY = (
    "check that the server runs and accepts connections, and the URL's host, port, "
    "database, user and password"
)


def schema_name(store_id: str) -> str:
    """The schema that holds the index of the store at ``store_id`` (its absolute path)."""
    return "mlspec_index_" + hashlib.sha256(store_id.encode()).hexdigest()[:16]


class PostgresUrl:
    """A ``postgresql://`` URL, parsed by libpq's own rules; shown without its password."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise BadInputError(
                f"{parts.scheme or url!r} is not an index URL scheme (postgresql:// is)",
                remedy=_URL_REMEDY,
            )
        self.secrets = {s for s in (_password(url), unquote(_password(url))) if s}
        psycopg = _driver()
        try:
            params = psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise BadInputError(
                f"not a PostgreSQL URL: {self.scrub(one_line(exc))}", remedy=_URL_REMEDY
            ) from exc
        if not _PORTS.fullmatch(str(params.get("port", ""))):
            raise BadInputError(
                f"not a PostgreSQL URL: port {params['port']!r} is not a number",
                remedy=_URL_REMEDY,
            )
        self.secrets |= {str(params["password"])} if params.get("password") else set()
        params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        params.setdefault("application_name", "mlspec-attest")
        self.params: dict[str, Any] = params
        user = f"{params['user']}@" if params.get("user") else ""
        port = f":{params['port']}" if params.get("port") else ""
        self.shown = f"postgresql://{user}{params.get('host', '')}{port}/{params.get('dbname', '')}"

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def _password(url: str) -> str:
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def _driver() -> Any:
    return require("psycopg", "an index in PostgreSQL")


class PostgresDb(IndexDb):
    placeholder = "%s"
    begin_read = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"

    def __init__(self, connection: psycopg.Connection[Any], where: str, url: PostgresUrl) -> None:
        super().__init__(where)
        self.connection = connection
        self.url = url
        self.errors = (_driver().Error,)

    def scrub(self, text: str) -> str:
        return self.url.scrub(text)

    def close(self) -> None:
        with contextlib.suppress(*self.errors):
            self.connection.close()

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description is not None else []

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(sql, rows)

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with self.connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)


class PostgresIndex:
    """One store's index in a PostgreSQL database (its own schema)."""

    def __init__(self, url: str, store_id: str) -> None:
        self.url = PostgresUrl(url)
        self.store_id = store_id
        self.schema = schema_name(store_id)
        self.where = f"{self.url.shown} (schema {self.schema})"
        digest = hashlib.sha256(f"mlspec-attest index {self.schema}".encode()).digest()
        self.lock_key = int.from_bytes(digest[:8], "big", signed=True)

    def _connect(self, *, autocommit: bool) -> PostgresDb:
        psycopg = _driver()
        try:
            connection = psycopg.connect(autocommit=autocommit, **self.url.params)
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot connect to the index database {self.url.shown}: "
                + self.url.scrub(one_line(exc)),
                remedy=_CONNECT_REMEDY,
            ) from exc
        return PostgresDb(connection, self.where, self.url)

    def state(self) -> IndexState | None:
        db = self._connect(autocommit=True)
        try:
            return self._state(db)
        finally:
            db.close()

    def _state(self, db: PostgresDb) -> IndexState | None:
        [(table,)] = db.all("SELECT to_regclass(?)", (f'"{self.schema}".meta',))
        if table is None:
            return None
        meta = f'SELECT key, value FROM "{self.schema}".meta'  # noqa: S608 (a constant name)
        return IndexState.of(db.all(meta))

    def reader(self) -> IndexDb:
        db = self._connect(autocommit=True)
        db.run(f'SET search_path TO "{self.schema}"')
        return db

    def write(self, work: Work[R], *, full: bool) -> R:
        db = self._connect(autocommit=False)
        try:
            with db.guard(), db.connection.transaction():
                db.run("SELECT pg_advisory_xact_lock(?)", (self.lock_key,))
                db.run(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                state = None if full else self._state(db)  # full: whatever the index holds
                if state is not None and state.usable_for(self.store_id):
                    db.run(f'SET LOCAL search_path TO "{self.schema}"')
                    return work(db, state)
                return self._rebuild(db, work)
        finally:
            db.close()

    def _rebuild(self, db: PostgresDb, work: Work[R]) -> R:
        fresh = f"{self.schema}_new"
        db.run(f'DROP SCHEMA IF EXISTS "{fresh}" CASCADE')
        db.run(f'CREATE SCHEMA "{fresh}"')
        db.run(f'SET LOCAL search_path TO "{fresh}"')
        db.script(TABLES.format(**PG_TYPES))
        result = work(db, None)
        db.script(INDEXES)
        for statement in statements(TABLES):
            db.run("ANALYZE " + statement.split()[2])
        db.run(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        db.run(f'ALTER SCHEMA "{fresh}" RENAME TO "{self.schema}"')
        return result
