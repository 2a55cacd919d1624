"""The attestation index: a cache over the store's bundles, for questions.

The index holds, per bundle of the store, what the bundle *claims*: stage, kind, signer
key id or Sigstore identity, payload digest, policy digest, parameters, metrics,
materials and products with their digests, and each stored verification summary's
result, subjects and input attestations. It lives in ``<store>/index.sqlite3`` (SQLite,
the default) or in a PostgreSQL database (``postgresql://…``; one schema per store):
:func:`index_location`.

**The index is a cache, never evidence.** No signature is checked while indexing, and
nothing in :mod:`mlspec_attest.verify` reads it: a verification decision is made from
the bundles alone. Anyone who can write the index can edit it; a query is only as good
as the index it reads, and :func:`build_index` (``store reindex``, in full) rebuilds it
from the bundles, which stay the source of truth.

Freshness: the index records the store it was built from (its absolute path) and a
fingerprint of the store (every file's relative path, size and modification time: a
``stat`` each, no reading). :func:`ensure_index` compares it with the store's before a
query answers; when they differ the index is brought up to date **incrementally**:
bundles are create-once files, so only files not yet indexed are read (and a file whose
size or time changed is read again), and the rows of files that disappeared are
removed, all in one transaction. An index that is missing, unreadable, of another
schema version or built from another store is rebuilt in full, into fresh tables
swapped in at commit. Either way a reader sees the old index or the new one, never half
of one, and never an answer from an index older than the bundles it has seen.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from msgspec import Struct

from mlspec_attest.errors import BadInputError
from mlspec_attest.store.index_backend import IndexDb, IndexLocation, SqliteIndex
from mlspec_attest.store.index_pg import PostgresIndex
from mlspec_attest.store.index_query import AttestationIndex
from mlspec_attest.store.index_rows import (
    AttestationRow,
    IdentityReader,
    SummaryRow,
    attestation_row,
    no_identity,
    read_stored,
    summary_row,
)
from mlspec_attest.store.index_schema import (
    COUNTS,
    REMOVE_DIR,
    REMOVE_EMPTY_RUNS,
    REMOVE_FILE,
    SCHEMA_VERSION,
    SET_META,
    Batch,
    IndexState,
)
from mlspec_attest.store.ledger import BUNDLE_SUFFIX, AttestationStore

INDEX_NAME = "index.sqlite3"
#: Bundles read between two bulk loads.
BATCH_BUNDLES = 2000
#: Up to this many changed directories, their ``files`` rows are read one directory at a
#: time; above it, the whole table at once.
DIR_QUERIES = 200


class IndexBuild(Struct, frozen=True):
    """What one update of the index did, and what the index holds after it."""

    where: str
    attestations: int
    summaries: int
    malformed: int
    full: bool = True
    added: int = 0  # files read (new, or changed since they were indexed)
    removed: int = 0  # files whose rows were removed (gone, or changed)

    def describe(self) -> str:
        how = "rebuilt" if self.full else f"updated (+{self.added} -{self.removed} files)"
        return (
            f"index {self.where} {how}: {self.attestations} attestations, "
            f"{self.summaries} summaries, {self.malformed} malformed"
        )


class StoreScan(Struct, frozen=True):
    """Every file the index covers (relative path -> (size, mtime_ns)), each directory's
    fingerprint (over its files) and the store's (over the directories')."""

    files: dict[str, tuple[int, int]]
    dirs: dict[str, str]
    fingerprint: str


def index_path(store: AttestationStore) -> Path:
    return store.root / INDEX_NAME


def store_id(store: AttestationStore) -> str:
    """How an index names the store it was built from: its absolute path."""
    return str(store.root.resolve())


def index_location(store: AttestationStore, url: str | None = None) -> IndexLocation:
    """Where ``store``'s index lives: ``url`` (``postgresql://…``), else ``STORE/index.sqlite3``."""
    if url:
        return PostgresIndex(url, store_id(store))
    return SqliteIndex(index_path(store), store_id(store))


def _entries(directory: str, keep: str = "") -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of ``directory``'s visible entries ending in ``keep``, by name.
    A name that is no UTF-8 is left out: no bundle the store writes has one, the index
    holds text, and ``verify`` reads the run's folder itself (and refuses such a file)."""
    out = []
    try:
        with os.scandir(directory) as scan:
            for entry in scan:
                name = entry.name
                if name.startswith(".") or not name.endswith(keep) or not _utf8(name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed since the listing: not in the store any more
                out.append((entry.name, st.st_size, st.st_mtime_ns))
    except FileNotFoundError:
        pass
    out.sort()
    return out


def _utf8(name: str) -> bool:
    return name.isascii() or not any("\udc80" <= c <= "\udcff" for c in name)


def scan_store(store: AttestationStore) -> StoreScan:
    """Every indexed file with its size and mtime (a ``stat`` each, nothing read), and the
    fingerprints over them."""
    files: dict[str, tuple[int, int]] = {}
    dirs: dict[str, str] = {}
    root = str(store.root)
    places = [(f"runs/{run}", "") for run in store.runs()]
    places.append(("summaries", BUNDLE_SUFFIX))
    for prefix, keep in places:
        lines = []
        for name, size, mtime_ns in _entries(f"{root}/{prefix}", keep):
            files[f"{prefix}/{name}"] = (size, mtime_ns)
            lines.append(f"{name}\t{size}\t{mtime_ns}\n")
        if lines:
            dirs[prefix] = hashlib.sha256("".join(lines).encode()).hexdigest()
    h = hashlib.sha256(SCHEMA_VERSION.encode())
    h.update("".join(f"\n{prefix}\t{digest}" for prefix, digest in dirs.items()).encode())
    return StoreScan(files, dirs, h.hexdigest())


def store_fingerprint(store: AttestationStore) -> str:
    """sha256 over every indexed file's relative path, size and mtime (cheap: stat only)."""
    return scan_store(store).fingerprint


def _check_store(store: AttestationStore) -> None:
    if not (store.root / "runs").is_dir() and not (store.root / "summaries").is_dir():
        raise BadInputError(
            f"{store.root} is not an attestation store (no runs/ or summaries/ in it)",
            remedy="point at the store the pipeline signs into",
        )


def update_index(
    store: AttestationStore,
    url: str | None = None,
    *,
    full: bool = False,
    identity_of: IdentityReader = no_identity,
) -> IndexBuild:
    """Bring the index up to date with the bundles: incrementally, or rebuilt in ``full``."""
    _check_store(store)
    return _write(store, index_location(store, url), scan_store(store), full, identity_of)


def build_index(
    store: AttestationStore, url: str | None = None, *, identity_of: IdentityReader = no_identity
) -> IndexBuild:
    """Rebuild the whole index from the bundles (fresh tables, swapped in atomically)."""
    return update_index(store, url, full=True, identity_of=identity_of)


def ensure_index(
    store: AttestationStore, url: str | None = None, *, identity_of: IdentityReader = no_identity
) -> IndexBuild | None:
    """Update the index if it is missing, unreadable, of another store or older than the
    bundles; the update when one happened, else None."""
    _check_store(store)
    location = index_location(store, url)
    state = location.state()
    scan = scan_store(store)
    fresh = state is not None and state.usable_for(store_id(store))
    if fresh and state is not None and state.fingerprint == scan.fingerprint:
        return None
    return _write(store, location, scan, False, identity_of)


def _write(
    store: AttestationStore,
    location: IndexLocation,
    scan: StoreScan,
    full: bool,
    identity_of: IdentityReader,
) -> IndexBuild:
    def work(db: IndexDb, state: IndexState | None) -> IndexBuild:
        return _apply(db, state, store, scan, identity_of)

    return location.write(work, full=full)


def open_index(
    store: AttestationStore, url: str | None = None, *, identity_of: IdentityReader = no_identity
) -> tuple[AttestationIndex, IndexBuild | None]:
    """The store's index for questions, brought up to date first (and that update, if any)."""
    build = ensure_index(store, url, identity_of=identity_of)
    return AttestationIndex(index_location(store, url).reader()), build


def _apply(
    db: IndexDb,
    state: IndexState | None,
    store: AttestationStore,
    scan: StoreScan,
    identity_of: IdentityReader,
) -> IndexBuild:
    """In the write transaction: remove the rows of files gone or changed, add the files
    not indexed yet, record the fingerprints. ``state`` None: the tables are empty."""
    gone, new, changed = _changes(db, state, scan)
    for statement in REMOVE_FILE:
        if gone:
            db.many(statement, [(f,) for f in gone])
    if gone:
        db.run(REMOVE_EMPTY_RUNS)
    _add(db, store, scan, new, identity_of)
    if state is not None and changed:
        db.many(REMOVE_DIR, [(d,) for d in changed])
    db.insert(
        "dirs", ("dir", "fingerprint"), [(d, scan.dirs[d]) for d in changed if d in scan.dirs]
    )
    db.many(
        SET_META,
        [("schema", SCHEMA_VERSION), ("store", store_id(store)), ("fingerprint", scan.fingerprint)],
    )
    [(attestations, summaries, malformed)] = db.all(COUNTS)
    return IndexBuild(
        db.where, attestations, summaries, malformed, state is None, len(new), len(gone)
    )


def _changes(
    db: IndexDb, state: IndexState | None, scan: StoreScan
) -> tuple[list[str], list[str], list[str]]:
    """(files whose rows go: gone or changed, files to read: new or changed, directories
    whose fingerprint changed). Only the ``files`` rows of changed directories are read."""
    if state is None:
        return [], sorted(scan.files), sorted(scan.dirs)
    if state.fingerprint == scan.fingerprint:
        return [], [], []  # brought up to date meanwhile (another writer)
    indexed_dirs = dict(db.all("SELECT dir, fingerprint FROM dirs"))
    changed = sorted(
        d for d in scan.dirs.keys() | indexed_dirs.keys() if scan.dirs.get(d) != indexed_dirs.get(d)
    )
    if len(changed) > DIR_QUERIES:
        rows = db.all("SELECT file, dir, size, mtime_ns FROM files")
    else:
        query = "SELECT file, dir, size, mtime_ns FROM files WHERE dir = ?"
        rows = [row for d in changed for row in db.all(query, (d,))]
    within = set(changed)
    indexed = {f: (size, mtime) for f, d, size, mtime in rows if d in within}
    scanned = {f: st for f, st in scan.files.items() if f.rsplit("/", 1)[0] in within}
    gone = sorted(f for f, st in indexed.items() if scanned.get(f) != st)
    new = sorted(f for f, st in scanned.items() if indexed.get(f) != st)
    return gone, new, changed


def _add(
    db: IndexDb,
    store: AttestationStore,
    scan: StoreScan,
    files: list[str],
    identity_of: IdentityReader,
) -> None:
    """Read ``files`` (relative paths) and load their rows, :data:`BATCH_BUNDLES` at a time."""
    if not files:
        return
    next_id = {
        table: int(db.all(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")[0][0])  # noqa: S608 (constant)
        for table in ("attestations", "summaries", "artifacts")
    }
    batch = Batch(next_id)
    for relative in files:
        row = _row(store.root, relative, identity_of)
        batch.file(relative, *scan.files[relative])
        if isinstance(row, AttestationRow):
            batch.attestation(row)
        else:
            batch.summary(row)
        if batch.bundles >= BATCH_BUNDLES:
            batch.flush(db)
    batch.flush(db)


def _row(root: Path, relative: str, identity_of: IdentityReader) -> AttestationRow | SummaryRow:
    """The row of one file of the store (read, parsed, never trusted)."""
    path = root / relative
    if relative.startswith("runs/"):
        bundle, error = read_stored(path, path.name)
        run_id = relative.split("/", 2)[1]
        return attestation_row(run_id, relative, bundle, error, identity_of)
    return summary_row(relative, *read_stored(path, relative), identity_of)
