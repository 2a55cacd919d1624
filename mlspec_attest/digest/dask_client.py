"""The Dask client hashing runs on inside a session, or None: hash locally.

Kept apart from :mod:`mlspec_attest.digest.cluster` so that every digest asks "is a
cluster in use?" without loading the cluster's code: a verifier that never names a
scheduler does not import it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

DEFAULT_RETRIES = 2
"""Times a failed task is run again before the whole digest fails."""


_ACTIVE: ContextVar[Any] = ContextVar("mlspec_attest_dask_client", default=None)


def active() -> Any:
    """The Dask client of the enclosing session, or None (hash locally)."""
    return _ACTIVE.get()


def active_retries() -> int:
    client = active()
    return int(getattr(client, "_mlspec_retries", DEFAULT_RETRIES))


@contextlib.contextmanager
def use(client: Any, retries: int = DEFAULT_RETRIES) -> Iterator[Any]:
    """Hash on an existing ``distributed.Client`` inside the block (the Python API's way)."""
    client._mlspec_retries = retries
    token = _ACTIVE.set(client)
    try:
        yield client
    finally:
        _ACTIVE.reset(token)
