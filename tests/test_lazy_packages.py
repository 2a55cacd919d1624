"""Packages whose public names load on first use (PEP 562) stay complete and honest.

The package itself, ``policy``, ``interop.intoto`` and ``verify.checks`` re-export their modules' names
through a ``_LAZY`` table (name -> module) instead of importing them all at start-up.
The table, ``__all__`` and the ``if TYPE_CHECKING:`` imports (what type checkers and
tools/shape.py read as the package's imports) must name the same things, and each name
must be the object its module defines.
"""

from __future__ import annotations

import ast
import importlib
import inspect

import pytest

LAZY_PACKAGES = [
    "mlspec_attest.policy",
    "mlspec_attest.interop.intoto",
    "mlspec_attest.verify.checks",
]


def type_checking_imports(package: str) -> dict[str, str]:
    """name -> module of the imports under ``if TYPE_CHECKING:`` in the package's __init__."""
    tree = ast.parse(inspect.getsource(importlib.import_module(package)))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module
                found.update({alias.name: stmt.module for alias in stmt.names})
    return found


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_the_table_all_and_the_type_checking_imports_agree(package: str) -> None:
    module = importlib.import_module(package)
    table = {name: f"{package}.{sub}" for name, sub in module._LAZY.items()}
    assert sorted(set(module.__all__) - {"__version__"}) == sorted(table)
    assert type_checking_imports(package) == table


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_name_is_its_modules_object(package: str) -> None:
    module = importlib.import_module(package)
    for name, sub in module._LAZY.items():
        assert getattr(module, name) is getattr(importlib.import_module(f"{package}.{sub}"), name)
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        module.nothing_here  # noqa: B018 - the attribute access is the test
