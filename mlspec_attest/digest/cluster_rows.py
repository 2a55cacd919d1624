"""Row digests on a Dask cluster: a dataset's shards read by the workers, merged in order.

:func:`hash_rows_anywhere` is :func:`mlspec_attest.digest.rows.hash_rows` with
the same arguments and the same result. Outside a Dask session
(:func:`mlspec_attest.digest.cluster.session`), or for a dataset of one shard,
it *is* that function. Inside one, each tabular shard (a per-example file
dataset: a run of files) is one task that calls ``hash_rows`` on a dataset of
its own; the client sends every digest to the sinks in shard order, then row
order, as the local pass does, and merges the shards' profiles into the one the
whole dataset has:

* rows add up; ``files`` is the dataset's shard count; columns are the union;
* a column is *constant* (:class:`~mlspec_attest.digest.rows.Profile`) when the
  local pass would say so: it was seen by the dataset's first row, and every row
  holds the value that row holds. Each task reports, for the columns constant
  within its shard, the digest of that column's value alone (a projection that
  keeps only it, read from the shard's first row); equal digests are equal
  values, as the canonical form is exact (docs/leakage.md).

JSON Lines datasets are read on the client: which columns a record names is
known only record by record, so their profile is left to the one local pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from msgspec.structs import replace

from mlspec_attest import digest
from mlspec_attest.digest.dask_client import active as dask_client
from mlspec_attest.digest.datasets import Dataset
from mlspec_attest.digest.rows import Profile, Sink, hash_rows
from mlspec_attest.formats.rowform import row_digest

DIGEST_SIZE = 32
Projections = Sequence[tuple[frozenset[str], Sink]]
_DISTRIBUTED_FORMATS = frozenset({"csv", "tsv", "parquet", "files"})


class _Enough(Exception):
    """Raised by a sink once it has what it needs: ends a pass early."""


def hash_rows_anywhere(dataset: Dataset, projections: Projections) -> Profile:
    """:func:`~mlspec_attest.digest.rows.hash_rows`, on the active Dask cluster if there is one."""
    client = dask_client()
    formats = {fmt for _, fmt in dataset.shards}
    if client is None or len(dataset.shards) < 2 or not formats <= _DISTRIBUTED_FORMATS:
        return hash_rows(dataset, projections)
    groups = _groups(dataset, max(1, sum(client.nthreads().values())))
    drops = [drop for drop, _ in projections]
    results = digest.run_tasks(client, shard_task, groups, drops=drops)
    for _, blobs, _ in results:
        for (_, sink), blob in zip(projections, blobs, strict=True):
            for start in range(0, len(blob), DIGEST_SIZE):
                sink(blob[start : start + DIGEST_SIZE])
    profiles = [profile for profile, _, _ in results]
    rows = sum(p.rows for p in profiles)
    columns = frozenset[str]().union(*(p.columns for p in profiles))
    tabular = [
        (profile, firsts)
        for (profile, _, firsts), group in zip(results, groups, strict=True)
        if group.format != "files"
    ]
    constant = _constant(tabular) if rows >= 2 else frozenset[str]()
    return Profile(rows, len(dataset.shards), columns, constant)


def _groups(dataset: Dataset, threads: int) -> list[Dataset]:
    """One dataset per tabular shard; per-example files in contiguous runs."""
    out: list[Dataset] = []
    run: list[tuple[Any, str]] = []
    per_run = max(1, -(-sum(1 for _, f in dataset.shards if f == "files") // (threads * 4)))

    def flush() -> None:
        if run:
            known = {str(p): dataset.known[str(p)] for p, _ in run if str(p) in dataset.known}
            out.append(replace(dataset, format="files", shards=tuple(run), known=known))
            run.clear()

    for shard, fmt in dataset.shards:
        if fmt == "files":
            run.append((shard, fmt))
            if len(run) >= per_run:
                flush()
            continue
        flush()
        out.append(replace(dataset, format=fmt, shards=((shard, fmt),), known={}))
    flush()
    return out


def shard_task(
    dataset: Dataset, drops: Sequence[frozenset[str]]
) -> tuple[Profile, list[bytes], dict[str, bytes]]:
    """One task: the shard's profile, its digests per projection (concatenated), and the
    value digest of each column constant within it (from its first row)."""
    outs = [bytearray() for _ in drops]
    profile = hash_rows(dataset, [(d, out.extend) for d, out in zip(drops, outs, strict=True)])
    return profile, [bytes(o) for o in outs], _first_values(dataset, profile)


def _first_values(dataset: Dataset, profile: Profile) -> dict[str, bytes]:
    """Digest of the first row's value of every column that holds one value in the shard."""
    if dataset.format == "files" or not profile.rows:
        return {}
    wanted = sorted(profile.constant if profile.rows >= 2 else profile.columns)
    if not wanted:
        return {}
    found: dict[str, bytes] = {}

    def keeper(name: str) -> Sink:
        def sink(digest: bytes) -> None:
            found.setdefault(name, digest)
            if len(found) == len(wanted):
                raise _Enough

        return sink

    projections = [(profile.columns - {name}, keeper(name)) for name in wanted]
    with contextlib.suppress(_Enough):  # the first row is all it takes
        hash_rows(dataset, projections)
    return found


def _constant(shards: Sequence[tuple[Profile, dict[str, bytes]]]) -> frozenset[str]:
    """The columns the local pass finds constant, from the tabular shards in order.

    The first row is the first row of the first shard with rows; the columns it
    saw are those of the shards up to it. A shard without the column holds it
    null (absent) in every row; one where it varies rules it out.
    """
    absent = row_digest({})
    first = next((k for k, (p, _) in enumerate(shards) if p.rows), None)
    if first is None:
        return frozenset()
    seen = frozenset[str]().union(*(p.columns for p, _ in shards[: first + 1]))
    constant = set()
    for name in seen:
        values = set()
        for profile, firsts in shards:
            if not profile.rows:
                continue
            if name not in profile.columns:
                values.add(absent)
            elif name in firsts:
                values.add(firsts[name])
            else:
                break
        else:
            if len(values) == 1:
                constant.add(name)
    return frozenset(constant)
