"""A policy's YAML source: its text, its tree, and the line of every field.

Parsing, the plain JSON values (:func:`~mlspec_attest.formats.yamlio.plain`, one
date rule) and line numbers are :mod:`mlspec_attest.formats.yamlio`, the one YAML
loader; this module adds what a policy needs on top: its size limit, and a YAML
error as a lint :class:`~mlspec_attest.policy.problems.Problem` with its line.
Objectives documents are read the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlspec_attest.errors import PolicyError
from mlspec_attest.formats.limits import MAX_POLICY_BYTES
from mlspec_attest.formats.yamlio import LineOf, YamlError, line_finder, load_yaml, read_yaml_file
from mlspec_attest.policy.problems import Problem


class YamlSyntaxError(PolicyError):
    """YAML that does not parse (or has duplicate keys), with the line of the problem."""

    def __init__(self, message: str, problem: Problem) -> None:
        super().__init__(message, [str(problem)])
        self.problem = problem


def parse_yaml(text: str, *, source: str, max_bytes: int = MAX_POLICY_BYTES) -> tuple[Any, LineOf]:
    """Parse policy YAML strictly and boundedly (see :mod:`mlspec_attest.formats.yamlio`)."""
    try:
        root = load_yaml(text, what=source, max_bytes=max_bytes)
    except YamlError as exc:
        if not exc.parsing:
            raise PolicyError(exc.message) from exc  # not parsed at all (too large)
        problem = Problem(f"not valid YAML: {exc.detail}", exc.line)
        raise YamlSyntaxError(f"{source}: cannot be read as YAML", problem) from exc
    return root, line_finder(root, document_line=True)


def read_policy_text(path: Path) -> str:
    """The text of a YAML policy file: at most :data:`~mlspec_attest.formats.limits.MAX_POLICY_BYTES`,
    UTF-8 (a leading BOM is dropped). Raises :class:`PolicyError` (exit 3)."""
    try:
        return read_yaml_file(path, MAX_POLICY_BYTES, what=str(path), kind="a policy")
    except YamlError as exc:
        raise PolicyError(exc.message) from exc
