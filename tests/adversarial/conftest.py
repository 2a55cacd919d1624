"""Fixtures of the adversarial corpus: an honest pipeline built once, copied per scenario."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ..support import KeyPair, Pipeline
from .kit import Cli


@pytest.fixture(scope="session")
def honest_template(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> Path:
    """One honest, fully signed pipeline (run ``run-a``); scenarios copy it."""
    root = tmp_path_factory.mktemp("adversarial") / "honest"
    Pipeline(root, keys).run()
    return root


@pytest.fixture
def hp(tmp_path: Path, keys: dict[str, KeyPair], honest_template: Path) -> Pipeline:
    """A private copy of the honest pipeline. Its clock is moved past the template's
    stages, so anything signed in it now comes after them."""
    root = tmp_path / "p"
    shutil.copytree(honest_template, root, symlinks=True)
    p = Pipeline(root, keys)
    p.clock.current = datetime(2025, 6, 1, 13, 0, 0, tzinfo=UTC)
    return p


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(capsys)
