"""mlspec-attest: supply-chain attestations for machine-learning pipelines.

Import cost matters (``mlspec-attest --help`` must stay fast), so the public
API below is loaded lazily on first use (PEP 562, as in ``policy/``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlspec_attest._version import __version__
from mlspec_attest.formats.lazy import lazy_exports

if TYPE_CHECKING:
    from mlspec_attest.api import StageSession, attest, stage

#: Each public name -> the module that defines it (the import above, for type checkers).
_LAZY = {"StageSession": "api", "attest": "api", "stage": "api"}

__all__ = ["StageSession", "__version__", "attest", "stage"]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
