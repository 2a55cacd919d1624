"""Fixtures of the fuzzing tests: the targets' scratch directory lives in pytest's tmp."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

TargetLoader = Callable[[str], ModuleType]


@pytest.fixture(scope="session")
def fuzz_workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """MLSPEC_FUZZ_WORKDIR for in-process targets and atheris subprocesses."""
    path = tmp_path_factory.mktemp("fuzz-work")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLSPEC_FUZZ_WORKDIR", os.fspath(path))
        yield path


@pytest.fixture(scope="session")
def load_target(fuzz_workdir: Path) -> TargetLoader:
    """Import ``tests.fuzz.targets.<name>`` once its scratch directory is set up."""

    def load(name: str) -> ModuleType:
        return importlib.import_module(f"tests.fuzz.targets.{name}")

    return load
