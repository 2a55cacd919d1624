"""Output every command shares: a result as JSON or text, the denied exit, failure details.

Light on purpose (click, json and the exit codes only): a command that prints a result
does not pay for importing what renders policies and reports (:mod:`.render`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import click

from mlspec_attest.errors import ExitCode


class Verdict(Protocol):
    """A report that passed or not, with its JSON document."""

    @property
    def passed(self) -> bool: ...

    def to_json(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=Verdict)


def echo_result(doc: Any, text: str, as_json: bool) -> None:
    """``doc`` as indented JSON with ``--json``, else ``text``, on stdout."""
    click.echo(json.dumps(doc, indent=2) if as_json else text)


def deny_unless(passed: bool) -> None:
    """Exit 1 (denied) unless ``passed``."""
    if not passed:
        raise SystemExit(ExitCode.DENIED)


def echo_verdict(report: R, text: Callable[[R], str], as_json: bool) -> None:
    """A report as JSON or ``text(report)``; then exit 1 if it did not pass."""
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(text(report))
    deny_unless(report.passed)


def detail_lines(
    indent: str,
    expected: str | None,
    found: str | None,
    remedy: str | None,
    source: str | None = None,
) -> list[str]:
    """The lines under one failure or problem: what was expected, found, where, the fix."""
    fields = (("expected", expected), ("found", found), ("file", source), ("fix", remedy))
    return [f"{indent}{name + ':':<10}{value}" for name, value in fields if value]
