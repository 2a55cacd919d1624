"""Third-party packages imported on first use: one way in, one error when one is missing.

Every module that needs a package which may be absent imports it here
(:func:`require`) or reports a failed import here (:func:`missing`). A missing
package is a :class:`~mlspec_attest.errors.BackendError` (exit 4) worded one way
wherever it happens::

    error: <feature> needs <package>, which is not installed
      fix: pip install 'mlspec-attest[<extra>]'

Only heavy or optional features have an extra (:data:`PACKAGES`): ``metrics``
(scikit-learn, numpy) and ``parquet`` (pyarrow); ``all`` installs every feature.
in-toto, securesystemslib, sigstore, blake3 and cbor2 are core dependencies, so
their absence means a broken installation, and the fix names the plain install
(``pip install 'mlspec-attest'``), which brings missing dependencies back.

Imports stay lazy: nothing here imports a listed package until a feature asks
for it, so ``--help`` and ``sign`` with a local key never load sigstore.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from .errors import BackendError

#: Top-level module -> (the distribution pip installs, the extra that brings it;
#: ``None`` for a core dependency).
PACKAGES: dict[str, tuple[str, str | None]] = {
    "sklearn": ("scikit-learn", "metrics"),
    "numpy": ("numpy", "metrics"),
    "pyarrow": ("pyarrow", "parquet"),
    "blake3": ("blake3", None),
    "cbor2": ("cbor2", None),
    "in_toto": ("in-toto", None),
    "securesystemslib": ("securesystemslib", None),
    "sigstore": ("sigstore", None),
    # sigstore's own dependencies, imported by name where sigstore's API needs them.
    "sigstore_models": ("sigstore-models", None),
    "rfc3161_client": ("rfc3161-client", None),
    "requests": ("requests", None),
    "celpy": ("cel-python", None),
}


def install_hint(extra: str | None) -> str:
    """The one fix for a missing package: the extra that installs it, or the core install."""
    if extra is None:
        return "pip install 'mlspec-attest'"
    return f"pip install 'mlspec-attest[{extra}]'"


def _installed(top: str) -> bool:
    if top in sys.modules:
        return sys.modules[top] is not None
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def missing(module: str, feature: str, exc: ImportError) -> BackendError:
    """The error for ``feature`` when importing ``module`` (or a module of its package)
    failed with ``exc``. The package named is the one whose import failed, when known."""
    top = module.partition(".")[0]
    failed = (exc.name or "").partition(".")[0]
    if failed in PACKAGES and failed != top:
        top = failed
    distribution, extra = PACKAGES[top]
    if _installed(top):
        # Present but broken (a wrong version, a missing compiled part): say what failed.
        message = f"{feature} needs {distribution}, which cannot be imported ({exc})"
    else:
        message = f"{feature} needs {distribution}, which is not installed"
    return BackendError(message, remedy=install_hint(extra))


def require(module: str, feature: str) -> ModuleType:
    """``importlib.import_module(module)``, or :func:`missing`'s error for ``feature``."""
    if module.partition(".")[0] not in PACKAGES:
        raise ValueError(f"{module!r} is not a package mlspec_attest.extras knows")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing(module, feature, exc) from exc
