"""mlspec-attest: supply-chain attestations for machine-learning pipelines.

Import cost matters (``mlspec-attest --help`` must stay fast), so the public
API below is loaded lazily on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlspec_attest._version import __version__

__all__ = ["StageSession", "__version__", "attest", "stage"]

if TYPE_CHECKING:
    from mlspec_attest.api import StageSession, attest, stage


def __getattr__(name: str) -> Any:
    if name in ("stage", "attest", "StageSession"):
        from mlspec_attest import api

        return getattr(api, name)
    raise AttributeError(f"module 'mlspec_attest' has no attribute {name!r}")
