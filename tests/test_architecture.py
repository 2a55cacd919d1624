"""The package keeps its shape (docs/architecture.md, issue 12): layers, no cycles, sizes.

The rules live in tools/shape.py (``python tools/shape.py`` prints every violation): no
import cycle (in-function and type-checking imports count), imports only down the layers,
click and rich only in cli/, no module over 400 lines, no function over 60 lines, at most
five modules in the package root, few in-function imports. The last tests show that the
checker notices each kind of violation, so a broken checker cannot pass silently.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .support import PROJECT_ROOT


def _load_shape() -> ModuleType:
    spec = importlib.util.spec_from_file_location("shape", PROJECT_ROOT / "tools" / "shape.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["shape"] = module
    spec.loader.exec_module(module)
    return module


shape = _load_shape()


@pytest.fixture(scope="module")
def modules() -> dict[str, object]:
    return shape.load_modules()


def test_the_package_keeps_its_shape(modules: dict[str, object]) -> None:
    found = shape.violations(modules)
    assert not found, "the package's shape got worse (docs/architecture.md):\n" + "\n".join(
        f"  {v.key}  ({v.detail})" for v in found
    )


def test_in_function_imports_stay_few(modules: dict[str, object]) -> None:
    inside = shape.function_imports(modules)
    assert len(inside) <= shape.MAX_FUNCTION_IMPORTS, "\n".join(inside)


# --- the checker itself notices what it must --------------------------------------------


def _fake(tmp: Path, name: str, source: str) -> object:
    path = tmp / "mlspec_attest" / (name.replace(".", "/") + ".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    return shape.Module(name, path, ast.parse(source), len(source.splitlines()))


@pytest.fixture
def fake_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(shape, "ROOT", tmp_path)
    return tmp_path


def _check(fake_root: Path, sources: dict[str, str]) -> set[str]:
    modules = {n: _fake(fake_root, n, s) for n, s in sources.items()}
    for m in modules.values():
        shape.collect_imports(m, modules)
    return {v.key for v in shape.violations(modules)}


def test_a_layer_violation_is_caught(fake_root: Path) -> None:
    found = _check(
        fake_root,
        {"formats.x": "from mlspec_attest.signing import keys\n", "signing.keys": "X = 1\n"},
    )
    assert "layer: mlspec_attest/formats/x.py -> mlspec_attest.signing.keys" in found


def test_a_cycle_is_caught_even_through_type_checking_and_functions(fake_root: Path) -> None:
    found = _check(
        fake_root,
        {
            "verify.a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from mlspec_attest.verify import b\n",
            "verify.b": "def f():\n    from mlspec_attest.verify.a import X\n",
        },
    )
    assert "cycle: mlspec_attest.verify.a <-> mlspec_attest.verify.b" in found


def test_sizes_and_click_are_caught(fake_root: Path) -> None:
    body = "    x = 1\n" * (shape.MAX_FUNCTION_LINES + 1)
    big = "import click\n" + "Y = 2\n" * shape.MAX_MODULE_LINES + "def f():\n" + body
    found = _check(fake_root, {"digest.big": big})
    assert {
        "module: mlspec_attest/digest/big.py",
        "function: mlspec_attest/digest/big.py::f",
        "confined: mlspec_attest/digest/big.py -> click",
    } <= found


def test_a_lazy_name_must_be_imported_for_type_checking(fake_root: Path) -> None:
    # A PEP 562 table loads through importlib, which the checker cannot follow: the
    # TYPE_CHECKING import is what makes the dependency visible to the layer rule.
    lazy = "import importlib\n_LAZY = {{'f': 'x', 'g': 'y'}}\n{extra}"
    declared = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from mlspec_attest.signing.x import f\n"
    )
    modules = {"signing.x": "def f(): ...\n", "signing.y": "def g(): ...\n"}
    found = _check(fake_root, {"signing": lazy.format(extra=declared), **modules})
    assert {k for k in found if k.startswith("lazy:")} == {
        "lazy: mlspec_attest/signing.py -> mlspec_attest.signing.y"
    }


def test_relative_and_in_function_imports_are_counted(fake_root: Path) -> None:
    modules = {
        n: _fake(fake_root, n, s)
        for n, s in {
            "policy.load": "def f():\n    from ..formats import yamlio\n",
            "formats.yamlio": "X = 1\n",
        }.items()
    }
    for m in modules.values():
        shape.collect_imports(m, modules)
    assert shape.function_imports(modules) == [
        "mlspec_attest/policy/load.py:2 -> mlspec_attest.formats.yamlio"
    ]


def test_a_dataclass_in_the_package_is_caught(fake_root: Path) -> None:
    # Value types are msgspec Structs: a frozen dataclass costs about 1 ms to create on
    # Python 3.11, paid by every command that loads its module.
    found = _check(
        fake_root,
        {
            "policy.a": "from dataclasses import dataclass\n",
            "policy.b": "import dataclasses\n",
            "policy.c": "from msgspec import Struct\n",
        },
    )
    assert {
        "replaced: mlspec_attest/policy/a.py -> dataclasses",
        "replaced: mlspec_attest/policy/b.py -> dataclasses",
    } <= found
    assert not any(key.startswith("replaced: mlspec_attest/policy/c.py") for key in found)
