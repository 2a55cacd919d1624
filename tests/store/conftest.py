"""The index tests' backend: every test taking ``backend`` runs on SQLite and on a real
PostgreSQL server (tests/postgres_server.py)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import pytest

from mlspec_attest.store.index import (
    IndexBuild,
    build_index,
    ensure_index,
    index_location,
    index_path,
    store_id,
)
from mlspec_attest.store.index_pg import schema_name
from mlspec_attest.store.index_query import AttestationIndex
from mlspec_attest.store.index_schema import COLUMNS
from mlspec_attest.store.ledger import AttestationStore

#: What an attacker with write access to the index does to it.
TAMPER = (
    "UPDATE attestations SET keyid = 'evil', stage = 'forged'",
    "DELETE FROM digests",
    "INSERT INTO runs(run_id) VALUES ('run-fake')",
)


@dataclass(frozen=True)
class Backend:
    """One index backend: None is SQLite in the store, else a PostgreSQL URL."""

    url: str | None

    @property
    def name(self) -> str:
        return "sqlite" if self.url is None else "postgresql"

    def index(self, store: AttestationStore) -> AttestationIndex:
        """The store's index, brought up to date first."""
        ensure_index(store, self.url)
        return AttestationIndex(index_location(store, self.url).reader())

    def build(self, store: AttestationStore) -> IndexBuild:
        return build_index(store, self.url)

    def sql(self, store: AttestationStore, *statements: str) -> list[list[tuple[Any, ...]]]:
        """Run ``statements`` on the index directly (as anyone with access to it could)."""
        if self.url is None:
            connection = sqlite3.connect(index_path(store))
            try:
                with connection:
                    return [connection.execute(s).fetchall() for s in statements]
            finally:
                connection.close()
        import psycopg

        with psycopg.connect(self.url) as pg:
            pg.execute(f'SET search_path TO "{schema_name(store_id(store))}"')
            out = []
            for statement in statements:
                cursor = pg.execute(statement)  # type: ignore[call-overload]
                out.append(cursor.fetchall() if cursor.description else [])
            return out

    def tamper(self, store: AttestationStore) -> None:
        self.sql(store, *TAMPER)

    def dump(self, store: AttestationStore) -> dict[str, list[tuple[Any, ...]]]:
        """Every table's rows without the ids the writer allocated (two indexes of the same
        bundles built differently compare equal), and the meta rows."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        queries = {
            "meta": "SELECT key, value FROM meta",
            "runs": "SELECT run_id FROM runs",
            "files": "SELECT file, dir, size, mtime_ns FROM files",
            "dirs": "SELECT dir, fingerprint FROM dirs",
            "attestations": "SELECT "
            + ", ".join(COLUMNS["attestations"][1:])
            + " FROM attestations",
            "summaries": "SELECT " + ", ".join(COLUMNS["summaries"][1:]) + " FROM summaries",
            "artifacts": "SELECT coalesce(a.file, s.file), t.side, t.name, t.role, d.algorithm,"
            " d.value FROM artifacts t LEFT JOIN attestations a ON a.id = t.attestation_id"
            " LEFT JOIN summaries s ON s.id = t.summary_id"
            " LEFT JOIN digests d ON d.artifact_id = t.id",
            "summary_inputs": "SELECT s.file, i.stage, i.uri, i.sha256 FROM summary_inputs i"
            " JOIN summaries s ON s.id = i.summary_id",
            "orphan_digests": "SELECT d.algorithm, d.value FROM digests d"
            " WHERE d.artifact_id NOT IN (SELECT id FROM artifacts)",
        }
        results = self.sql(store, *queries.values())
        for name, rows in zip(queries, results, strict=True):
            out[name] = sorted(rows, key=repr)
        return out


@pytest.fixture
def backend(index_url: str | None) -> Backend:
    return Backend(index_url)
