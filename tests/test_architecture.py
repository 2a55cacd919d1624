"""The package keeps its shape (docs/architecture.md, issue 12): layers, no cycles, sizes.

The rules live in tools/shape.py (``python tools/shape.py`` prints every violation).
While the move to layers is under way, the violations that remain are listed below,
by a key without line numbers: a new violation fails, and so does a listed one that
has been fixed (delete it from the list), so the list can only shrink.
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

#: What is left to fix (issue 12). Never add to this list.
REMAINING: set[str] = {
    "cycle: mlspec_attest.signing.sigstore._compat <-> mlspec_attest.signing.sigstore.verify",
    "function: mlspec_attest/attestation/stage.py::sign_stage",
    "function: mlspec_attest/cli/bundle_cmd.py::verify",
    "function: mlspec_attest/cli/digest.py::digest",
    "function: mlspec_attest/cli/export_cmd.py::intoto_cmd",
    "function: mlspec_attest/cli/model_cmd.py::sign",
    "function: mlspec_attest/cli/sign.py::sign",
    "function: mlspec_attest/cli/verify.py::verify",
    "function: mlspec_attest/digest/engine.py::_drive_helper",
    "function: mlspec_attest/evidence/analysis.py::analyze_dataset",
    "function: mlspec_attest/evidence/analysis.py::remove_outliers",
    "function: mlspec_attest/evidence/dataschema.py::infer_schema",
    "function: mlspec_attest/evidence/dataschema.py::validate_dataset",
    "function: mlspec_attest/evidence/metrics.py::classification_metrics",
    "function: mlspec_attest/interop/intoto/export.py::export_intoto",
    "function: mlspec_attest/interop/oms/manifest.py::parse_statement",
    "function: mlspec_attest/interop/oms/signature.py::check_model",
    "function: mlspec_attest/interop/oms/trust.py::_verify_certificate",
    "function: mlspec_attest/policy/load.py::_ml_sections",
    "function: mlspec_attest/policy/load.py::compile_policy",
    "function: mlspec_attest/policy/objectives.py::_compile",
    "function: mlspec_attest/policy/objectives.py::evaluate_criterion",
    "function: mlspec_attest/signing/sigstore/_compat.py::verify_key_transparency",
    "function: mlspec_attest/signing/sigstore/verify.py::_verify_with_key",
    "function: mlspec_attest/verify/mlchecks.py::check_data_validation",
    "function: mlspec_attest/verify/mlchecks.py::check_objectives",
    "function: mlspec_attest/verify/mlchecks.py::check_separation",
    "function: mlspec_attest/verify/oms_evidence.py::check_oms_evidence",
    "function: mlspec_attest/verify/pipeline.py::accept",
    "function: mlspec_attest/verify/pipeline.py::check_artifacts",
    "layer: mlspec_attest/verify/oms_evidence.py -> mlspec_attest.interop.oms.manifest",
    "module: mlspec_attest/attestation/stage.py",
    "module: mlspec_attest/cli/sign.py",
    "module: mlspec_attest/digest/engine.py",
    "module: mlspec_attest/digest/manifest.py",
    "module: mlspec_attest/digest/rows.py",
    "module: mlspec_attest/evidence/analysis.py",
    "module: mlspec_attest/evidence/dataschema.py",
    "module: mlspec_attest/evidence/leakage.py",
    "module: mlspec_attest/evidence/metrics.py",
    "module: mlspec_attest/interop/intoto/verify.py",
    "module: mlspec_attest/interop/oms/manifest.py",
    "module: mlspec_attest/interop/oms/signature.py",
    "module: mlspec_attest/interop/oms/trust.py",
    "module: mlspec_attest/policy/load.py",
    "module: mlspec_attest/signing/sigstore/_compat.py",
    "module: mlspec_attest/signing/sigstore/verify.py",
    "module: mlspec_attest/verify/mlchecks.py",
    "module: mlspec_attest/verify/pipeline.py",
}
#: In-function imports of the package's own modules today; the target is
#: shape.MAX_FUNCTION_IMPORTS. Lower this number as they go; never raise it.
FUNCTION_IMPORTS_NOW = 171


@pytest.fixture(scope="module")
def modules() -> dict[str, object]:
    return shape.load_modules()


def test_no_new_violation(modules: dict[str, object]) -> None:
    found = {v.key: v.detail for v in shape.violations(modules)}
    new = {k: d for k, d in found.items() if k not in REMAINING}
    assert not new, "the package's shape got worse:\n" + "\n".join(
        f"  {k}  ({d})" for k, d in sorted(new.items())
    )


def test_fixed_violations_leave_the_list(modules: dict[str, object]) -> None:
    found = {v.key for v in shape.violations(modules)}
    fixed = sorted(REMAINING - found)
    assert not fixed, "fixed, delete from REMAINING in tests/test_architecture.py:\n" + "\n".join(
        f"  {k}" for k in fixed
    )


def test_function_imports_only_shrink(modules: dict[str, object]) -> None:
    count = len(shape.function_imports(modules))
    assert count <= FUNCTION_IMPORTS_NOW, shape.function_imports(modules)
    if count < FUNCTION_IMPORTS_NOW:
        pytest.fail(f"{count} in-function imports now: lower FUNCTION_IMPORTS_NOW to {count}")


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
