"""rows.iter_row_digests: mlspec-rows/v1 row digests of CSV, TSV and JSON Lines (plain or gzip).

Input: a mode byte choosing the file name (``data.csv``, ``.tsv``,
``.jsonl``, ``.csv.gz``, ``.jsonl.gz``) and the file bytes. Checks: only
bad-input errors; every digest is 32 bytes.
"""

from __future__ import annotations

from mlspec_attest.digest.rows import iter_row_digests

from ._harness import input_file, main, parse_or_none, split_mode

NAMES = ("data.csv", "data.tsv", "data.jsonl", "data.csv.gz", "data.jsonl.gz")


def digests(data: bytes, name: str) -> list[bytes]:
    return list(iter_row_digests(input_file(data, name)))


def TestOneInput(data: bytes) -> None:
    mode, body = split_mode(data, len(NAMES))
    found = parse_or_none(digests, body, NAMES[mode])
    if found is None:
        return
    assert all(len(d) == 32 for d in found)


if __name__ == "__main__":
    main(TestOneInput)
