"""What the policy linter finds: problems with their line, and the expiry judgement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from msgspec import Struct, field

from mlspec_attest.formats.rfc3339 import format_rfc3339

if TYPE_CHECKING:  # a signed (JSON) policy has no lines and needs no YAML reader
    from mlspec_attest.formats.yamlio import LineOf

EXPIRES_SOON = timedelta(days=30)
"""Lint warns about a policy that expires sooner than this: renew and re-sign it in time."""


class Problem(Struct, frozen=True):
    """One finding of the policy linter.

    ``path`` is the field as a JSON path, lists counted from 0 (``stages[9].kind``), for
    programs; ``where`` is the same field for people, the stage counted from 1 and
    named (``stage 10 (train), kind``; :func:`human_path`).
    """

    message: str
    line: int | None = None
    path: str = ""
    severity: str = "error"  # or "warning"
    code: str = ""  # "expired" marks the clock-dependent error a load ignores
    where: str = ""

    @property
    def place(self) -> str:
        """The field, as people read it (``where``, else ``path``)."""
        return self.where or self.path

    def __str__(self) -> str:
        at = f"line {self.line}: " if self.line else ""
        field = f"{self.place}: " if self.place else ""
        return f"{at}{self.severity}: {field}{self.message}"


def no_lines(_path: Sequence[str | int]) -> int | None:
    """The :data:`LineOf` of a document without a source (signed JSON)."""
    return None


def json_path(path: Sequence[str | int]) -> str:
    """``["stages", 0, "name"]`` -> ``stages[0].name``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def human_path(path: Sequence[str | int], stage_names: Sequence[str | None] = ()) -> str:
    """The JSON path, with a stage as people know it: counted from 1, as the templates'
    comments count, and named: ``["stages", 9, "kind"]`` -> ``stage 10 (train), kind``."""
    if len(path) < 2 or path[0] != "stages" or not isinstance(path[1], int):
        return json_path(path)
    index = path[1]
    name = stage_names[index] if 0 <= index < len(stage_names) else None
    stage = f"stage {index + 1}" + (f" ({name})" if name else "")
    rest = json_path(path[2:])
    return f"{stage}, {rest}" if rest else stage


class Findings(Struct):
    """The problems found so far, each placed on its source line.

    Calling it records one: ``report(["stages", 0, "name"], "duplicate stage name")``.
    """

    line_of: LineOf = no_lines
    problems: list[Problem] = field(default_factory=list)
    stage_names: Sequence[str | None] = ()  # for :attr:`Problem.where`

    def __call__(self, path: Sequence[str | int], message: str, severity: str = "error") -> None:
        self.problems.append(self.problem(path, message, severity))

    def problem(self, path: Sequence[str | int], message: str, severity: str = "error") -> Problem:
        """The problem at ``path``, placed on its line, not recorded."""
        where = human_path(path, self.stage_names)
        return Problem(message, self.line_of(path), json_path(path), severity, where=where)

    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.problems)


def expiry_problems(expires: datetime, now: datetime, line: int | None = None) -> list[Problem]:
    """An expired policy is an error, one expiring within :data:`EXPIRES_SOON` a warning.

    Subtracting aware datetimes cannot overflow, whatever the years involved.
    """
    left = expires - now
    when = format_rfc3339(expires)
    if left <= timedelta(0):
        return [
            Problem(
                f"policy expired at {when}; verification will always deny it "
                "(set a later 'expires' and sign it again)",
                line,
                "expires",
                "error",
                "expired",
            )
        ]
    if left < EXPIRES_SOON:
        return [
            Problem(
                f"policy expires at {when}, in {left.days} day(s); renew it and sign it again "
                "before then",
                line,
                "expires",
                "warning",
            )
        ]
    return []
