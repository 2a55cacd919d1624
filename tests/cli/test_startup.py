"""Commands load lazily: ``--help`` imports no command, a command imports only itself.

cli/main.py's table (name -> module, function, one-line help) is what ``--help`` prints, so the
command modules are free to import the library at module level (docs/cli.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from mlspec_attest.cli.main import COMMANDS, cli

PROBE = """\
import json, sys
from mlspec_attest.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(n for n in sys.modules if n.startswith("mlspec_attest."))), file=sys.stderr)
"""

COMMAND_MODULES = {f"mlspec_attest.cli.{module}" for module, _, _ in COMMANDS.values()}


def loaded_modules(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_imports_no_command_module() -> None:
    loaded = loaded_modules("--help")
    assert not loaded & COMMAND_MODULES
    assert not {
        m for m in loaded if m.startswith(("mlspec_attest.verify", "mlspec_attest.interop"))
    }


def test_a_command_loads_its_own_module_only() -> None:
    loaded = loaded_modules("stages", "--json")
    assert loaded & COMMAND_MODULES == {"mlspec_attest.cli.stages_cmd"}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_table_names_each_command(name: str) -> None:
    with click.Context(cli) as ctx:
        command = cli.get_command(ctx, name)
    assert isinstance(command, click.Command)
    assert command.name == name
    assert COMMANDS[name][2]  # the one-line help --help prints


def test_digest_loads_no_policy_signing_or_verification(tmp_path: Path) -> None:
    # `digest` is the command people time against sha256sum: it must not pay for the
    # policy, signing or verification stacks (a shared render module once pulled them in).
    target = tmp_path / "f.bin"
    target.write_bytes(b"x")
    loaded = loaded_modules("digest", str(target))
    assert "mlspec_attest.digest.artifact" in loaded
    heavy = ("mlspec_attest.policy", "mlspec_attest.signing", "mlspec_attest.verify")
    assert not {m for m in loaded if m.startswith(heavy)}, sorted(loaded)
