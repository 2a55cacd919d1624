"""The index's tables and how a row is written into them (SQL kept to what every
relational database speaks, so another backend can run the same statements).

``attestations``   one row per stage attestation file: run, stage, kind, file, payload
                   digest, signer key id or Sigstore identity (as claimed), policy digest,
                   signed time, command, parameters and metrics (JSON), parse error
``artifacts``      its materials and products: side, name, role
``digests``        each artifact's digest set, one (algorithm, value) per row
``summaries``      one row per stored verification summary: payload digest, run, result,
                   policy digest, time, signer, parse error
``summary_inputs`` the input attestations a summary names (stage, uri, sha256)
``runs``           every run directory of the store
``meta``           the schema version and the store fingerprint the index was built for
"""

from __future__ import annotations

import sqlite3

from mlspec_attest.store.index_rows import Artifact, AttestationRow, SummaryRow, as_json

SCHEMA_VERSION = "mlspec-attest-index/v1"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (run_id TEXT PRIMARY KEY);
CREATE TABLE attestations (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    file TEXT NOT NULL UNIQUE,
    stage TEXT,
    kind TEXT,
    payload_digest TEXT,
    keyid TEXT,
    identity TEXT,
    issuer TEXT,
    signed_time TEXT,
    policy_digest TEXT,
    claimed_run TEXT,
    started_on TEXT,
    finished_on TEXT,
    command TEXT NOT NULL DEFAULT '[]',
    parameters TEXT NOT NULL DEFAULT '{}',
    metrics TEXT NOT NULL DEFAULT '{}',
    error TEXT
);
CREATE TABLE summaries (
    id INTEGER PRIMARY KEY,
    file TEXT NOT NULL UNIQUE,
    payload_digest TEXT,
    run_id TEXT,
    result TEXT,
    policy_digest TEXT,
    time_verified TEXT,
    keyid TEXT,
    identity TEXT,
    issuer TEXT,
    error TEXT
);
CREATE TABLE artifacts (
    id INTEGER PRIMARY KEY,
    attestation_id INTEGER REFERENCES attestations(id),
    summary_id INTEGER REFERENCES summaries(id),
    side TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT
);
CREATE TABLE digests (
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id),
    algorithm TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE TABLE summary_inputs (
    summary_id INTEGER NOT NULL REFERENCES summaries(id),
    stage TEXT NOT NULL,
    uri TEXT NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE INDEX attestations_run ON attestations(run_id, stage);
CREATE INDEX attestations_keyid ON attestations(keyid);
CREATE INDEX attestations_identity ON attestations(identity);
CREATE INDEX artifacts_attestation ON artifacts(attestation_id);
CREATE INDEX artifacts_summary ON artifacts(summary_id);
CREATE INDEX digests_value ON digests(algorithm, value);
CREATE INDEX digests_artifact ON digests(artifact_id);
CREATE INDEX summaries_run ON summaries(run_id);
"""


def insert_attestation(connection: sqlite3.Connection, row: AttestationRow) -> None:
    connection.execute("INSERT OR IGNORE INTO runs(run_id) VALUES (?)", (row.run_id,))
    cursor = connection.execute(
        "INSERT INTO attestations(run_id, file, stage, kind, payload_digest, keyid, identity,"
        " issuer, signed_time, policy_digest, claimed_run, started_on, finished_on, command,"
        " parameters, metrics, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            row.run_id,
            row.file,
            row.stage,
            row.kind,
            row.payload_digest,
            row.signer.keyid,
            row.signer.identity,
            row.signer.issuer,
            row.signer.signed_time,
            row.policy_digest,
            row.claimed_run,
            row.started_on,
            row.finished_on,
            as_json(list(row.command)),
            as_json(row.parameters),
            as_json(row.metrics),
            row.error,
        ),
    )
    for artifact in row.artifacts:
        _insert_artifact(connection, artifact, attestation_id=cursor.lastrowid)


def insert_summary(connection: sqlite3.Connection, row: SummaryRow) -> None:
    cursor = connection.execute(
        "INSERT INTO summaries(file, payload_digest, run_id, result, policy_digest,"
        " time_verified, keyid, identity, issuer, error) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            row.file,
            row.payload_digest,
            row.run_id,
            row.result,
            row.policy_digest,
            row.time_verified,
            row.signer.keyid,
            row.signer.identity,
            row.signer.issuer,
            row.error,
        ),
    )
    for artifact in row.subjects:
        _insert_artifact(connection, artifact, summary_id=cursor.lastrowid)
    connection.executemany(
        "INSERT INTO summary_inputs(summary_id, stage, uri, sha256) VALUES (?,?,?,?)",
        [(cursor.lastrowid, *entry) for entry in row.inputs],
    )


def _insert_artifact(
    connection: sqlite3.Connection,
    artifact: Artifact,
    *,
    attestation_id: int | None = None,
    summary_id: int | None = None,
) -> None:
    cursor = connection.execute(
        "INSERT INTO artifacts(attestation_id, summary_id, side, name, role) VALUES (?,?,?,?,?)",
        (attestation_id, summary_id, artifact.side, artifact.name, artifact.role),
    )
    connection.executemany(
        "INSERT INTO digests(artifact_id, algorithm, value) VALUES (?,?,?)",
        [(cursor.lastrowid, algorithm, value) for algorithm, value in artifact.digests.items()],
    )
