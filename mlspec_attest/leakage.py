"""The leakage proof of the split stage: row digest sets and their overlaps.

Signing side (:func:`compute_split_proof`): every split (train, validation,
holdback, ...) is read row by row, each row canonicalized (``mlspec-rows/v1``,
see :mod:`mlspec_attest.rows` and docs/leakage.md) and hashed. The sorted,
de-duplicated digests of a split form a :class:`RowDigestSet`, stored in the
attestation store by content address; the split stage's metadata records the
counts, the address of each set and the overlap count of every pair of splits.

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

import re
import sys
import zlib
from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from .errors import MalformedDocumentError, UsageError
from .fsutil import artifact_name
from .rows import CANONICALIZATION, iter_row_digests, resolve_format
from .store import AttestationStore

ROWSET_MAGIC = b"MLSPEC-ROWSET/1\n"
LEAKAGE_SCHEMA = "https://mlspec-attest.dev/leakage/v1"
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
        """Sort and de-duplicate a stream of 32-byte digests in O(rows * 32) bytes.

        Digests go into 256 byte buckets by their first byte; each bucket is
        then sorted on its own, so only 1/256 of the rows ever exist as Python
        objects at once.
        """
        buckets = [bytearray() for _ in range(256)]
        rows = 0
        for digest in digests:
            if len(digest) != DIGEST_SIZE:
                raise MalformedDocumentError(f"row digest of {len(digest)} bytes, expected 32")
            buckets[digest[0]] += digest
            rows += 1
        out = bytearray()
        for first in range(256):
            raw = bytes(buckets[first])
            buckets[first] = bytearray()  # release as we go
            members = {raw[i : i + DIGEST_SIZE] for i in range(0, len(raw), DIGEST_SIZE)}
            out += b"".join(sorted(members))
        return cls(bytes(out), rows)


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
    """The row digest set of one split.

    ``fmt``: ``auto`` (by suffix: ``.csv``, ``.tsv``/``.tab``, ``.jsonl``/``.ndjson``,
    ``.parquet``/``.pq``, plus ``.gz`` for the text formats; a directory is
    ``files``), ``csv``, ``tsv``, ``jsonl``, ``parquet`` (needs the ``parquet``
    extra, pyarrow) or ``files`` (one digest per file: the SHA-256 of its content,
    so the same image in two splits is caught whatever its name; hidden files are
    skipped). A directory read as a tabular format is a sharded dataset: the rows
    of every file of that format under it. Rows are streamed, never loaded whole.
    """
    return RowDigestSet.from_digests(iter_row_digests(path, fmt, exclude_columns))


def _check_role(role: str) -> str:
    if not ROLE_RE.match(role):
        raise UsageError(
            f"split role {role!r} is not valid",
            remedy="use letters, digits and . _ - (e.g. train, validation, holdback)",
        )
    return role


def compute_split_proof(
    splits: Mapping[str, Path],
    store: AttestationStore,
    *,
    base_dir: Path,
    exclude_columns: Sequence[str] = (),
    fmt: str = "auto",
) -> dict[str, Any]:
    """Hash every split, store each digest set, return the record for ``details["leakage"]``.

    ``splits`` maps a role (train, validation, holdback, test, ...) to its file
    or directory. The record holds, per split, its artifact name, rows, distinct
    rows, duplicates within the split and the ``sha256:`` address of its stored
    digest set; and the overlap count of every unordered pair of splits, keyed by
    :func:`pair_key`.
    """
    if not splits:
        raise UsageError("the leakage proof needs at least one split")
    sets: dict[str, RowDigestSet] = {}
    record_splits: dict[str, Any] = {}
    for role in sorted(splits):
        path = splits[_check_role(role)]
        name = artifact_name(path, base_dir)
        resolved = resolve_format(path, fmt)
        digest_set = row_digests(path, fmt=resolved, exclude_columns=exclude_columns)
        address = store.put_blob(digest_set.to_blob())
        sets[role] = digest_set
        record_splits[role] = {
            "artifact": name,
            "format": resolved,
            "rows": digest_set.rows,
            "unique": digest_set.unique,
            "duplicatesWithin": digest_set.rows - digest_set.unique,
            "digestSet": f"sha256:{address}",
        }
    overlaps = {
        pair_key(a, b): sets[a].intersection_count(sets[b])
        for a, b in combinations(sorted(sets), 2)
    }
    return {
        "schemaVersion": LEAKAGE_SCHEMA,
        "canonicalization": CANONICALIZATION,
        "excludeColumns": sorted({c.strip() for c in exclude_columns}),
        "splits": record_splits,
        "overlaps": dict(sorted(overlaps.items())),
    }


# --- verification --------------------------------------------------------------
@dataclass(frozen=True)
class LeakageFinding:
    """One failed leakage check; ``expected``/``found`` are short human-readable values.

    ``kind`` is one of ``overlap-exceeds-tolerance``, ``attested-count-wrong``,
    ``digest-set-missing``, ``digest-set-corrupt``, ``split-missing`` and
    ``record-malformed`` (the record is not a leakage/v1 document, or a split
    entry in it is malformed). ``pair`` is the :func:`pair_key` of the pair
    concerned, or ``*`` for a finding about the whole record.
    """

    pair: str
    kind: str
    message: str
    expected: str
    found: str


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _record_problem(record: Any) -> str | None:
    if not isinstance(record, Mapping):
        return "the leakage record is not an object"
    if record.get("schemaVersion") != LEAKAGE_SCHEMA:
        return f"schemaVersion is {record.get('schemaVersion')!r}, expected {LEAKAGE_SCHEMA!r}"
    if record.get("canonicalization") != CANONICALIZATION:
        return (
            f"canonicalization {record.get('canonicalization')!r} is not supported "
            f"(this verifier knows {CANONICALIZATION!r})"
        )
    if not isinstance(record.get("splits"), Mapping):
        return "'splits' is missing or not an object"
    if not isinstance(record.get("overlaps"), Mapping):
        return "'overlaps' is missing or not an object"
    return None


def _split_problem(entry: Any) -> str | None:
    if not isinstance(entry, Mapping):
        return "entry is not an object"
    if not isinstance(entry.get("digestSet"), str) or not _ADDRESS_RE.match(entry["digestSet"]):
        return f"digestSet {entry.get('digestSet')!r} is not sha256:<64 hex digits>"
    for field in ("rows", "unique"):
        if not _is_count(entry.get(field)):
            return f"{field} {entry.get(field)!r} is not a non-negative integer"
    return None


@dataclass(frozen=True)
class _Unusable:
    """Why a split's digest set cannot be used (becomes a finding for each pair needing it)."""

    kind: str
    message: str
    expected: str
    found: str

    def finding(self, pair: str) -> LeakageFinding:
        return LeakageFinding(pair, self.kind, self.message, self.expected, self.found)


class _SplitLoader:
    """Loads each split's digest set once; remembers why one could not be used."""

    def __init__(self, splits: Mapping[str, Any], store: AttestationStore) -> None:
        self._splits = splits
        self._store = store
        self._cache: dict[str, RowDigestSet | _Unusable] = {}

    def get(self, role: str) -> RowDigestSet | _Unusable:
        """The set, or why it cannot be used."""
        if role not in self._cache:
            self._cache[role] = self._load(role)
        return self._cache[role]

    def _load(self, role: str) -> RowDigestSet | _Unusable:
        entry = self._splits[role]
        problem = _split_problem(entry)
        if problem:
            return _Unusable("record-malformed", f"split {role!r}: {problem}", "a valid entry", "")
        address = entry["digestSet"]
        blob = self._store.get_blob(address.removeprefix("sha256:"))
        if blob is None:
            return _Unusable(
                "digest-set-missing",
                f"split {role!r}: digest set {address} is not in the store "
                "(absent, or its bytes no longer match the address)",
                address,
                "nothing",
            )
        try:
            digest_set = RowDigestSet.from_blob(blob, entry["rows"])
        except MalformedDocumentError as exc:
            return _Unusable(
                "digest-set-corrupt", f"split {role!r}: {exc.message}", address, "unreadable"
            )
        if digest_set.unique != entry["unique"]:
            return _Unusable(
                "attested-count-wrong",
                f"split {role!r}: the stored digest set holds {digest_set.unique} distinct rows, "
                f"the attestation says {entry['unique']}",
                str(digest_set.unique),
                str(entry["unique"]),
            )
        within = entry.get("duplicatesWithin", entry["rows"] - entry["unique"])
        if within != entry["rows"] - entry["unique"]:
            return _Unusable(
                "attested-count-wrong",
                f"split {role!r}: duplicatesWithin {within!r} is not rows - unique",
                str(entry["rows"] - entry["unique"]),
                repr(within),
            )
        return digest_set


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
    problem = _record_problem(record)
    if problem:
        return [LeakageFinding("*", "record-malformed", problem, LEAKAGE_SCHEMA, "")]
    splits: Mapping[str, Any] = record["splits"]
    overlaps: Mapping[str, Any] = record["overlaps"]
    loader = _SplitLoader(splits, store)
    findings: list[LeakageFinding] = []
    checked = 0
    for a, b in pairs:
        if a == b:
            raise UsageError(f"leakage pair ({a!r}, {b!r}) names the same split twice")
        key = pair_key(a, b)
        absent = [role for role in (a, b) if role not in splits]
        if absent:
            if roles is not None and a in roles and b in roles:
                findings.append(
                    LeakageFinding(
                        key,
                        "split-missing",
                        f"the stage attests split(s) {' and '.join(map(repr, absent))} but the "
                        f"leakage record has no digest set for them, so {key} cannot be checked",
                        f"digest sets for {a!r} and {b!r}",
                        "no digest set for " + ", ".join(map(repr, absent)),
                    )
                )
            continue
        checked += 1
        first, second = loader.get(a), loader.get(b)
        if not isinstance(first, RowDigestSet) or not isinstance(second, RowDigestSet):
            for unusable in (first, second):
                if isinstance(unusable, _Unusable):
                    findings.append(unusable.finding(key))
            continue
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
    if not checked and not findings:
        wanted = ", ".join(pair_key(a, b) for a, b in pairs)
        findings.append(
            LeakageFinding(
                "*",
                "split-missing",
                f"the leakage record covers none of the pairs to check ({wanted})",
                f"one of: {wanted}",
                "splits " + (", ".join(sorted(splits)) or "none"),
            )
        )
    return findings
