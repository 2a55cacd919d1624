"""Hashing on a Dask cluster: the same digests, computed by many machines.

:func:`session` connects to a scheduler (``--dask-scheduler ADDR``) or starts a
``LocalCluster`` (``--dask-workers N``) and makes it *active* for the code it
wraps: :func:`mlspec_attest.digest.artifact.digest_path` then hashes files
(or shards) as Dask tasks (:class:`ClusterHashing`), and the leakage proof's
row digests are read shard by shard on the workers
(:mod:`mlspec_attest.digest.cluster_rows`).

Every task calls the package's own hashers (the engine's one file hasher
:func:`~mlspec_attest.digest.engine.digest_file`, its shard reader, the
streaming object hasher of :mod:`~mlspec_attest.digest.remote`), and the client
puts the results back in manifest order, so the manifest and root are
byte-identical to the local engine's. A task that fails is retried
(``retries``); one that still fails, or a worker lost too often, fails the whole
digest: no manifest is ever built from part of the files.

dask and distributed are imported on first use (the ``dask`` extra).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from mlspec_attest.digest._reader import FileReader, open_regular
from mlspec_attest.digest.dask_client import active_retries, use
from mlspec_attest.digest.dask_options import DaskOptions
from mlspec_attest.digest.engine import ProgressSink, digest_file, shard_bounds
from mlspec_attest.digest.remote import digest_object_url
from mlspec_attest.digest.scheme import DigestScheme
from mlspec_attest.errors import BackendError, BadInputError, MlspecError, UsageError, require
from mlspec_attest.formats.limits import MAX_SHARDS
from mlspec_attest.formats.objecturl import is_object_url

_LOGGING_ERROR = 40

BATCHES_PER_THREAD = 4
"""Tasks per worker thread: enough to balance uneven files, few enough to be cheap."""
CONNECT_TIMEOUT = "10s"
"""How long to wait for a scheduler before giving up (exit 4)."""


@contextlib.contextmanager
def session(options: DaskOptions) -> Iterator[Any]:
    """Connect to (or start) the cluster ``options`` name; hashing inside runs on it."""
    if not options.enabled:
        yield None
        return
    if options.scheduler and options.workers is not None:
        raise UsageError("name a Dask scheduler or a number of local Dask workers, not both")
    distributed = require("distributed", "hashing on a Dask cluster")
    with _connect(distributed, options) as client, use(client, options.retries):
        yield client


@contextlib.contextmanager
def _connect(distributed: Any, options: DaskOptions) -> Iterator[Any]:
    cluster = None
    try:
        if options.scheduler:
            client = distributed.Client(options.scheduler, timeout=CONNECT_TIMEOUT)
        else:
            if options.workers is None or options.workers < 1:
                raise UsageError("a local Dask cluster needs at least one worker")
            cluster = distributed.LocalCluster(
                n_workers=options.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # never the default 8787 another cluster holds
                silence_logs=_LOGGING_ERROR,  # logging.ERROR, without importing logging
            )
            client = distributed.Client(cluster)
    except MlspecError:
        raise
    except (OSError, TimeoutError) as exc:
        where = options.scheduler or "a local cluster"
        raise BackendError(
            f"cannot reach the Dask scheduler at {where} ({exc})",
            remedy="check the address (tcp://host:8786) and that the scheduler runs",
        ) from exc
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ------------------------------------------------------------------ tasks
def hash_files_task(locators: Sequence[str], algorithm: str) -> list[tuple[bytes, int]]:
    """One task: ``(raw digest, size)`` of each local path or object URL, in order."""
    return [
        digest_object_url(loc, algorithm) if is_object_url(loc) else digest_file(loc, algorithm)
        for loc in locators
    ]


def hash_ranges_task(jobs: Sequence[tuple[str, int, int]], algorithm: str) -> list[bytes]:
    """One task: the digest of each ``(locator, start, end)`` byte range (model-signing shards)."""
    reader = FileReader(algorithm, None)
    return [
        digest_object_url(loc, algorithm, start, end)[0]
        if is_object_url(loc)
        else reader.digest_range(loc, start, end)
        for loc, start, end in jobs
    ]


def batches(count: int, parts: int) -> list[range]:
    """``range(count)`` cut into at most ``parts`` contiguous pieces of near-equal length."""
    parts = max(1, min(parts, count))
    step, extra = divmod(count, parts)
    out, start = [], 0
    for k in range(parts):
        end = start + step + (1 if k < extra else 0)
        out.append(range(start, end))
        start = end
    return [r for r in out if len(r)]


def run_tasks(
    client: Any,
    func: Callable[..., Any],
    args: Sequence[Any],
    *,
    progress: ProgressSink | None = None,
    weights: Sequence[int] = (),
    **kwargs: Any,
) -> list[Any]:
    """Run ``func(arg, **kwargs)`` for every arg on the cluster; all results, in order.

    A task is retried :func:`active_retries` times; if one still fails, the rest
    are cancelled and the failure is raised (an :class:`MlspecError` as it was,
    anything else as the backend's), so no caller ever sees part of the results.
    """
    distributed = require("distributed", "hashing on a Dask cluster")
    futures = client.map(func, list(args), retries=active_retries(), pure=False, **kwargs)
    index = {f.key: i for i, f in enumerate(futures)}
    try:
        for future in distributed.as_completed(futures):
            future.result()  # raises the task's own error once its retries are spent
            if progress is not None and weights:
                progress.advance(0, weights[index[future.key]])
        return list(client.gather(futures))
    except MlspecError:
        client.cancel(futures)
        raise
    except Exception as exc:
        client.cancel(futures)
        raise BackendError(
            f"hashing on the Dask cluster failed ({type(exc).__name__}: {exc})",
            remedy="check the workers' logs; every worker needs mlspec-attest and read "
            "access to the data (docs/scale.md)",
        ) from exc


class ClusterHashing:
    """Files or shards hashed as Dask tasks, returned in the engine's shapes and order."""

    def __init__(
        self,
        client: Any,
        locators: Sequence[str],
        scheme: DigestScheme,
        *,
        sizes: Sequence[int] | None = None,
        progress: ProgressSink | None = None,
        label: str = "",
    ) -> None:
        self.client = client
        self.locators = locators
        self.algorithm = scheme.algorithm
        self.shard_size = scheme.shard_size
        self.sizes = sizes
        self.progress = progress
        self.label = label
        self.threads = max(1, sum(client.nthreads().values()))

    @contextlib.contextmanager
    def _task(self, files: int, total: int | None) -> Iterator[None]:
        if self.progress is not None:
            self.progress.begin(self.label, files, total)
        try:
            yield
        finally:
            if self.progress is not None:
                self.progress.end()

    def files(self) -> list[tuple[bytes, int]]:
        locators = self.locators
        parts = batches(len(locators), self.threads * BATCHES_PER_THREAD)
        args = [[locators[i] for i in part] for part in parts]
        with self._task(len(locators), None):
            results = run_tasks(
                self.client,
                hash_files_task,
                args,
                progress=self.progress,
                weights=[len(a) for a in args],
                algorithm=self.algorithm,
            )
        return [item for chunk in results for item in chunk]

    def shards(self) -> list[tuple[list[bytes], int]]:
        locators = self.locators
        sizes = list(self.sizes) if self.sizes is not None else [_size(p) for p in locators]
        bounds = [shard_bounds(size, self.shard_size) for size in sizes]
        jobs = [(i, s, e) for i, b in enumerate(bounds) for s, e in b]
        if len(jobs) > MAX_SHARDS:
            raise BadInputError(
                f"{len(sizes)} file(s) would be split into {len(jobs)} shards "
                f"(the limit is {MAX_SHARDS})",
                remedy="use a larger shard size",
            )
        parts = batches(len(jobs), self.threads * BATCHES_PER_THREAD)
        args = [[(locators[jobs[j][0]], jobs[j][1], jobs[j][2]) for j in part] for part in parts]
        with self._task(len(locators), sum(sizes)):
            results = run_tasks(self.client, hash_ranges_task, args, algorithm=self.algorithm)
        flat = iter([d for chunk in results for d in chunk])
        return [([next(flat) for _ in b], size) for b, size in zip(bounds, sizes, strict=True)]


def _size(path: str) -> int:
    fd, st = open_regular(path)
    os.close(fd)
    return st.st_size
