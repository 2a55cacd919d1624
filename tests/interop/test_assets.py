"""tests/assets holds byte-identical copies of public data, and nothing else; no test reads
outside the repository."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..support import ASSETS_DIR, PROJECT_ROOT

#: files about the assets, not assets
DOCUMENTS = {"README.md", "SHA256SUMS", "LICENSE-Apache-2.0"}


def _listed() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (ASSETS_DIR / "SHA256SUMS").read_text().splitlines():
        digest, _, name = line.partition("  ")
        out[name] = digest
    return out


def test_every_asset_is_byte_identical_to_its_source() -> None:
    listed = _listed()
    assert listed
    changed = [
        name
        for name, digest in listed.items()
        if hashlib.sha256((ASSETS_DIR / name).read_bytes()).hexdigest() != digest
    ]
    assert changed == [], f"assets differ from their sources: {changed}"


def test_nothing_unlisted_in_assets() -> None:
    present = {
        p.relative_to(ASSETS_DIR).as_posix()
        for p in ASSETS_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert present - DOCUMENTS == set(_listed())


OUTSIDE = re.compile(r"shared/interop|/ \"shared\"|PROJECT_ROOT\.parent|/tmp/probe")


def test_no_test_or_script_reads_outside_the_repository() -> None:
    sources = [
        *(PROJECT_ROOT / "tests").rglob("*.py"),
        *(PROJECT_ROOT / "benchmarks").rglob("*.py"),
        *(PROJECT_ROOT / "examples").rglob("*.py"),
        PROJECT_ROOT / "Makefile",
        *(PROJECT_ROOT / ".ci").iterdir(),
    ]
    here = Path(__file__).resolve()
    found = [
        str(p.relative_to(PROJECT_ROOT))
        for p in sources
        if p.is_file() and p.resolve() != here and OUTSIDE.search(p.read_text(errors="replace"))
    ]
    assert found == []
