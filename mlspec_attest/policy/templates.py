"""Policy templates shipped with mlspec-attest (``policies/*.yaml``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mlspec_attest.errors import UsageError

TEMPLATES = ("lifecycle", "minimal", "objectives")


def _template_dirs() -> list[Path]:
    dirs = []
    packaged = resources.files("mlspec_attest").joinpath("_policies")
    if packaged.is_dir():
        dirs.append(Path(str(packaged)))
    dirs.append(Path(__file__).resolve().parents[2] / "policies")  # source checkout
    return dirs


def template_text(name: str) -> str:
    """The commented YAML text of template ``name``."""
    if name not in TEMPLATES:
        raise UsageError(f"unknown template {name!r}", remedy=f"use one of: {', '.join(TEMPLATES)}")
    for directory in _template_dirs():
        path = directory / f"{name}.yaml"
        if path.is_file():
            return path.read_text("utf-8")
    raise UsageError(f"template {name!r} is not installed")  # pragma: no cover - packaging bug
