"""docs/policy.md's compliance walkthrough runs as written: every ``sh`` block of the
section, in order, in an empty folder, with the installed ``mlspec-attest`` (no Python
but the CLI's own). The folder's outcome is then checked: a signed policy that verifies,
a recorded run that passes, a stricter draft that the suite catches."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlspec_attest.policy.templates import template_text

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Compliance walkthrough"


def walkthrough() -> list[str]:
    text = (ROOT / "docs/policy.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return re.findall(r"```sh\n(.*?)```", text[start:end], flags=re.DOTALL)


def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    blocks = walkthrough()
    assert len(blocks) == 7
    script = "set -euo pipefail\n" + "\n".join(blocks)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in ("MLSPEC_ATTEST_STORE", "MLSPEC_RUN_ID", "MLSPEC_ATTEST_KEY", "MLSPEC_POLICY"):
        env.pop(name, None)
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "verification PASSED: policy churn-model" in out
    assert "[pass] mae-gap              evaluate   met: sex=F=48, sex=M=52, gap=4" in out
    assert "DRAFT: not a verdict: policy churn-model would DENY run run-1" in out
    assert "FAIL run-1: expected pass, the draft would deny" in out
    assert "ok   run-1: pass, as expected" in out
    assert "requirement four-fifths: r2 worst over best sex slice >= 0.8" in out  # policy show
    assert (tmp_path / "policy.mmd").read_text().startswith("flowchart")
    signed = json.loads((tmp_path / "policy.signed.json").read_bytes())
    assert signed["payloadType"] == "application/vnd.mlspec-attest.policy+json"


def test_the_walkthrough_starts_from_the_template() -> None:
    """Its train and package stages are the minimal template's, word for word."""
    policy_block = next(b for b in walkthrough() if "cat > policy.yaml" in b)
    template = template_text("minimal")
    for stage in ("train", "package"):
        start = template.index(f"  - name: {stage}\n")
        rules = template[start:].split("\n\n", 1)[0]
        kept = [line for line in rules.splitlines() if not line.lstrip().startswith("#")]
        for line in kept:
            if "functionaries:" in line or "after:" in line:
                continue  # the review changed who signs package, and what it follows
            assert line.rstrip() in policy_block, line
