"""Content sets: a dataset's row digest sets over every column, and without its constant ones.

The split proof and the record of what a stage read hash a dataset the same way:
one pass of the row engine (:func:`mlspec_attest.digest.rows.hash_rows`, shard by
shard on a Dask cluster when one is active) per set of projections, a second pass
only when a projection depends on what the first pass learnt (the constant columns).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from msgspec import Struct

from mlspec_attest.digest.cluster_rows import hash_rows_anywhere
from mlspec_attest.digest.datasets import Dataset
from mlspec_attest.digest.rows import Profile, iter_row_digests
from mlspec_attest.evidence.digest_sets import DigestAccumulator, RowDigestSet

Sets = dict[frozenset[str], RowDigestSet]


def hash_projections(dataset: Dataset, drops: Iterable[frozenset[str]]) -> tuple[Profile, Sets]:
    """One pass: the dataset's profile and a digest set per dropped-column set.

    The sets are keyed by the dropped columns the dataset actually has.
    """
    accumulators = {drop: DigestAccumulator() for drop in dict.fromkeys(drops)}
    # On the active Dask cluster, if any (digest/cluster_rows.py): the same profile and sets.
    profile = hash_rows_anywhere(dataset, [(d, a.add) for d, a in accumulators.items()])
    return profile, {d & profile.columns: a.finish() for d, a in accumulators.items()}


def complete_sets(
    dataset: Dataset, profile: Profile, sets: Sets, drops: Iterable[frozenset[str]]
) -> Sets:
    """``sets`` plus those of ``drops`` it lacks (a second pass, only when needed)."""
    missing = [d for d in {d & profile.columns for d in drops} if d not in sets]
    if missing:
        _, more = hash_projections(dataset, missing)
        sets = {**sets, **more}
    return sets


class HashedDataset(Struct, frozen=True):
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
    profile, sets = hash_projections(dataset, [frozenset()])
    sets = complete_sets(dataset, profile, sets, [profile.constant])
    return HashedDataset(dataset, profile, sets)


def content_record(hashed: HashedDataset, blobs: dict[str, bytes]) -> dict[str, Any]:
    """``contentSets`` of a record; the sets' blobs are added to ``blobs`` by address."""
    out = {"all": set_entry(hashed.get(frozenset()), blobs)}
    varying = hashed.varying_drop()
    if varying:
        out["varying"] = {
            **set_entry(hashed.get(varying), blobs),
            "droppedColumns": sorted(varying),
        }
    return out


def set_entry(digest_set: RowDigestSet, blobs: dict[str, bytes]) -> dict[str, Any]:
    blob = digest_set.to_blob()
    address = "sha256:" + hashlib.sha256(blob).hexdigest()
    blobs[address] = blob
    return {"digestSet": address, "unique": digest_set.unique}


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
