"""Row digest sets: the sorted, distinct row digests of one dataset, stored by content address.

A :class:`RowDigestSet` is what the leakage proof and the hold-back content check
store (``MLSPEC-ROWSET/1``: magic, then a zlib stream of the sorted 32-byte
digests) and compare (:meth:`RowDigestSet.intersection_count`). The verifier
loads a set by the address a signed record names, bound to the counts that
record states (:func:`load_digest_set`).
"""

from __future__ import annotations

import hashlib
import re
import sys
import zlib
from bisect import bisect_left
from collections.abc import Iterable
from functools import cached_property
from typing import Any

from msgspec import Struct

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.store.ledger import AttestationStore

ROWSET_MAGIC = b"MLSPEC-ROWSET/1\n"
DIGEST_SIZE = 32
_ADDRESS_RE = re.compile(r"^sha256:([0-9a-f]{64})$")
_ZLIB_LEVEL = 6


class RowDigestSet(Struct, frozen=True, dict=True):
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
        """The stored form: ``ROWSET_MAGIC`` + zlib stream of the sorted digests (made
        once per set: the proof and the content sets name the same set)."""
        return self._blob

    @cached_property
    def _blob(self) -> bytes:
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


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class Unusable(Struct, frozen=True, dict=True):
    """Why a stored digest set cannot be used (becomes a finding for each check needing it)."""

    kind: str
    message: str
    expected: str
    found: str


def load_digest_set(
    store: AttestationStore, address: str, *, rows: int, unique: int, what: str
) -> RowDigestSet | Unusable:
    """The set stored at ``address``, bound to the counts the signed record states.

    The blob is fetched by the digest the record names (the store refuses bytes
    that no longer match it), parsed with ``rows`` as the bound, and its size
    must equal ``unique``.
    """
    match = _ADDRESS_RE.match(address)
    if not match or not is_count(rows) or not is_count(unique):
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
