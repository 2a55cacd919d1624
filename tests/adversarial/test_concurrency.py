"""Concurrency and crashes: racing signs, kills in the middle of a write, torn files.

Stages are signed by real ``mlspec-attest sign`` processes. A crash at an exact
point is injected by a child that SIGKILLs itself when it is about to give the
attestation its real name (``os.link`` in ``fsutil.create_once``): a fault of
the operating system, not a fake of signing, hashing or verification.
"""

from __future__ import annotations

import os
import subprocess
import sys

from ..support import PROJECT_ROOT, Pipeline
from .kit import Cli, Scenario, expect, resign, scenario

KILL_AT_LINK = """
import os, signal, sys
real_link = os.link
def link(src, dst, *args, **kwargs):
    if str(dst).endswith(".sigstore.json"):
        os.kill(os.getpid(), signal.SIGKILL)  # crash just before the attestation gets its name
    return real_link(src, dst, *args, **kwargs)
os.link = link
from mlspec_attest.cli.main import main
main(sys.argv[1:])
"""

DIE_HOLDING_LOCK = """
import os, signal, sys
from pathlib import Path
from mlspec_attest.formats.fsutil import exclusive_lock
with exclusive_lock(Path(sys.argv[1])):
    os.kill(os.getpid(), signal.SIGKILL)
"""


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSPEC_")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return env


def package_args(p: Pipeline, *extra: str, run_id: str | None = "run-a") -> list[str]:
    args = ["sign", "--stage", "package", "--key", str(p.keys["release-engineer"].key_path)]
    args += ["--material", str(p.ws / "model"), "--product", str(p.ws / "dist/model")]
    args += ["--base-dir", str(p.ws), "--store", str(p.store_path)]
    args += ["--policy", str(p.signed_policy_path), "-q", *extra]
    return [*args, "--run-id", run_id] if run_id else args


def start(p: Pipeline, code: str | None, args: list[str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "mlspec_attest"]
    return subprocess.Popen(
        [*command, *args],
        cwd=p.ws,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _out, err = proc.communicate(timeout=300)  # a safety net only
    return proc.returncode, err


def race(p: Pipeline, first: list[str], second: list[str]) -> None:
    """Start two `sign` processes at once and wait for both; both must succeed."""
    procs = [start(p, None, first), start(p, None, second)]
    for proc in procs:
        code, err = finish(proc)
        assert code == 0, err


@scenario(
    "racing-identical-signs",
    "two processes sign package with the same result at the same time",
    0,
)
def test_race_identical(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    hp.bundle_path("package").unlink()
    race(hp, package_args(hp), package_args(hp))
    expect(cli.verify(hp), case)


@scenario(
    "racing-different-signs",
    "two processes sign package at the same time with different parameters (no last writer wins)",
    1,
    ["conflicting-attestations"],
    "2 different versions of this stage",
)
def test_race_different(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    hp.bundle_path("package").unlink()
    race(hp, package_args(hp, "--param", "build=1"), package_args(hp, "--param", "build=2"))
    expect(cli.verify(hp), case)


def _kill_mid_write(p: Pipeline) -> None:
    p.bundle_path("package").unlink()
    code, err = finish(start(p, KILL_AT_LINK, package_args(p)))
    assert code == -9, err
    leftovers = [f.name for f in p.store.run_dir(p.run_id).iterdir() if f.name.startswith(".")]
    assert leftovers, "the killed writer left its hidden temporary file"


@scenario(
    "kill-mid-write",
    "SIGKILL the package `sign` after its bytes are on disk, before the file gets its name",
    1,
    ["stage-missing"],
    "no valid attestation for this required stage",
)
def test_kill_mid_write(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    _kill_mid_write(hp)
    outcome = cli.verify(hp)
    expect(outcome, case)
    assert "attestation-malformed" not in outcome.checks  # nothing torn under a real name


@scenario(
    "retry-after-kill",
    "after the kill above, run the package `sign` again",
    0,
)
def test_retry_after_kill(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    _kill_mid_write(hp)
    code, err = finish(start(hp, None, package_args(hp)))
    assert code == 0, err
    expect(cli.verify(hp), case)


@scenario(
    "kill-while-holding-store-lock",
    "a process dies holding the store lock; the next `sign` without a run id must still join",
    0,
)
def test_kill_holding_lock(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    code, err = finish(start(hp, DIE_HOLDING_LOCK, [str(hp.store_path / ".lock")]))
    assert code == -9, err
    hp.bundle_path("package").unlink()
    signed = cli(*package_args(hp, "--json", run_id=None))
    assert signed.code == 0, signed.describe()
    expect(cli.verify(hp), case)


@scenario(
    "torn-bundle-under-real-name",
    "a non-atomic foreign tool leaves half of package's bundle under a real name",
    1,
    ["attestation-malformed"],
    "not valid JSON",
)
def test_torn_bundle(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    data = hp.bundle_path("package").read_bytes()
    (hp.store.run_dir(hp.run_id) / "package.torn.sigstore.json").write_bytes(data[: len(data) // 2])
    expect(cli.verify(hp), case)


@scenario(
    "hidden-forged-bundle-ignored",
    "an intruder-signed package with another model, named like a writer's hidden temporary file",
    0,
)
def test_hidden_forged(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    def other_model(statement: dict[str, object]) -> None:
        statement["subject"][0]["digest"]["sha256"] = "0" * 64  # type: ignore[index]

    run = hp.store.run_dir(hp.run_id)
    resign(
        hp,
        "package",
        hp.keys["intruder"].signer,
        other_model,
        keep=True,
        out=run / ".package.forged.sigstore.json.x1y2.tmp",
    )
    expect(cli.verify(hp), case)
