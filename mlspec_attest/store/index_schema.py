"""The index's tables, and the rows one bundle adds to them, in SQL every backend speaks.

``meta``           the schema version, the store the index was built from (its absolute
                   path) and the store fingerprint it was built for
``files``          one row per indexed file of the store: relative path, its directory,
                   size and modification time, the key of incremental indexing
``dirs``           one row per directory with indexed files: the sha256 over its files'
                   paths, sizes and times (an update reads ``files`` of changed ones only)
``runs``           every run directory with a file in it
``attestations``   one row per stage attestation file: run, stage, kind, file, payload
                   digest, signer key id or Sigstore identity (as claimed), policy digest,
                   signed time, command, parameters and metrics (JSON), parse error
``artifacts``      its materials and products (or a summary's subjects): side, name, role
``digests``        each artifact's digest set, one (algorithm, value) per row
``summaries``      one row per stored verification summary: payload digest, run, result,
                   policy digest, time, signer, parse error
``summary_inputs`` the input attestations a summary names (stage, uri, sha256)

The DDL is written once with two type words a backend fills in (``{text}``, ``{int}``):
SQLite's ``TEXT`` and ``INTEGER``, PostgreSQL's ``TEXT COLLATE "C"`` (so text sorts by
code point, as SQLite sorts it) and ``BIGINT``. Ids are given by the writer
(:class:`Batch`), not by the database, so rows go in as bulk loads on both backends.
Indexes are created after a full build's bulk load.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from msgspec import Struct, field

from mlspec_attest.store.index_rows import Artifact, AttestationRow, SummaryRow, as_json

SCHEMA_VERSION = "mlspec-attest-index/v2"

TABLES = """
CREATE TABLE meta (key {text} PRIMARY KEY, value {text} NOT NULL);
CREATE TABLE files (
    file {text} PRIMARY KEY,
    dir {text} NOT NULL,
    size {int} NOT NULL,
    mtime_ns {int} NOT NULL
);
CREATE TABLE dirs (dir {text} PRIMARY KEY, fingerprint {text} NOT NULL);
CREATE TABLE runs (run_id {text} PRIMARY KEY);
CREATE TABLE attestations (
    id {int} PRIMARY KEY,
    run_id {text} NOT NULL,
    file {text} NOT NULL UNIQUE,
    stage {text},
    kind {text},
    payload_digest {text},
    keyid {text},
    identity {text},
    issuer {text},
    signed_time {text},
    policy_digest {text},
    claimed_run {text},
    started_on {text},
    finished_on {text},
    command {text} NOT NULL,
    parameters {text} NOT NULL,
    metrics {text} NOT NULL,
    error {text}
);
CREATE TABLE summaries (
    id {int} PRIMARY KEY,
    file {text} NOT NULL UNIQUE,
    payload_digest {text},
    run_id {text},
    result {text},
    policy_digest {text},
    time_verified {text},
    keyid {text},
    identity {text},
    issuer {text},
    error {text}
);
CREATE TABLE artifacts (
    id {int} PRIMARY KEY,
    attestation_id {int},
    summary_id {int},
    side {text} NOT NULL,
    name {text} NOT NULL,
    role {text}
);
CREATE TABLE digests (artifact_id {int} NOT NULL, algorithm {text} NOT NULL, value {text} NOT NULL);
CREATE TABLE summary_inputs (
    summary_id {int} NOT NULL,
    stage {text} NOT NULL,
    uri {text} NOT NULL,
    sha256 {text} NOT NULL
)
"""

INDEXES = """
CREATE INDEX files_dir ON files(dir);
CREATE INDEX attestations_run ON attestations(run_id, stage);
CREATE INDEX attestations_keyid ON attestations(keyid);
CREATE INDEX attestations_identity ON attestations(identity);
CREATE INDEX artifacts_attestation ON artifacts(attestation_id);
CREATE INDEX artifacts_summary ON artifacts(summary_id);
CREATE INDEX digests_value ON digests(algorithm, value);
CREATE INDEX digests_artifact ON digests(artifact_id);
CREATE INDEX summaries_run ON summaries(run_id);
CREATE INDEX summary_inputs_summary ON summary_inputs(summary_id)
"""

#: Every table's columns in insertion order; tables are loaded in this order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "files": ("file", "dir", "size", "mtime_ns"),
    "attestations": (
        "id", "run_id", "file", "stage", "kind", "payload_digest", "keyid", "identity",
        "issuer", "signed_time", "policy_digest", "claimed_run", "started_on", "finished_on",
        "command", "parameters", "metrics", "error",
    ),
    "summaries": (
        "id", "file", "payload_digest", "run_id", "result", "policy_digest", "time_verified",
        "keyid", "identity", "issuer", "error",
    ),
    "artifacts": ("id", "attestation_id", "summary_id", "side", "name", "role"),
    "digests": ("artifact_id", "algorithm", "value"),
    "summary_inputs": ("summary_id", "stage", "uri", "sha256"),
}  # fmt: skip

#: What removing one file of the store deletes, children first (``?`` is its path).
REMOVE_FILE = (
    "DELETE FROM digests WHERE artifact_id IN (SELECT t.id FROM artifacts t"
    " JOIN attestations a ON a.id = t.attestation_id WHERE a.file = ?)",
    "DELETE FROM artifacts WHERE attestation_id IN (SELECT id FROM attestations WHERE file = ?)",
    "DELETE FROM attestations WHERE file = ?",
    "DELETE FROM digests WHERE artifact_id IN (SELECT t.id FROM artifacts t"
    " JOIN summaries s ON s.id = t.summary_id WHERE s.file = ?)",
    "DELETE FROM artifacts WHERE summary_id IN (SELECT id FROM summaries WHERE file = ?)",
    "DELETE FROM summary_inputs WHERE summary_id IN (SELECT id FROM summaries WHERE file = ?)",
    "DELETE FROM summaries WHERE file = ?",
    "DELETE FROM files WHERE file = ?",
)
REMOVE_DIR = "DELETE FROM dirs WHERE dir = ?"
REMOVE_EMPTY_RUNS = "DELETE FROM runs WHERE run_id NOT IN (SELECT run_id FROM attestations)"
ADD_RUN = "INSERT INTO runs(run_id) VALUES (?) ON CONFLICT (run_id) DO NOTHING"
SET_META = "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
COUNTS = (
    "SELECT (SELECT COUNT(*) FROM attestations), (SELECT COUNT(*) FROM summaries),"
    " (SELECT COUNT(error) FROM attestations) + (SELECT COUNT(error) FROM summaries)"
)


def statements(script: str) -> list[str]:
    """The statements of a DDL script (none of ours has a ``;`` inside one)."""
    return [s.strip() for s in script.split(";") if s.strip()]


class IndexState(Struct, frozen=True):
    """What an index says about itself (its ``meta`` table)."""

    schema: str | None
    store: str | None
    fingerprint: str | None

    @classmethod
    def of(cls, meta: Iterable[tuple[Any, Any]]) -> IndexState:
        values = {str(k): v if isinstance(v, str) else None for k, v in meta}
        return cls(values.get("schema"), values.get("store"), values.get("fingerprint"))

    def usable_for(self, store_id: str) -> bool:
        """Built by this schema version from this store: it can be updated in place."""
        return self.schema == SCHEMA_VERSION and self.store == store_id


class Writer(Protocol):
    """What :class:`Batch` needs of an open index (``store.index_backend.IndexDb``)."""

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...

    def insert(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Bulk-load ``rows`` into ``table``."""


class Batch(Struct):
    """Rows of several bundles, per table, with ids allocated from ``next_id`` onwards."""

    next_id: dict[str, int]  # "attestations" | "summaries" | "artifacts" -> next free id
    runs: set[str] = field(default_factory=set)
    rows: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {table: [] for table in COLUMNS}
    )
    bundles: int = 0

    def _id(self, table: str) -> int:
        ident = self.next_id[table]
        self.next_id[table] = ident + 1
        return ident

    def file(self, relative: str, size: int, mtime_ns: int) -> None:
        self.rows["files"].append((relative, relative.rsplit("/", 1)[0], size, mtime_ns))
        self.bundles += 1

    def attestation(self, row: AttestationRow) -> None:
        ident = self._id("attestations")
        self.runs.add(row.run_id)
        s = row.signer
        self.rows["attestations"].append(
            (
                ident, row.run_id, row.file, row.stage, row.kind, row.payload_digest, s.keyid,
                s.identity, s.issuer, s.signed_time, row.policy_digest, row.claimed_run,
                row.started_on, row.finished_on, as_json(list(row.command)),
                as_json(row.parameters), as_json(row.metrics), row.error,
            )
        )  # fmt: skip
        for artifact in row.artifacts:
            self._artifact(artifact, ident, None)

    def summary(self, row: SummaryRow) -> None:
        ident = self._id("summaries")
        s = row.signer
        self.rows["summaries"].append(
            (
                ident, row.file, row.payload_digest, row.run_id, row.result, row.policy_digest,
                row.time_verified, s.keyid, s.identity, s.issuer, row.error,
            )
        )  # fmt: skip
        for artifact in row.subjects:
            self._artifact(artifact, None, ident)
        self.rows["summary_inputs"].extend((ident, *entry) for entry in row.inputs)

    def _artifact(self, artifact: Artifact, attestation: int | None, summary: int | None) -> None:
        ident = self._id("artifacts")
        self.rows["artifacts"].append(
            (ident, attestation, summary, artifact.side, artifact.name, artifact.role)
        )
        self.rows["digests"].extend((ident, a, v) for a, v in artifact.digests.items())

    def flush(self, db: Writer) -> None:
        """Write everything batched so far (runs first, then each table) and start empty."""
        if self.runs:
            db.many(ADD_RUN, [(run,) for run in sorted(self.runs)])
        for table, columns in COLUMNS.items():
            if self.rows[table]:
                db.insert(table, columns, self.rows[table])
                self.rows[table] = []
        self.runs.clear()
        self.bundles = 0
