"""Messages name the caller's inputs in the caller's terms (formats/inputs.py).

The library names a parameter (``run_id``), the CLI its flag (``--run-id``). Checked
three ways: the source (no flag spelled in a library string, every ``named`` call
resolvable and made at run time, both tables agreeing), a library call, and the same
failure through the CLI.
"""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from mlspec_attest.cli.main import main
from mlspec_attest.cli.names import CLI_NAMES
from mlspec_attest.errors import BadInputError, UsageError
from mlspec_attest.formats.inputs import LIBRARY_NAMES, front_end_names, named
from mlspec_attest.interop.oms.trust import trust_from_options
from mlspec_attest.store.ledger import AttestationStore

PACKAGE = Path(__file__).resolve().parent.parent / "mlspec_attest"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")


def _library_modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if p.relative_to(PACKAGE).parts[0] != "cli"]


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string statements (module, class, function and attribute docs)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def _named_calls(tree: ast.Module) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "named"
    ]


def test_no_library_string_spells_a_cli_flag() -> None:
    offenders = []
    for path in _library_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
                and FLAG.search(node.value)
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value[:60]!r}")
    assert offenders == []


def test_every_named_input_is_known_and_used() -> None:
    used: set[str] = set()
    unknown = []
    for path in _library_modules():
        for call in _named_calls(ast.parse(path.read_text(encoding="utf-8"))):
            first = call.args[0] if call.args else None
            assert isinstance(first, ast.Constant), f"{path}:{call.lineno}: name by literal"
            used.add(first.value)
            if first.value not in LIBRARY_NAMES:
                unknown.append(f"{path.relative_to(PACKAGE)}:{call.lineno}: {first.value}")
    assert unknown == []
    assert sorted(set(LIBRARY_NAMES) - used) == []


def test_named_is_never_called_at_import_time() -> None:
    """A message built at import would stay in the library's words under the CLI."""
    early = []
    for path in _library_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inside: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                inside.update(id(n) for n in ast.walk(node))
        early += [
            f"{path.relative_to(PACKAGE)}:{c.lineno}"
            for c in _named_calls(tree)
            if id(c) not in inside
        ]
    assert early == []


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def test_the_cli_names_every_input_with_the_same_fields() -> None:
    assert sorted(set(LIBRARY_NAMES) ^ set(CLI_NAMES)) == []
    for key, template in CLI_NAMES.items():
        assert _fields(template) == _fields(LIBRARY_NAMES[key]), key
        assert template != LIBRARY_NAMES[key], f"{key}: the CLI adds nothing"


def test_front_end_names_nest_restore_and_refuse_unknown_inputs() -> None:
    assert named("run_id_only") == "run_id"
    with front_end_names({"run_id_only": "--run"}):
        assert named("run_id_only") == "--run"
        with front_end_names({"run_id_only": "RUN"}):
            assert named("run_id_only") == "RUN"
        assert named("run_id_only") == "--run"
    assert named("run_id_only") == "run_id"
    with (
        pytest.raises(ValueError, match="unknown inputs: no_such_input"),
        front_end_names({"no_such_input": "x"}),
    ):
        pass
    assert named("artifact_role", role="model") == "artifacts['model']"


def test_a_library_error_names_the_parameter(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        trust_from_options(None, (), None, None, None)
    assert "public_key, certificate_chain, or trust_config" in info.value.message
    assert "--" not in info.value.message
    store = AttestationStore(tmp_path / "empty")
    with pytest.raises(BadInputError) as missing:
        store.resolve_run(None)
    assert missing.value.remedy is not None
    assert missing.value.remedy.startswith("pass store pointing at")


def test_the_same_error_through_the_cli_names_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"w")
    with pytest.raises(SystemExit) as exit_info:
        main(["model", "verify", str(model), "--signature", str(tmp_path / "none.sig")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--public-key, --certificate-chain, or --trust-config" in err
    assert named("public_key") == "public_key"  # the CLI's names ended with its run


def test_the_click_group_names_flags_without_main(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mlspec_attest.cli.main import cli

    bundle = tmp_path / "b.sigstore.json"
    bundle.write_text("{}")
    result = CliRunner().invoke(cli, ["bundle", "verify", str(bundle), "--key", str(bundle)])
    assert isinstance(result.exception, UsageError)
    assert result.exception.message == (
        "name what was signed: --artifact FILE or --digest sha256:HEX"
    )
    assert named("artifact") == "artifact"  # restored after the command
