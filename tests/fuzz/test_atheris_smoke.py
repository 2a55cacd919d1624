"""Every atheris target runs for real, briefly: its seeds plus a bounded number of
libFuzzer mutations (``atheris.Fuzz`` with ``-runs``, one subprocess per target).

The smoke runs skip coverage instrumentation (MLSPEC_FUZZ_INSTRUMENT=0): it costs
seconds of start-up per target, and guidance means nothing in a few dozen runs.
Long, instrumented runs: ``make fuzz`` (docs/testing.md). A failure here names
the crashing input's path and shows the target's traceback; add the input to
the target's corpus as ``crash-<what>`` so test_corpus_replay keeps it fixed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from .targets._harness import CORPUS_DIR, PROJECT_ROOT, target_names

pytest.importorskip(
    "atheris",
    reason="atheris is not installed: pip install atheris (wheels for CPython on x86_64 Linux)",
)

#: Mutations per target after its seeds, a wall-clock cap per target, and how many run at once.
RUNS = 30
SECONDS = 1
PARALLEL = 2


@dataclass(frozen=True)
class SmokeRun:
    returncode: int | None
    stderr: str
    artifacts: Path

    @property
    def crashes(self) -> list[str]:
        return sorted(p.name for p in self.artifacts.iterdir())


def _run(name: str, base: Path) -> SmokeRun:
    corpus, artifacts = base / name / "corpus", base / name / "artifacts"
    shutil.copytree(CORPUS_DIR / name, corpus)  # libFuzzer adds to it: never the tree's
    for crash in corpus.glob("crash-*"):
        crash.unlink()  # known crashers are test_corpus_replay's business
    artifacts.mkdir()
    env = {
        **os.environ,
        "MLSPEC_FUZZ_WORKDIR": os.fspath(base / name / "work"),
        "MLSPEC_FUZZ_INSTRUMENT": "0",
    }
    env.pop("MLSPEC_FUZZ_TRIAGE", None)
    command = [
        sys.executable,
        "-m",
        f"tests.fuzz.targets.{name}",
        os.fspath(corpus),
        f"-runs={RUNS + len(list(corpus.iterdir()))}",
        f"-max_total_time={SECONDS}",
        "-seed=1",
        "-timeout=30",
        "-rss_limit_mb=1024",
        f"-artifact_prefix={artifacts}/",
    ]
    try:
        done = subprocess.run(
            command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=90
        )
    except subprocess.TimeoutExpired as exc:
        return SmokeRun(None, f"timed out after 90 s\n{exc.stderr!r}"[-6000:], artifacts)
    return SmokeRun(done.returncode, done.stderr, artifacts)


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SmokeRun]:
    """Every target's smoke run, PARALLEL at a time."""
    base = tmp_path_factory.mktemp("atheris")
    names = target_names()
    with ThreadPoolExecutor(PARALLEL) as pool:
        return dict(zip(names, pool.map(lambda name: _run(name, base), names), strict=True))


@pytest.mark.parametrize("name", target_names())
def test_target_survives_mutations(name: str, smoke_runs: dict[str, SmokeRun]) -> None:
    run = smoke_runs[name]
    assert run.returncode == 0 and not run.crashes, (
        f"target {name} failed (exit {run.returncode}); reproducers in {run.artifacts}: "
        f"{run.crashes}\n{run.stderr[-6000:]}"
    )
    assert "DONE" in run.stderr, run.stderr[-2000:]
