"""The docs say what is true: the README's examples run, docs/cli.md's help is the real help.

* The README's "5-minute walkthrough" is run command by command, as printed (heredocs
  included), with a shell in a temporary directory and this checkout's ``mlspec-attest`` first
  on PATH; each command must end with the exit status the README shows (``[exit N]``, else 0)
  and print the first line the README shows, once key ids, run ids and times are masked.
* The README's Python API example is saved and run the way the README says.
* Every ``Usage: mlspec-attest ...`` block of docs/cli.md is the command's real ``--help`` at
  the width the docs are written at, and every command has one.

To regenerate a help block: ``COLUMNS=78 mlspec-attest COMMAND... --help``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import mlspec_attest
from mlspec_attest.cli.main import cli

from .support import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
CLI_MD = PROJECT_ROOT / "docs" / "cli.md"

#: The terminal width docs/cli.md's help blocks are written at (click wraps at this - 2).
HELP_WIDTH = 78

#: The venv this suite runs in: its bin holds the ``mlspec-attest`` the README's commands use.
VENV_BIN = Path(sys.executable).parent

COMMAND_TIMEOUT = 120


# -- Markdown -------------------------------------------------------------------------------


def _section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section, up to the next ``## ``."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README.md has no '## {heading}' section"
    return match.group(1)


def _fences(text: str, info: str | None = None) -> list[str]:
    """The bodies of the fenced blocks in ``text`` (only ```info blocks if given)."""
    blocks = re.findall(r"^```([\w-]*)\n(.*?)^```\s*$", text, re.S | re.M)
    return [body for tag, body in blocks if info is None or tag == info]


@dataclass
class Command:
    """One ``$ `` command of a console block: its text, the status and output shown."""

    text: str
    exit_code: int
    output: list[str]


def _console_commands(block: str) -> list[Command]:
    """Split a console block into commands; a heredoc's lines belong to its command."""
    commands: list[Command] = []
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.startswith("$ "):
            assert commands, f"console block starts with output, not a command: {line!r}"
            status = re.fullmatch(r"\[exit (\d+)\]", line.strip())
            if status:
                commands[-1].exit_code = int(status.group(1))
            else:
                commands[-1].output.append(line)
            continue
        text = line[2:]
        heredoc = re.search(r"<<-?\s*(['\"]?)(\w+)\1", text)
        if heredoc:
            end = heredoc.group(2)
            while i < len(lines) and lines[i].strip() != end:
                text += "\n" + lines[i]
                i += 1
            assert i < len(lines), f"heredoc without its {end} line: {text!r}"
            text += "\n" + lines[i]
            i += 1
        commands.append(Command(text, 0, []))
    return commands


def _mask(line: str) -> str:
    """A line with what differs from run to run (run ids, times, hex ids) masked."""
    line = re.sub(r"\d{8}T\d{6}Z-[0-9a-f]{12}", "<run>", line)
    line = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?", "<time>", line)
    line = re.sub(r"[0-9a-f]{8,}", "<hex>", line)
    return line.rstrip()


# -- Running console commands ---------------------------------------------------------------


def _environment() -> dict[str, str]:
    """The test process's environment (MLSPEC_* already cleared), this venv's bin first."""
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    return env


def _check_console_script(env: dict[str, str], cwd: Path) -> None:
    """``mlspec-attest`` resolves to this venv's console script, running this checkout's code."""
    script = VENV_BIN / "mlspec-attest"
    assert script.is_file(), (
        f"no mlspec-attest console script in {VENV_BIN} (the venv of {sys.executable}); "
        "install the checkout into it: pip install -e ."
    )
    found = subprocess.run(
        ["bash", "-c", "command -v mlspec-attest"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert found == str(script)
    imported = subprocess.run(
        [str(VENV_BIN / "python"), "-c", "import mlspec_attest; print(mlspec_attest.__file__)"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(imported).resolve() == Path(mlspec_attest.__file__).resolve()


def _run_console(
    commands: list[Command],
    *,
    start: Path,
    temp: Path,
    before: dict[str, str] | None = None,
) -> None:
    """Run ``commands`` in order, each in its own ``bash -c``, following their ``cd``s.

    The first command runs in ``start`` and must ``cd`` into ``temp``; every later one runs
    where the previous one left off, which must stay inside ``temp``. ``before`` maps file
    names to contents to write into the working directory before the first command run there.
    """
    env = _environment()
    _check_console_script(env, temp.parent)
    cwd_file = temp / ".cwd"
    cwd = start
    pending = dict(before or {})
    assert commands, "no commands to run"
    assert f"cd {temp}" in commands[0].text or cwd == temp, (
        f"the first command must cd into the temporary directory: {commands[0].text!r}"
    )
    for number, command in enumerate(commands, 1):
        if cwd.is_relative_to(temp):
            for name, content in pending.items():
                (cwd / name).write_text(content)
            pending.clear()
        script = (
            f'{command.text}\n__status=$?\npwd > {shlex.quote(str(cwd_file))}\nexit "$__status"'
        )
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        output = done.stdout.decode("utf-8", "replace")
        where = f"command {number} ({command.text.splitlines()[0]!r})"
        assert done.returncode == command.exit_code, (
            f"{where} exited {done.returncode}, the README shows {command.exit_code}:\n{output}"
        )
        shown = _mask(command.output[0]) if command.output else ""
        printed = _mask(output.splitlines()[0]) if output else ""
        assert printed == shown, (
            f"{where} printed first:\n  {printed}\nthe README shows:\n  {shown}"
        )
        cwd = Path(cwd_file.read_text().strip())
        assert cwd.is_relative_to(temp), f"{where} left the temporary directory for {cwd}"
    assert not pending, f"no command ran in the temporary directory to use {sorted(pending)}"


# -- README ---------------------------------------------------------------------------------


def test_readme_walkthrough_runs_as_shown(tmp_path: Path) -> None:
    """Every walkthrough command exits as the README shows and starts its output the same."""
    body = _section(README.read_text(encoding="utf-8"), "5-minute walkthrough")
    commands = [c for block in _fences(body, "console") for c in _console_commands(block)]
    install = [c for c in commands if "pip install" in c.text]
    assert len(install) == 1, "expected the one install line (skipped: this venv is installed)"
    commands.remove(install[0])
    quick = tmp_path / "quick"
    for command in commands:
        command.text = command.text.replace("/tmp/quick", str(quick))
    assert len(commands) >= 15, [c.text for c in commands]
    assert any(c.exit_code for c in commands), "the walkthrough shows a denial"
    _run_console(commands, start=tmp_path, temp=quick)


def test_readme_python_api_example_runs_as_shown(tmp_path: Path) -> None:
    """The Python API example, saved as the README says, signs its three stages."""
    body = _section(README.read_text(encoding="utf-8"), "Python API")
    (code,) = _fences(body, "python")
    commands = [c for block in _fences(body, "console") for c in _console_commands(block)]
    directory = tmp_path / "api"
    for command in commands:
        command.text = command.text.replace("/tmp/api", str(directory))
    # The README runs its first command from the repository root (it copies keys-example/).
    _run_console(commands, start=PROJECT_ROOT, temp=directory, before={"stages.py": code})
    runs = list((directory / ".mlspec/attestations/runs").iterdir())
    assert len(runs) == 1
    assert sorted(p.name.split(".")[0] for p in runs[0].iterdir()) == [
        "evaluate",
        "package",
        "train",
    ]


# -- docs/cli.md help blocks ----------------------------------------------------------------


def _help_blocks() -> list[tuple[tuple[str, ...], str]]:
    """(command path, block text) for each ``Usage: mlspec-attest ...`` block of docs/cli.md."""
    blocks = []
    for body in _fences(CLI_MD.read_text(encoding="utf-8")):
        usage = re.match(r"Usage: mlspec-attest((?: [a-z][a-z0-9-]*)*) \[OPTIONS\]", body)
        if usage:
            blocks.append((tuple(usage.group(1).split()), body))
    return blocks


HELP_BLOCKS = _help_blocks()


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the CLI, groups included (the root is ``()``)."""
    ctx = click.Context(group)
    paths = [prefix]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            paths += _all_commands(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


@pytest.mark.parametrize(
    ("path", "block"), HELP_BLOCKS, ids=[" ".join(p) or "mlspec-attest" for p, _ in HELP_BLOCKS]
)
def test_cli_md_help_block_is_the_real_help(path: tuple[str, ...], block: str) -> None:
    result = CliRunner().invoke(
        cli, [*path, "--help"], prog_name="mlspec-attest", terminal_width=HELP_WIDTH
    )
    assert result.exit_code == 0, result.output
    assert result.output == block, (
        f"docs/cli.md's help of {' '.join(('mlspec-attest', *path))} is stale; regenerate it "
        f"with: COLUMNS={HELP_WIDTH} mlspec-attest {' '.join(path)} --help"
    )


def test_cli_md_has_the_help_of_every_command() -> None:
    documented = [path for path, _ in HELP_BLOCKS]
    assert len(documented) == len(set(documented)), "a command's help is shown twice"
    assert sorted(documented) == sorted(_all_commands(cli))
