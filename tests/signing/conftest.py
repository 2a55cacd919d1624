"""Fixtures for the signing tests: the in-process CLI."""

from __future__ import annotations

from ..cli.conftest import Cli, CliResult, cli

__all__ = ["Cli", "CliResult", "cli"]
