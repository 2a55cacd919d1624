"""CLI fixtures: run ``mlspec-attest`` in-process and capture exit code, stdout, stderr."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.cli.main import main


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as exactly one JSON document (json.loads refuses trailing data)."""
        return json.loads(self.out)

    @property
    def clean(self) -> bool:
        """No Python traceback leaked to the user."""
        return "Traceback" not in self.out + self.err


Cli = Callable[..., CliResult]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli("verify", "--policy", path, ...)`` -> CliResult (main() always exits)."""

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        code = exit_info.value.code
        out, err = capsys.readouterr()
        return CliResult(code if isinstance(code, int) else int(code is not None), out, err)

    return run
