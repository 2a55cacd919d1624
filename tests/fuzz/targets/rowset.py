"""leakage.RowDigestSet.from_blob: a stored row digest set (magic + zlib of sorted digests).

Input: two bytes of attested row count (big-endian) and the blob. Checks:
only bad-input errors; an accepted set round-trips through to_blob and its
intersection with a fixed set equals the set-theoretic one.
"""

from __future__ import annotations

import hashlib

from mlspec_attest.evidence.digest_sets import DIGEST_SIZE, RowDigestSet

from ._harness import main, parse_or_none

OTHER = RowDigestSet.from_digests(hashlib.sha256(bytes([i])).digest() for i in range(8))


def members(rows: RowDigestSet) -> set[bytes]:
    raw = rows.digests
    return {raw[i : i + DIGEST_SIZE] for i in range(0, len(raw), DIGEST_SIZE)}


def TestOneInput(data: bytes) -> None:
    rows = int.from_bytes(data[:2], "big")
    parsed = parse_or_none(RowDigestSet.from_blob, data[2:], rows)
    if parsed is None:
        return
    assert parsed.unique <= rows
    assert RowDigestSet.from_blob(parsed.to_blob(), rows) == parsed
    expected = len(members(parsed) & members(OTHER))
    assert parsed.intersection_count(OTHER) == expected == OTHER.intersection_count(parsed)


if __name__ == "__main__":
    main(TestOneInput)
