"""Refresh the ``--help`` blocks of docs/cli.md from the real CLI.

    python tools/cli_docs.py          rewrite stale blocks in place, list what changed
    python tools/cli_docs.py --check  exit 1 if any block is stale (what tests/test_docs.py checks)

A block is a fenced block starting ``Usage: mlspec-attest <command path> [OPTIONS]``; its body
becomes exactly what ``mlspec-attest <path> --help`` prints at 78 columns. Commands with no
block are listed (write their section by hand; the test asks for one per command).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from mlspec_attest.cli.main import cli

CLI_MD = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
WIDTH = 78
BLOCK = re.compile(
    r"^```\n(Usage: mlspec-attest((?: [a-z][a-z0-9-]*)*) \[OPTIONS\].*?)^```[ \t]*$", re.S | re.M
)


def real_help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(
        cli, [*path, "--help"], prog_name="mlspec-attest", terminal_width=WIDTH
    )
    if result.exit_code != 0:
        raise SystemExit(f"mlspec-attest {' '.join(path)} --help exited {result.exit_code}")
    return result.output


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    ctx = click.Context(group)
    out = [prefix]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            out += commands(command, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


def main(argv: list[str]) -> int:
    text = CLI_MD.read_text(encoding="utf-8")
    stale: list[str] = []
    seen: set[tuple[str, ...]] = set()

    def refresh(match: re.Match[str]) -> str:
        path = tuple(match.group(2).split())
        seen.add(path)
        fresh = real_help(path)
        if fresh != match.group(1):
            stale.append(" ".join(("mlspec-attest", *path)))
        return "```\n" + fresh + "```"

    updated = BLOCK.sub(refresh, text)
    for name in stale:
        print(f"stale: {name}")
    missing = [path for path in commands(cli) if path not in seen]
    for path in missing:
        print(f"no help block: mlspec-attest {' '.join(path)}")
    if "--check" in argv:
        return 1 if stale or missing else 0
    if updated != text:
        CLI_MD.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
