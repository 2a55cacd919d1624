"""The attestation index: a SQLite cache over the store's bundles, for questions.

``<store>/index.sqlite3`` holds, per bundle of the store, what the bundle *claims*:
stage, kind, signer key id or Sigstore identity, payload digest, policy digest,
parameters, metrics, materials and products with their digests, and each stored
verification summary's result, subjects and input attestations.

**The index is a cache, never evidence.** No signature is checked while indexing, and
nothing in :mod:`mlspec_attest.verify` reads it: a verification decision is made from
the bundles alone. Anyone who can write the store can edit the index; a query is only
as good as the index it reads, and :func:`build_index` (``store reindex``) rebuilds it
from the bundles, which stay the source of truth.

Freshness: the index records a fingerprint of the store (every bundle's relative path,
size and modification time). :func:`open_index` compares it with the store's and
rebuilds the whole index when they differ or the index is missing, so a query never
answers from an index older than the bundles (docs/query.md says why a rebuild rather
than an error). A rebuild writes a new file and renames it over the old one: a reader
sees the old index or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlspec_attest.errors import BadInputError, MlspecError, StoreError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.fsutil import sync_directory
from mlspec_attest.store.index_rows import (
    AttestationRow,
    IdentityReader,
    SummaryRow,
    attestation_row,
    no_identity,
    read_bundle,
    summary_row,
)
from mlspec_attest.store.index_schema import (
    SCHEMA,
    SCHEMA_VERSION,
    insert_attestation,
    insert_summary,
)
from mlspec_attest.store.ledger import BUNDLE_SUFFIX, AttestationStore

INDEX_NAME = "index.sqlite3"


@dataclass(frozen=True)
class IndexBuild:
    """What one (re)build indexed."""

    path: Path
    attestations: int
    summaries: int
    malformed: int
    rebuilt: bool = True


def index_path(store: AttestationStore) -> Path:
    return store.root / INDEX_NAME


def _bundle_files(store: AttestationStore) -> Iterator[tuple[str, Path]]:
    """Every file the index covers, as (path relative to the store, path), sorted."""
    for run_id in store.runs():
        for path in sorted(store.run_dir(run_id).iterdir()):
            if not path.name.startswith("."):
                yield f"runs/{run_id}/{path.name}", path
    summaries = store.root / "summaries"
    if summaries.is_dir():
        for path in sorted(summaries.iterdir()):
            if not path.name.startswith(".") and path.name.endswith(BUNDLE_SUFFIX):
                yield f"summaries/{path.name}", path


def store_fingerprint(store: AttestationStore) -> str:
    """sha256 over every indexed file's relative path, size and mtime (cheap: stat only)."""
    h = hashlib.sha256(SCHEMA_VERSION.encode())
    for relative, path in _bundle_files(store):
        try:
            st = path.lstat()
            line = f"\n{relative}\t{st.st_size}\t{st.st_mtime_ns}"
        except OSError:
            line = f"\n{relative}\t-"
        h.update(line.encode())
    return h.hexdigest()


def build_index(
    store: AttestationStore, *, identity_of: IdentityReader = no_identity
) -> IndexBuild:
    """Rebuild the whole index from the bundles, atomically (new file, then rename)."""
    if not (store.root / "runs").is_dir() and not (store.root / "summaries").is_dir():
        raise BadInputError(
            f"{store.root} is not an attestation store (no runs/ or summaries/ in it)",
            remedy="point at the store the pipeline signs into",
        )
    target = index_path(store)
    temp = target.with_name(f".{INDEX_NAME}.{secrets.token_hex(6)}.tmp")
    try:
        counts = _write_index(store, temp, identity_of)
        os.replace(temp, target)
        sync_directory(target.parent)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot write the index {target}: {exc}") from exc
    finally:
        temp.unlink(missing_ok=True)
    return IndexBuild(target, *counts)


def _write_index(
    store: AttestationStore, temp: Path, identity_of: IdentityReader
) -> tuple[int, int, int]:
    fingerprint = store_fingerprint(store)
    connection = sqlite3.connect(temp)
    try:
        connection.executescript(SCHEMA)
        counts = [0, 0, 0]
        with connection:
            for row in _rows(store, identity_of):
                if isinstance(row, AttestationRow):
                    insert_attestation(connection, row)
                    counts[0] += 1
                else:
                    insert_summary(connection, row)
                    counts[1] += 1
                counts[2] += row.error is not None
            connection.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [("schema", SCHEMA_VERSION), ("fingerprint", fingerprint)],
            )
    finally:
        connection.close()
    with open(temp, "rb") as handle:
        os.fsync(handle.fileno())
    return counts[0], counts[1], counts[2]


def _rows(
    store: AttestationStore, identity_of: IdentityReader
) -> Iterator[AttestationRow | SummaryRow]:
    for run_id in store.runs():
        for stored in store.attestations(run_id):
            relative = f"runs/{run_id}/{stored.path.name}"
            yield attestation_row(run_id, relative, stored.bundle, stored.error, identity_of)
    for relative, path in _bundle_files(store):
        if relative.startswith("summaries/"):
            yield summary_row(relative, *_read(path, relative), identity_of)


def _read(path: Path, what: str) -> tuple[Bundle | None, str | None]:
    try:
        return read_bundle(path, what), None
    except MlspecError as exc:
        return None, exc.message


def index_fingerprint(path: Path) -> str | None:
    """The fingerprint an index file was built for, or None if it cannot be read."""
    if not path.is_file():
        return None
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = dict(connection.execute("SELECT key, value FROM meta").fetchall())
        finally:
            connection.close()
    except sqlite3.Error:
        return None
    if rows.get("schema") != SCHEMA_VERSION:
        return None
    value = rows.get("fingerprint")
    return value if isinstance(value, str) else None


def ensure_index(
    store: AttestationStore, *, identity_of: IdentityReader = no_identity
) -> IndexBuild | None:
    """Rebuild the index if it is missing, unreadable or older than the bundles;
    the build when one happened, else None."""
    if index_fingerprint(index_path(store)) == store_fingerprint(store):
        return None
    return build_index(store, identity_of=identity_of)
