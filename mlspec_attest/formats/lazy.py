"""Public names of a package loaded on first use (PEP 562), one way for every package.

A package that re-exports names from its modules lists them in a module-level ``_LAZY``
table (name -> submodule, what ``tools/shape.py`` reads) and ends with::

    __getattr__, __dir__ = lazy_exports(__name__, _LAZY)

so that importing the package imports none of them until one is used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` for the names in ``table``."""

    def getattr_(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        vars(sys.modules[package])[name] = value  # found once; later lookups are plain
        return value

    def dir_() -> list[str]:
        return sorted({*vars(sys.modules[package]), *table})

    return getattr_, dir_
