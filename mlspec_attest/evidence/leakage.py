"""The leakage proof of the split stage: row digest sets and their overlaps.

Signing side (:func:`prove_splits`): every split (train, validation, holdback,
...) is read row by row, each row canonicalized (``mlspec-rows/v2``, see
:mod:`mlspec_attest.digest.rows` and docs/leakage.md) and hashed over the columns all
splits share (minus excluded row ids and split-label columns). The sorted,
de-duplicated digests of a split form a :class:`RowDigestSet`, stored in the
attestation store by content address; the split stage's metadata records the
counts, the address of each set and the overlap count of every pair of splits.
Each split also gets *content sets* (its rows over every column, and without
its constant columns) that the hold-back content check compares with the rows
other stages read (:mod:`mlspec_attest.evidence.rowsets`).

Verifier side (:func:`check_leakage`): the stored sets are loaded by the
addresses the signed record names, the intersections recomputed and compared
with the attested counts and with the policy's tolerance. The verifier never
needs the split files themselves.

What it catches: the same row (after canonicalization) in two splits, or the
same file content in two directory splits. What it does not: near-duplicates
(rounded values, augmented images, paraphrases), leakage through features
derived from the target, and time leakage. See docs/leakage.md.
"""

from __future__ import annotations

import hashlib
import re
import sys
import zlib
from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from mlspec_attest.digest.rows import (
    CANONICALIZATION,
    RETIRED_CANONICALIZATIONS,
    Dataset,
    Profile,
    canonical_name,
    check_excluded,
    excluded_names,
    hash_rows,
    iter_row_digests,
    open_dataset,
)
from mlspec_attest.errors import BadInputError, MalformedDocumentError, MlspecError, UsageError
from mlspec_attest.formats.fsutil import artifact_name
from mlspec_attest.formats.schemas import schema_errors
from mlspec_attest.store.ledger import AttestationStore

ROWSET_MAGIC = b"MLSPEC-ROWSET/1\n"
LEAKAGE_SCHEMA = "https://mlspec-attest.dev/leakage/v2"
RETIRED_LEAKAGE_SCHEMAS = ("https://mlspec-attest.dev/leakage/v1",)
DIGEST_SIZE = 32
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("train", "holdback"),
    ("train", "test"),
    ("train", "validation"),
)
ROLE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ADDRESS_RE = re.compile(r"^sha256:([0-9a-f]{64})$")
_ZLIB_LEVEL = 6


def pair_key(a: str, b: str) -> str:
    """The key of an unordered pair of roles in ``overlaps``: both names sorted, joined by ``|``."""
    first, second = sorted((a, b))
    return f"{first}|{second}"


@dataclass(frozen=True, repr=False)
class RowDigestSet:
    """The distinct row digests of one split, sorted, as one flat byte string."""

    digests: bytes
    rows: int

    def __post_init__(self) -> None:
        if len(self.digests) % DIGEST_SIZE:
            raise MalformedDocumentError("row digest set: length is not a multiple of 32")
        if self.rows < self.unique:
            raise MalformedDocumentError(
                f"row digest set: {self.unique} distinct rows but only {self.rows} rows read"
            )

    def __repr__(self) -> str:
        return f"RowDigestSet(rows={self.rows}, unique={self.unique})"

    @property
    def unique(self) -> int:
        """Distinct rows."""
        return len(self.digests) // DIGEST_SIZE

    def _at(self, index: int) -> bytes:
        return self.digests[index * DIGEST_SIZE : (index + 1) * DIGEST_SIZE]

    def intersection_count(self, other: RowDigestSet) -> int:
        """How many distinct rows both sets hold.

        A linear merge of the two sorted buffers, or a binary search of each
        member of the smaller set when the other is much larger. No per-set
        Python ``set`` is built.
        """
        small, large = (self, other) if self.unique <= other.unique else (other, self)
        n, m = small.unique, large.unique
        if n == 0:
            return 0
        if n * m.bit_length() < n + m:
            return _count_by_search(small, large)
        return _count_by_merge(small, large)

    def to_blob(self) -> bytes:
        """The stored form: ``ROWSET_MAGIC`` + zlib stream of the sorted digests."""
        return ROWSET_MAGIC + zlib.compress(self.digests, _ZLIB_LEVEL)

    @classmethod
    def from_blob(cls, data: bytes, rows: int) -> RowDigestSet:
        """Parse a stored set; ``rows`` (from the signed record) bounds its size."""
        if not data.startswith(ROWSET_MAGIC):
            raise MalformedDocumentError("row digest set: bad magic (not an MLSPEC-ROWSET/1 blob)")
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise MalformedDocumentError(f"row digest set: bad row count {rows!r}")
        limit = rows * DIGEST_SIZE
        inflater = zlib.decompressobj()
        try:
            digests = inflater.decompress(data[len(ROWSET_MAGIC) :], min(limit + 1, sys.maxsize))
        except zlib.error as exc:
            raise MalformedDocumentError(f"row digest set: corrupt zlib stream ({exc})") from exc
        if len(digests) > limit:
            raise MalformedDocumentError(
                f"row digest set: holds more digests than the {rows} rows attested"
            )
        if not inflater.eof or inflater.unused_data:
            raise MalformedDocumentError("row digest set: truncated or trailing data")
        result = cls(digests, rows)
        previous = b""
        for index in range(result.unique):
            current = result._at(index)
            if current <= previous:
                raise MalformedDocumentError(
                    "row digest set: digests not strictly ascending (unsorted or duplicated)"
                )
            previous = current
        return result

    @classmethod
    def from_digests(cls, digests: Iterable[bytes]) -> RowDigestSet:
        """Sort and de-duplicate a stream of 32-byte digests (see :class:`DigestAccumulator`)."""
        accumulator = DigestAccumulator()
        for digest in digests:
            accumulator.add(digest)
        return accumulator.finish()

    @property
    def address(self) -> str:
        """``sha256:<hex>`` of :meth:`to_blob`: where the store keeps this set."""
        return "sha256:" + hashlib.sha256(self.to_blob()).hexdigest()


class DigestAccumulator:
    """Collects 32-byte digests in O(rows * 32) bytes, then sorts and de-duplicates them.

    Digests go into 256 byte buckets by their first byte; each bucket is sorted
    on its own, so only 1/256 of the rows ever exist as Python objects at once.
    """

    def __init__(self) -> None:
        self._buckets = [bytearray() for _ in range(256)]
        self.rows = 0

    def add(self, digest: bytes) -> None:
        if len(digest) != DIGEST_SIZE:
            raise MalformedDocumentError(f"row digest of {len(digest)} bytes, expected 32")
        self._buckets[digest[0]] += digest
        self.rows += 1

    def finish(self) -> RowDigestSet:
        out = bytearray()
        for first in range(256):
            raw = bytes(self._buckets[first])
            self._buckets[first] = bytearray()  # release as we go
            members = {raw[i : i + DIGEST_SIZE] for i in range(0, len(raw), DIGEST_SIZE)}
            out += b"".join(sorted(members))
        return RowDigestSet(bytes(out), self.rows)


def _count_by_merge(small: RowDigestSet, large: RowDigestSet) -> int:
    a, b = small.digests, large.digests
    end_a, end_b = len(a), len(b)
    i = j = count = 0
    x, y = a[0:DIGEST_SIZE], b[0:DIGEST_SIZE]
    while True:
        if x == y:
            count += 1
            i += DIGEST_SIZE
            j += DIGEST_SIZE
            if i >= end_a or j >= end_b:
                return count
            x, y = a[i : i + DIGEST_SIZE], b[j : j + DIGEST_SIZE]
        elif x < y:
            i += DIGEST_SIZE
            if i >= end_a:
                return count
            x = a[i : i + DIGEST_SIZE]
        else:
            j += DIGEST_SIZE
            if j >= end_b:
                return count
            y = b[j : j + DIGEST_SIZE]


def _count_by_search(small: RowDigestSet, large: RowDigestSet) -> int:
    m = large.unique
    lo = count = 0
    for index in range(small.unique):
        x = small._at(index)
        lo = bisect_left(range(m), x, lo, m, key=large._at)
        if lo == m:
            break
        if large._at(lo) == x:
            count += 1
            lo += 1
    return count


def row_digests(
    path: Path, *, fmt: str = "auto", exclude_columns: Sequence[str] = ()
) -> RowDigestSet:
    """The row digest set of one dataset on its own, over every column but the excluded.

    ``fmt``: ``auto`` (by suffix: ``.csv``, ``.tsv``/``.tab``, ``.jsonl``/``.ndjson``,
    ``.parquet``/``.pq``, plus ``.gz`` for the text formats; a directory of such
    shards as rows, a directory of per-example files as ``files``), ``csv``,
    ``tsv``, ``jsonl``, ``parquet`` (needs the ``parquet`` extra, pyarrow) or
    ``files`` (one digest per file: the SHA-256 of its content, so the same image
    in two splits is caught whatever its name). Rows are streamed, never loaded whole.
    """
    return RowDigestSet.from_digests(iter_row_digests(path, fmt, exclude_columns))


def _check_role(role: str) -> str:
    if not ROLE_RE.match(role):
        raise UsageError(
            f"split role {role!r} is not valid",
            remedy="use letters, digits and . _ - (e.g. train, validation, holdback)",
        )
    return role


# --- hashing datasets ------------------------------------------------------------
Sets = dict[frozenset[str], RowDigestSet]


def _hash(dataset: Dataset, drops: Iterable[frozenset[str]]) -> tuple[Profile, Sets]:
    """One pass: the dataset's profile and a digest set per dropped-column set.

    The sets are keyed by the dropped columns the dataset actually has.
    """
    accumulators = {drop: DigestAccumulator() for drop in dict.fromkeys(drops)}
    profile = hash_rows(dataset, [(d, a.add) for d, a in accumulators.items()])
    return profile, {d & profile.columns: a.finish() for d, a in accumulators.items()}


def _complete(
    dataset: Dataset, profile: Profile, sets: Sets, drops: Iterable[frozenset[str]]
) -> Sets:
    """``sets`` plus those of ``drops`` it lacks (a second pass, only when needed)."""
    missing = [d for d in {d & profile.columns for d in drops} if d not in sets]
    if missing:
        _, more = _hash(dataset, missing)
        sets = {**sets, **more}
    return sets


@dataclass(frozen=True)
class HashedDataset:
    """A dataset read once or twice: its profile and the digest sets of the projections asked."""

    dataset: Dataset
    profile: Profile
    sets: Sets

    def get(self, drop: frozenset[str]) -> RowDigestSet:
        return self.sets[drop & self.profile.columns]

    def varying_drop(self) -> frozenset[str]:
        """The columns the ``varying`` content set leaves out: those constant in the dataset."""
        return self.profile.constant


def hash_content(dataset: Dataset) -> HashedDataset:
    """A dataset's content sets: every column, and without its constant columns."""
    profile, sets = _hash(dataset, [frozenset()])
    sets = _complete(dataset, profile, sets, [profile.constant])
    return HashedDataset(dataset, profile, sets)


def content_record(hashed: HashedDataset, blobs: dict[str, bytes]) -> dict[str, Any]:
    """``contentSets`` of a record; the sets' blobs are added to ``blobs`` by address."""
    out = {"all": _set_entry(hashed.get(frozenset()), blobs)}
    varying = hashed.varying_drop()
    if varying:
        out["varying"] = {
            **_set_entry(hashed.get(varying), blobs),
            "droppedColumns": sorted(varying),
        }
    return out


def _set_entry(digest_set: RowDigestSet, blobs: dict[str, bytes]) -> dict[str, Any]:
    blob = digest_set.to_blob()
    address = "sha256:" + hashlib.sha256(blob).hexdigest()
    blobs[address] = blob
    return {"digestSet": address, "unique": digest_set.unique}


# --- the split proof ---------------------------------------------------------------
@dataclass(frozen=True)
class SplitProof:
    """The ``details.leakage`` record of a split stage and the blobs it names."""

    record: dict[str, Any]
    blobs: dict[str, bytes] = field(repr=False)
    sets: dict[str, RowDigestSet] = field(repr=False)

    def store(self, store: AttestationStore) -> None:
        for blob in self.blobs.values():
            store.put_blob(blob)


def _open_splits(splits: Mapping[str, Path], fmt: str) -> dict[str, Dataset]:
    if not splits:
        raise UsageError("the leakage proof needs at least one split")
    datasets = {role: open_dataset(splits[_check_role(role)], fmt) for role in sorted(splits)}
    kinds = {ds.format == "files" for ds in datasets.values()}
    if len(kinds) > 1:
        raise BadInputError(
            "the splits mix per-file datasets with tabular ones, which never share a row",
            remedy="write every split of the stage the same way (all tabular or all per-file)",
        )
    return datasets


def split_labels(profiles: Mapping[str, Profile], shared: frozenset[str]) -> frozenset[str]:
    """Shared columns holding one value within each split (a split name, a fold number).

    Only when every split has two rows or more: one row always holds one value.
    """
    if not profiles or any(p.rows < 2 for p in profiles.values()):
        return frozenset()
    return frozenset(shared.intersection(*(p.constant for p in profiles.values())))


def _dropped(
    profile: Profile, excluded: frozenset[str], shared: frozenset[str], labels: frozenset[str]
) -> dict[str, str]:
    """The columns of one split the proof leaves out, each with why."""
    reasons = dict.fromkeys(profile.columns - shared, "not-shared")
    reasons.update(dict.fromkeys(labels, "split-label"))
    reasons.update(dict.fromkeys(excluded, "excluded"))
    return dict(sorted(reasons.items()))


def prove_splits(
    splits: Mapping[str, Path],
    *,
    base_dir: Path | None = None,
    exclude_columns: Sequence[str] = (),
    fmt: str = "auto",
) -> SplitProof:
    """Hash every split; return the record for ``details["leakage"]`` and its blobs.

    ``splits`` maps a role (train, validation, holdback, test, ...) to its file
    or directory; ``base_dir`` names the artifacts (as the stage's products).
    Every split is hashed over the columns all splits share, minus the excluded
    columns and the split-label columns (:func:`split_labels`). Nothing is
    stored: the caller stores the blobs once the stage is signed.
    """
    datasets = _open_splits(splits, fmt)
    excluded = frozenset(canonical_name(c) for c in exclude_columns)
    first = {role: _first_pass(ds, exclude_columns, excluded) for role, ds in datasets.items()}
    profiles = {role: profile for role, (profile, _) in first.items()}
    shared = shared_columns(profiles.values())
    labels = split_labels(profiles, shared - excluded)
    dropped: dict[str, dict[str, str]] = {}
    hashed: dict[str, HashedDataset] = {}
    for role, ds in datasets.items():
        profile, sets = first[role]
        dropped[role] = _dropped(profile, excluded, shared, labels)
        sets = _complete(ds, profile, sets, [frozenset(dropped[role]), profile.constant])
        hashed[role] = HashedDataset(ds, profile, sets)
    record, blobs, proof_sets = _proof_record(splits, base_dir, hashed, dropped)
    record["excludeColumns"] = sorted(excluded)
    record["columns"] = sorted(shared - excluded - labels)
    check_own_record("leakage-v2", record)
    return SplitProof(dict(sorted(record.items())), blobs, proof_sets)


def _first_pass(
    dataset: Dataset, exclude_columns: Sequence[str], excluded: frozenset[str]
) -> tuple[Profile, Sets]:
    """Every column and every column but the excluded, hashed in one pass."""
    excluded_names(dataset, exclude_columns)  # refuses exclusions on per-file splits
    profile, sets = _hash(dataset, [frozenset(), excluded])
    if profile.rows or profile.columns:
        check_excluded(dataset.path, profile.columns, excluded)
    return profile, sets


def shared_columns(profiles: Iterable[Profile]) -> frozenset[str]:
    """The columns every split with rows has (an empty split constrains nothing)."""
    with_rows = [p.columns for p in profiles if p.rows]
    return frozenset.intersection(*with_rows) if with_rows else frozenset()


def check_own_record(schema: str, record: Mapping[str, Any]) -> None:
    """A record this module wrote matches its published schema (else: a bug, exit 70)."""
    problem = schema_problem(schema, record)
    if problem:
        raise MlspecError(f"internal error: the record does not match {schema}: {problem}")


def _proof_record(
    splits: Mapping[str, Path],
    base_dir: Path | None,
    hashed: Mapping[str, HashedDataset],
    dropped: Mapping[str, dict[str, str]],
) -> tuple[dict[str, Any], dict[str, bytes], dict[str, RowDigestSet]]:
    blobs: dict[str, bytes] = {}
    sets = {role: h.get(frozenset(dropped[role])) for role, h in hashed.items()}
    entries: dict[str, Any] = {}
    for role, h in hashed.items():
        entries[role] = {
            "artifact": artifact_name(splits[role], base_dir) if base_dir else str(splits[role]),
            "format": h.dataset.format,
            "files": h.profile.files,
            "ignoredFiles": len(h.dataset.ignored),
            "rows": h.profile.rows,
            "unique": sets[role].unique,
            "duplicatesWithin": h.profile.rows - sets[role].unique,
            "digestSet": _set_entry(sets[role], blobs)["digestSet"],
            "droppedColumns": dropped[role],
            "contentSets": content_record(h, blobs),
        }
    overlaps = {
        pair_key(a, b): sets[a].intersection_count(sets[b])
        for a, b in combinations(sorted(sets), 2)
    }
    record = {
        "schemaVersion": LEAKAGE_SCHEMA,
        "canonicalization": CANONICALIZATION,
        "splits": entries,
        "overlaps": dict(sorted(overlaps.items())),
    }
    return record, blobs, sets


def compute_split_proof(
    splits: Mapping[str, Path],
    store: AttestationStore,
    *,
    base_dir: Path,
    exclude_columns: Sequence[str] = (),
    fmt: str = "auto",
) -> dict[str, Any]:
    """:func:`prove_splits`, with the digest sets stored at once; returns the record."""
    proof = prove_splits(splits, base_dir=base_dir, exclude_columns=exclude_columns, fmt=fmt)
    proof.store(store)
    return proof.record


# --- verification --------------------------------------------------------------
@dataclass(frozen=True)
class LeakageFinding:
    """One failed leakage check; ``expected``/``found`` are short human-readable values.

    ``kind`` is one of ``overlap-exceeds-tolerance``, ``attested-count-wrong``,
    ``digest-set-missing``, ``digest-set-corrupt``, ``split-missing``,
    ``record-malformed`` (the record does not match the leakage/v2 schema) and
    ``canonicalization-retired`` (a leakage/v1, mlspec-rows/v1 record). ``pair`` is the :func:`pair_key` of the pair
    concerned, or ``*`` for a finding about the whole record.
    """

    pair: str
    kind: str
    message: str
    expected: str
    found: str


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def schema_problem(name: str, record: Any) -> str | None:
    """The first few violations of JSON Schema ``name`` in ``record``, or None."""
    problems = schema_errors(name, record)
    if not problems:
        return None
    text = "; ".join(f"{'/'.join(map(str, p)) or '(root)'}: {m}" for p, m in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return text + more


def retired_problem(record: Mapping[str, Any], current_schema: str) -> str | None:
    """Why a record of a retired format is refused, or None."""
    version = record.get("schemaVersion")
    canonicalization = record.get("canonicalization")
    if version in RETIRED_LEAKAGE_SCHEMAS or canonicalization in RETIRED_CANONICALIZATIONS:
        return (
            f"the record was written as {version!r} with canonicalization {canonicalization!r}, "
            f"which this verifier refuses: it read directories of tabular shards as opaque files "
            "and did not see the same row under another Unicode normalization, with invisible "
            f"characters, a differently cased header or an extra column (expected {current_schema!r}"
            f" with {CANONICALIZATION!r})"
        )
    return None


def _record_problem(record: Any) -> tuple[str, str] | None:
    """(finding kind, message) when the record as a whole cannot be used."""
    if not isinstance(record, Mapping):
        return "record-malformed", "the leakage record is not an object"
    retired = retired_problem(record, LEAKAGE_SCHEMA)
    if retired:
        return "canonicalization-retired", retired
    problem = schema_problem("leakage-v2", record)
    if problem:
        return "record-malformed", f"the leakage record does not match leakage/v2: {problem}"
    return None


@dataclass(frozen=True)
class Unusable:
    """Why a stored digest set cannot be used (becomes a finding for each check needing it)."""

    kind: str
    message: str
    expected: str
    found: str

    def finding(self, pair: str) -> LeakageFinding:
        return LeakageFinding(pair, self.kind, self.message, self.expected, self.found)


def load_digest_set(
    store: AttestationStore, address: str, *, rows: int, unique: int, what: str
) -> RowDigestSet | Unusable:
    """The set stored at ``address``, bound to the counts the signed record states.

    The blob is fetched by the digest the record names (the store refuses bytes
    that no longer match it), parsed with ``rows`` as the bound, and its size
    must equal ``unique``.
    """
    match = _ADDRESS_RE.match(address)
    if not match or not _is_count(rows) or not _is_count(unique):
        return Unusable(
            "record-malformed", f"{what}: bad digest set entry", "a valid entry", address
        )
    # The signed count bounds the read: 32 bytes a row, plus zlib's worst-case overhead.
    limit = len(ROWSET_MAGIC) + rows * DIGEST_SIZE * 1001 // 1000 + 4096
    blob = store.get_blob(match.group(1), limit=limit)
    if blob is None:
        return Unusable(
            "digest-set-missing",
            f"{what}: digest set {address} is not in the store "
            "(absent, or its bytes no longer match the address)",
            address,
            "nothing",
        )
    try:
        digest_set = RowDigestSet.from_blob(blob, rows)
    except MalformedDocumentError as exc:
        return Unusable("digest-set-corrupt", f"{what}: {exc.message}", address, "unreadable")
    if digest_set.unique != unique:
        return Unusable(
            "attested-count-wrong",
            f"{what}: the stored digest set holds {digest_set.unique} distinct rows, "
            f"the attestation says {unique}",
            str(digest_set.unique),
            str(unique),
        )
    return digest_set


class _SplitLoader:
    """Loads each split's proof set once; remembers why one could not be used."""

    def __init__(self, splits: Mapping[str, Any], store: AttestationStore) -> None:
        self._splits = splits
        self._store = store
        self._cache: dict[str, RowDigestSet | Unusable] = {}

    def get(self, role: str) -> RowDigestSet | Unusable:
        """The set, or why it cannot be used."""
        if role not in self._cache:
            self._cache[role] = self._load(role)
        return self._cache[role]

    def _load(self, role: str) -> RowDigestSet | Unusable:
        entry = self._splits[role]
        if entry["duplicatesWithin"] != entry["rows"] - entry["unique"]:
            return Unusable(
                "attested-count-wrong",
                f"split {role!r}: duplicatesWithin {entry['duplicatesWithin']!r} is not rows - unique",
                str(entry["rows"] - entry["unique"]),
                repr(entry["duplicatesWithin"]),
            )
        return load_digest_set(
            self._store,
            entry["digestSet"],
            rows=entry["rows"],
            unique=entry["unique"],
            what=f"split {role!r}",
        )


def check_leakage(
    record: Mapping[str, Any],
    store: AttestationStore,
    *,
    pairs: Sequence[tuple[str, str]] = DEFAULT_PAIRS,
    tolerance: int = 0,
    roles: Collection[str] | None = None,
) -> list[LeakageFinding]:
    """Recompute the requested overlaps from the stored digest sets; return every finding.

    A requested pair is checked when the record holds both of its splits: both
    digest sets are loaded by their signed addresses (``digest-set-missing``,
    ``digest-set-corrupt``), the intersection recomputed and compared with
    ``record["overlaps"]`` (``attested-count-wrong``) and with ``tolerance``
    (``overlap-exceeds-tolerance``).

    A pair with a split absent from the record is skipped (the default pairs name
    both ``test`` and ``holdback``; a pipeline has one or the other), except:

    - ``roles`` (the dataset roles the split stage attested, e.g. its metadata
      ``roles``) names both splits of the pair: the stage produced the split but
      the proof leaves it out -> ``split-missing``;
    - no requested pair at all could be checked -> one ``split-missing`` finding
      with pair ``*`` (a record without, say, a holdback proves nothing).

    An empty list means the check passed.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise UsageError(f"leakage tolerance {tolerance!r} must be a non-negative integer")
    for a, b in pairs:
        if a == b:
            raise UsageError(f"leakage pair ({a!r}, {b!r}) names the same split twice")
    problem = _record_problem(record)
    if problem:
        kind, message = problem
        return [LeakageFinding("*", kind, message, f"{LEAKAGE_SCHEMA} ({CANONICALIZATION})", "")]
    splits: Mapping[str, Any] = record["splits"]
    loader = _SplitLoader(splits, store)
    findings: list[LeakageFinding] = []
    checked = 0
    for a, b in pairs:
        absent = [role for role in (a, b) if role not in splits]
        if absent:
            findings.extend(_absent_findings(a, b, absent, roles))
            continue
        checked += 1
        findings.extend(_pair_findings(a, b, loader, record["overlaps"], tolerance))
    if not checked and not findings:
        findings.append(_nothing_checked(pairs, splits))
    return findings


def _absent_findings(
    a: str, b: str, absent: Sequence[str], roles: Collection[str] | None
) -> list[LeakageFinding]:
    if roles is None or a not in roles or b not in roles:
        return []  # the pair does not apply to this pipeline
    key = pair_key(a, b)
    return [
        LeakageFinding(
            key,
            "split-missing",
            f"the stage attests split(s) {' and '.join(map(repr, absent))} but the "
            f"leakage record has no digest set for them, so {key} cannot be checked",
            f"digest sets for {a!r} and {b!r}",
            "no digest set for " + ", ".join(map(repr, absent)),
        )
    ]


def _pair_findings(
    a: str, b: str, loader: _SplitLoader, overlaps: Mapping[str, Any], tolerance: int
) -> list[LeakageFinding]:
    key = pair_key(a, b)
    first, second = loader.get(a), loader.get(b)
    if not isinstance(first, RowDigestSet) or not isinstance(second, RowDigestSet):
        return [u.finding(key) for u in (first, second) if isinstance(u, Unusable)]
    findings: list[LeakageFinding] = []
    actual = first.intersection_count(second)
    attested = overlaps.get(key)
    if not _is_count(attested) or attested != actual:
        findings.append(
            LeakageFinding(
                key,
                "attested-count-wrong",
                f"{key}: the stored digest sets share {actual} rows, "
                f"the attestation says {attested!r}",
                str(actual),
                "absent" if attested is None else repr(attested),
            )
        )
    if actual > tolerance:
        findings.append(
            LeakageFinding(
                key,
                "overlap-exceeds-tolerance",
                f"{key}: {actual} row(s) appear in both splits (tolerance {tolerance})",
                f"at most {tolerance}",
                str(actual),
            )
        )
    return findings


def _nothing_checked(pairs: Sequence[tuple[str, str]], splits: Mapping[str, Any]) -> LeakageFinding:
    wanted = ", ".join(pair_key(a, b) for a, b in pairs)
    return LeakageFinding(
        "*",
        "split-missing",
        f"the leakage record covers none of the pairs to check ({wanted})",
        f"one of: {wanted}",
        "splits " + (", ".join(sorted(splits)) or "none"),
    )
