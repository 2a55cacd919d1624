"""mlspec-attest: supply-chain attestations for machine-learning pipelines.

Import cost matters (``mlspec-attest --help`` must stay fast), so the public
API below is loaded lazily on first use (PEP 562, as in ``policy/``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlspec_attest._version import __version__

if TYPE_CHECKING:
    from mlspec_attest.api import StageSession, attest, stage

#: Each public name -> the module that defines it (the import above, for type checkers).
_LAZY = {"StageSession": "api", "attest": "api", "stage": "api"}

__all__ = ["StageSession", "__version__", "attest", "stage"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
