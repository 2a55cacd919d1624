"""The one engine that hashes dataset rows (``mlspec-rows/v2``, :mod:`mlspec_attest.formats.rowform`).

Which columns a row is hashed over (a *projection*) is decided by the callers:
:mod:`mlspec_attest.evidence.leakage` drops excluded, non-shared and split-label columns
for the split proof, and constant columns for the content sets. This module
reads the shards of a :class:`~mlspec_attest.digest.datasets.Dataset` with the one
reader (:mod:`mlspec_attest.formats.tabular`), normalizes rows and hashes every
projection in one pass (:func:`hash_rows`), reporting each dataset's columns and
constant columns (:class:`Profile`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlspec_attest.digest.datasets import Dataset, open_dataset
from mlspec_attest.digest.engine import digest_file
from mlspec_attest.errors import BadInputError, UsageError
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.jsonio import canonical_value
from mlspec_attest.formats.rowform import (
    canonical_name,
    column_names,
    encode_row,
    normalized_row,
    ordered_row,
    project,
    row_bytes,
    text_value,
)
from mlspec_attest.formats.tabular import (
    DELIMITERS,
    DelimitedRecords,
    JsonLines,
    ParquetRecords,
    TextSource,
)


# --- reading shards ----------------------------------------------------------
def _delimited_rows(path: Path, columns: set[str], fmt: str) -> Iterator[dict[str, Any]]:
    value = text_value
    with TextSource(path) as source:
        records = DelimitedRecords(source, DELIMITERS[fmt])
        columns.update(records.names)
        order = sorted((n, i) for i, n in enumerate(records.names))
        for record in records:
            yield {n: v for n, i in order if (v := value(record[i])) is not None}


def _jsonl_rows(path: Path, columns: set[str], fmt: str) -> Iterator[dict[str, Any]]:
    with TextSource(path) as source:
        lines = JsonLines(source)
        for record in lines:
            names = column_names(list(record), what=f"{path}:{lines.line}")
            columns.update(names)
            yield normalized_row(zip(names, record.values(), strict=True))


def _parquet_rows(path: Path, columns: set[str], fmt: str) -> Iterator[dict[str, Any]]:
    records = ParquetRecords(path)
    names = records.names
    columns.update(names)
    order = sorted(range(len(names)), key=names.__getitem__)
    for cells in records:
        yield ordered_row(names, order, cells)


_READERS: dict[str, Callable[[Path, set[str], str], Iterator[dict[str, Any]]]] = {
    "csv": _delimited_rows,
    "tsv": _delimited_rows,
    "jsonl": _jsonl_rows,
    "parquet": _parquet_rows,
}


def _file_digest(path: Path) -> bytes:
    """SHA-256 of a per-example file, by the one file hasher of the engine."""
    return digest_file(os.fspath(path))[0]


# --- the engine --------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """What one pass over a dataset learnt: rows, data files, columns, constant columns.

    ``constant`` are the columns that hold one value (null counting as a value)
    in every row; empty when the dataset has fewer than two rows, where "one
    value" says nothing.
    """

    rows: int
    files: int
    columns: frozenset[str]
    constant: frozenset[str]


_ABSENT = object()


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list | dict):
        return bool(canonical_value(a) == canonical_value(b))
    return bool(a == b)


class _ConstantTracker:
    """Which columns keep the value they had in the first row (absent = null)."""

    def __init__(self) -> None:
        self.first: dict[str, Any] | None = None
        self.candidates: set[str] = set()

    def update(self, row: Mapping[str, Any], columns: set[str]) -> None:
        if self.first is None:
            self.first = dict(row)
            self.candidates = set(columns)
            return
        if not self.candidates:
            return
        first = self.first
        for name in [
            c for c in self.candidates if not _same(row.get(c, _ABSENT), first.get(c, _ABSENT))
        ]:
            self.candidates.discard(name)

    def constant(self, columns: set[str], rows: int) -> frozenset[str]:
        # A column first seen after the first row was absent there: it varies.
        return frozenset(self.candidates & columns) if rows >= 2 else frozenset()


Sink = Callable[[bytes], object]


def _shard_rows(dataset: Dataset, columns: set[str]) -> Iterator[tuple[Path, Any]]:
    """(shard, normalized row) for tabular shards, (file, SHA-256 of its bytes) for files."""
    for shard, fmt in dataset.shards:
        if fmt == "files":
            yield shard, dataset.known.get(str(shard)) or _file_digest(shard)
        else:
            for row in _READERS[fmt](shard, columns, fmt):
                yield shard, row


def hash_rows(dataset: Dataset, projections: Sequence[tuple[frozenset[str], Sink]]) -> Profile:
    """Read every row once; for each (dropped columns, sink) send the row's digest.

    A row's digest under a projection is SHA-256 of the RFC 8785 list of its
    ``[name, value]`` pairs without the dropped columns. A per-example file is
    one "row" whose digest is the SHA-256 of its bytes, under every projection.
    """
    columns: set[str] = set()
    tracker = _ConstantTracker()
    rows = 0
    sha256 = hashlib.sha256
    for shard, row in _shard_rows(dataset, columns):
        rows += 1
        if isinstance(row, bytes):
            for _, sink in projections:
                sink(row)
            continue
        tracker.update(row, columns)
        encoded = encode_row(row, shard)
        for drop, sink in projections:
            sink(sha256(project(encoded, drop)).digest())
    constant = tracker.constant(columns, rows)
    return Profile(rows, len(dataset.shards), frozenset(columns), constant)


def check_excluded(path: Path, columns: Iterable[str], excluded: Iterable[str]) -> None:
    """Every excluded column exists in the dataset (a misspelt one would hide nothing)."""
    missing = sorted(set(excluded) - set(columns))
    if missing:
        raise BadInputError(
            f"{path}: excluded column(s) {', '.join(map(repr, missing))} not in the file",
            remedy="check the spelling: a row id left in makes every row unique and hides duplicates",
        )


def resolve_format(path: Path, fmt: str) -> str:
    """The format ``path`` is read with (see :func:`open_dataset`)."""
    return open_dataset(path, fmt).format


def excluded_names(dataset: Dataset, exclude_columns: Iterable[str]) -> frozenset[str]:
    """Canonical names of ``--exclude-column`` values; none are allowed for ``files``."""
    excluded = frozenset(canonical_name(c) for c in exclude_columns)
    if excluded and dataset.format == "files":
        raise UsageError(
            f"{dataset.path}: {named('exclude_column')} applies to tabular data, "
            "not to per-file digests"
        )
    return excluded


def iter_row_digests(
    path: Path, fmt: str = "auto", exclude_columns: Sequence[str] = ()
) -> Iterator[bytes]:
    """Yield one 32-byte SHA-256 per row (or per file, for ``files``), streaming.

    Every column except ``exclude_columns`` is hashed; see :func:`open_dataset`
    for how directories are read. A misspelt exclusion raises once the whole
    dataset has been read (JSON Lines columns are known only then).
    """
    dataset = open_dataset(path, fmt)
    excluded = excluded_names(dataset, exclude_columns)
    columns: set[str] = set()
    rows = 0
    for shard, row in _shard_rows(dataset, columns):
        rows += 1
        yield (
            row
            if isinstance(row, bytes)
            else hashlib.sha256(row_bytes(row, excluded, shard)).digest()
        )
    if rows or columns:
        check_excluded(path, columns, excluded)


__all__ = [
    "Profile",
    "Sink",
    "check_excluded",
    "excluded_names",
    "hash_rows",
    "iter_row_digests",
    "resolve_format",
]
