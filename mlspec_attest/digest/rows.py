"""The one engine that hashes dataset rows (``mlspec-rows/v2``, :mod:`mlspec_attest.formats.rowform`).

Which columns a row is hashed over (a *projection*) is decided by the callers:
:mod:`mlspec_attest.evidence.leakage` drops excluded, non-shared and split-label columns
for the split proof, and constant columns for the content sets. This module
reads the shards of a :class:`~mlspec_attest.digest.datasets.Dataset`, normalizes
rows and hashes every projection in one pass (:func:`hash_rows`), reporting each
dataset's columns and constant columns (:class:`Profile`).

Shards are read through Arrow in record batches, the canonical bytes computed a
column at a time (:mod:`.rows_arrow`, :mod:`.rows_jsonl`,
:mod:`mlspec_attest.formats.rowarrow`), as long as the Arrow path can vouch for
them; from the first part it cannot, the reference reads the rest of the file:
the one reader (:mod:`mlspec_attest.formats.tabular`) and the row canonical form
one value at a time (:mod:`mlspec_attest.formats.rowform`). Both give the same
digests (docs/leakage.md, "How rows are read").
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from mlspec_attest.digest.datasets import Dataset, open_dataset
from mlspec_attest.digest.engine import digest_file
from mlspec_attest.digest.rows_arrow import Batch, BatchReader, Rows, csv_batches, parquet_batches
from mlspec_attest.digest.rows_jsonl import jsonl_batches
from mlspec_attest.digest.rows_profile import ConstantTracker, Profile
from mlspec_attest.errors import BackendError, BadInputError, UsageError
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.rowarrow import Decline, available
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
Sink = Callable[[bytes], object]

_BATCH_READERS: dict[str, BatchReader] = {
    "csv": csv_batches,
    "tsv": csv_batches,
    "jsonl": jsonl_batches,
    "parquet": parquet_batches,
}

#: What a shard hands the engine: a batch read through Arrow, or one row read by the
#: reference reader (a normalized row), or a per-example file (its SHA-256).
Item = Batch | dict[str, Any] | bytes


#: Below this much text data (CSV, TSV, JSON Lines) in a dataset the reference reads
#: it: importing pyarrow and checking it (about 0.2 s) costs more than it saves.
ARROW_MIN_BYTES = 1 << 20


def _use_arrow(dataset: Dataset, vectorized: bool | None) -> bool:
    """``vectorized``: True (Arrow where it can), False (the reference), None (by size)."""
    if vectorized is False:
        return False
    if vectorized is None:
        text = [s for s, f in dataset.shards if f in ("csv", "tsv", "jsonl")]
        parquet = any(f == "parquet" for _, f in dataset.shards)
        if not parquet and sum(_size(s) for s in text) < ARROW_MIN_BYTES:
            return False
    return available()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # the reader reports it


def _items(
    shard: Path, fmt: str, columns: set[str], arrow: bool, take: Callable[[Batch], object]
) -> Iterator[Item]:
    """The rows of one tabular shard: through Arrow while it can vouch for them, then
    (from the first row it could not) through the reference reader.

    ``take`` prepares a batch without side effects (it may raise ``Decline`` too);
    a batch is yielded only once it is prepared. Only regular files go through
    Arrow: falling back reads the file again from its start.
    """
    done = 0
    if arrow and shard.is_file():
        batches = _BATCH_READERS[fmt](shard, fmt, columns)
        try:
            for batch in batches:
                if isinstance(batch, Rows):
                    for names, row in batch.rows:
                        columns.update(names)
                        yield row
                        done += 1
                    continue
                take(batch)
                yield batch
                done += batch.rows
            return
        except (Decline, BackendError):  # BackendError: pyarrow went missing since
            pass
        finally:
            batches.close()
    yield from islice(_READERS[fmt](shard, columns, fmt), done, None)


def _shard_items(
    dataset: Dataset,
    columns: set[str],
    vectorized: bool | None,
    take: Callable[[Batch], object],
) -> Iterator[tuple[Path, Item]]:
    arrow = _use_arrow(dataset, vectorized)
    for shard, fmt in dataset.shards:
        if fmt == "files":
            yield shard, dataset.known.get(str(shard)) or _file_digest(shard)
        else:
            for item in _items(shard, fmt, columns, arrow, take):
                yield shard, item


class _Pass:
    """One pass of :func:`hash_rows`: the digests of each projection, the profile so far."""

    def __init__(self, projections: Sequence[tuple[frozenset[str], Sink]]) -> None:
        self.projections = projections
        self.columns: set[str] = set()
        self.tracker = ConstantTracker()
        self.rows = 0
        self._ready: tuple[Batch, list[list[bytes]], Any] | None = None

    def prepare(self, batch: Batch) -> None:
        sha256 = hashlib.sha256
        digests = [
            [sha256(row).digest() for row in batch.row_bytes(drop)] for drop, _ in self.projections
        ]
        self._ready = (batch, digests, self.tracker.after(batch, self.columns))

    def batch(self, batch: Batch) -> None:
        assert self._ready is not None and self._ready[0] is batch
        _, digests, state = self._ready
        self.columns.update(batch.names)
        self.tracker.apply(state)
        for (_, sink), found in zip(self.projections, digests, strict=True):
            deque(map(sink, found), maxlen=0)
        self.rows += batch.rows
        self._ready = None

    def row(self, shard: Path, row: dict[str, Any]) -> None:
        self.rows += 1
        self.tracker.update(row, self.columns)
        encoded = encode_row(row, shard)
        sha256 = hashlib.sha256
        for drop, sink in self.projections:
            sink(sha256(project(encoded, drop)).digest())


def hash_rows(
    dataset: Dataset,
    projections: Sequence[tuple[frozenset[str], Sink]],
    *,
    vectorized: bool | None = None,
) -> Profile:
    """Read every row once; for each (dropped columns, sink) send the row's digest.

    A row's digest under a projection is SHA-256 of the RFC 8785 list of its
    ``[name, value]`` pairs without the dropped columns. A per-example file is
    one "row" whose digest is the SHA-256 of its bytes, under every projection.
    Tabular files are read through Arrow a batch at a time where it can vouch for
    the bytes (:mod:`.rows_arrow`), else by the reference reader. ``vectorized``:
    None reads small text datasets (under :data:`ARROW_MIN_BYTES`) with the
    reference and the rest through Arrow, True everything it can through Arrow,
    False everything with the reference. The digests are the same either way.
    """
    state = _Pass(projections)
    for shard, item in _shard_items(dataset, state.columns, vectorized, state.prepare):
        if isinstance(item, Batch):
            state.batch(item)
        elif isinstance(item, bytes):
            state.rows += 1
            for _, sink in projections:
                sink(item)
        else:
            state.row(shard, item)
    constant = state.tracker.constant(state.columns, state.rows)
    return Profile(state.rows, len(dataset.shards), frozenset(state.columns), constant)


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
    path: Path,
    fmt: str = "auto",
    exclude_columns: Sequence[str] = (),
    *,
    vectorized: bool | None = None,
) -> Iterator[bytes]:
    """Yield one 32-byte SHA-256 per row (or per file, for ``files``), streaming.

    Every column except ``exclude_columns`` is hashed; see :func:`open_dataset`
    for how directories are read. A misspelt exclusion raises once the whole
    dataset has been read (JSON Lines columns are known only then).
    ``vectorized`` chooses the reader as for :func:`hash_rows`.
    """
    dataset = open_dataset(path, fmt)
    excluded = excluded_names(dataset, exclude_columns)
    columns: set[str] = set()
    rows = 0
    ready: list[list[bytes]] = []

    def take(batch: Batch) -> None:
        sha256 = hashlib.sha256
        ready[:] = [[sha256(row).digest() for row in batch.row_bytes(excluded)]]

    for shard, item in _shard_items(dataset, columns, vectorized, take):
        if isinstance(item, Batch):
            columns.update(item.names)
            rows += item.rows
            yield from ready.pop()
        elif isinstance(item, bytes):
            rows += 1
            yield item
        else:
            rows += 1
            yield hashlib.sha256(row_bytes(item, excluded, shard)).digest()
    if rows or columns:
        check_excluded(path, columns, excluded)


__all__ = [
    "ARROW_MIN_BYTES",
    "Profile",
    "Sink",
    "check_excluded",
    "excluded_names",
    "hash_rows",
    "iter_row_digests",
    "resolve_format",
]
