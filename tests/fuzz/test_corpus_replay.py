"""Every corpus input (seeds and past crashers) replayed through its target.

``crash-*`` files are inputs that once crashed a parser (found by fuzzing);
each stays here as a regression test. A crasher whose fix has not landed yet
is listed in PENDING and expected to fail, strictly: when the fix lands the
case turns XPASS, which fails the run, and its PENDING entry is removed.

Cases in ISOLATED (those that hang or exhaust memory until fixed) run in a
subprocess with a time and memory limit; the rest run in process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from .conftest import TargetLoader
from .targets._harness import CORPUS_DIR, PROJECT_ROOT, target_names

#: "<target>/<file>" -> why it still crashes (the fix pending in mlspec_attest/).
PENDING: dict[str, str] = {}

#: Cases that hang or exhaust memory while pending: replayed in a limited subprocess.
ISOLATED = {"manifest/crash-oom-huge-sharded-size.json"}

#: Limits for an isolated case's subprocess (seconds, bytes of address space).
ISOLATED_SECONDS = 60
ISOLATED_MEMORY = 512 << 20


def _cases() -> list[Any]:
    cases = []
    for name in target_names():
        for path in sorted((CORPUS_DIR / name).iterdir()):
            key = f"{name}/{path.name}"
            marks = [pytest.mark.xfail(strict=True, reason=PENDING[key])] if key in PENDING else []
            cases.append(pytest.param(name, path.name, id=key, marks=marks))
    return cases


def test_every_target_has_a_corpus_and_every_corpus_a_target() -> None:
    corpora = sorted(p.name for p in CORPUS_DIR.iterdir() if p.is_dir())
    assert corpora == target_names()
    assert all(any((CORPUS_DIR / name).glob("seed-*")) for name in corpora)
    stale = [key for key in [*PENDING, *ISOLATED] if not (CORPUS_DIR / key).is_file()]
    assert not stale, f"PENDING/ISOLATED name missing corpus files: {stale}"


_CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))
from tests.fuzz.targets import {name} as target
target.TestOneInput(open(sys.argv[1], "rb").read())
"""


def _replay_in_subprocess(name: str, filename: str) -> None:
    code = _CHILD.format(memory=ISOLATED_MEMORY, name=name)
    try:
        result = subprocess.run(
            [sys.executable, "-c", code, os.fspath(CORPUS_DIR / name / filename)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=ISOLATED_SECONDS,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"{name}/{filename}: still running after {ISOLATED_SECONDS} s"
        ) from exc
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize(("name", "filename"), _cases())
def test_corpus_input(name: str, filename: str, load_target: TargetLoader) -> None:
    if f"{name}/{filename}" in ISOLATED:
        _replay_in_subprocess(name, filename)
        return
    target = load_target(name)
    target.TestOneInput((CORPUS_DIR / name / filename).read_bytes())
