"""``DaskOptions``: where hashing runs, as the command line names it.

Apart from :mod:`mlspec_attest.digest.cluster` so that a command reads its options (and
finds that no cluster is named, the common case) without loading the cluster's code, and
apart from :mod:`mlspec_attest.digest.dask_client`, which every digest loads.
"""

from __future__ import annotations

from msgspec import Struct

from mlspec_attest.digest.dask_client import DEFAULT_RETRIES


class DaskOptions(Struct, frozen=True):
    """Where hashing runs: a scheduler's address, or a local cluster of ``workers`` processes
    (:func:`mlspec_attest.digest.cluster.session` connects; with neither, hash locally)."""

    scheduler: str | None = None
    workers: int | None = None
    retries: int = DEFAULT_RETRIES

    @property
    def enabled(self) -> bool:
        return bool(self.scheduler) or self.workers is not None
