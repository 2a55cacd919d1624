"""Start-up and small work: what a command costs when the work itself is small (issue 15).

    python benchmarks/startup.py [--reps 15] [--files 1000] [--sign-files 100000]
                                 [--demo] [--before DIR] [--workdir DIR]

Measures, each tool as a whole process, in interleaved rounds (every command once per
round, in a rotating order), the median and the spread of ``--reps`` rounds:

* ``verify`` of a 13-step chain whose dataset has ``--files`` files against
  ``in-toto-verify`` on the equivalent chain (benchmarks/chains.py);
* ``sign`` of ``--sign-files`` files of 1 KiB against ``in-toto-run`` (fewer rounds:
  they take seconds);
* ``mlspec-attest --help`` and ``python -c pass``;
* with ``--demo``: the demo's deploy gate, i.e. the ``verify`` of stages 1-10 that
  examples/pipeline/run_demo.py runs in its phase "2. Deploy gate" (ML checks, three
  deploy artifacts re-hashed, a signed verification summary), on a copy of a finished
  demo's work directory with the later stages' attestations removed; and the phase as
  the demo itself reports it.

``--before DIR`` also times the ``mlspec_attest`` package found in DIR (for instance
``git archive HEAD mlspec_attest | tar -x -C DIR``) in the same rounds, as
``... (before)`` rows. Both packages are byte-compiled first (as ``pip install`` does).
Prints a Markdown table; docs/benchmarks.md ("Start-up and small work") quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import byte_compile, machine, markdown_table
from chains import build_intoto_chain, build_mlspec_chain, tool
from workloads import many_files

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "pipeline"
LATER_STAGES = ("serve", "monitor", "log")  # signed after the deploy gate


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)[:160]} exited {done.returncode}: {done.stderr[-600:]!r}")
    return elapsed


def rounds(
    cases: dict[str, tuple[list[str], Path, dict[str, str]]], reps: int
) -> dict[str, list[float]]:
    """Each case once per round, in a rotating order; returns the wall times per case."""
    names = list(cases)
    times: dict[str, list[float]] = {n: [] for n in names}
    for name in names:  # one untimed run each: page cache, bytecode
        run_once(*cases[name])
    for r in range(reps):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(run_once(*cases[name]))
    return times


def environments(before: Path | None) -> dict[str, dict[str, str]]:
    env = dict(os.environ)
    envs = {"": env}
    if before is not None:
        envs[" (before)"] = {**env, "PYTHONPATH": str(before)}
    return envs


def demo_gate(scratch: Path) -> tuple[list[str], Path, dict[str, str], str]:
    """Run the demo once; the gate's verify command on a copy of its work directory."""
    copy = scratch / "demo"
    shutil.rmtree(copy, ignore_errors=True)
    for part in ("examples/pipeline", "keys-example", "policies"):
        shutil.copytree(
            REPO / part, copy / part, ignore=shutil.ignore_patterns("work", "__pycache__")
        )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    demo = subprocess.run(
        [sys.executable, str(copy / "examples/pipeline/run_demo.py")],
        cwd=copy, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if demo.returncode != 0:
        raise SystemExit(f"the demo failed:\n{demo.stdout[-2000:]}")
    phase = re.search(r"2\. Deploy gate ([0-9.]+s)", demo.stdout)
    sys.path.insert(0, str(copy / "examples/pipeline"))
    import run_demo  # the demo's own names for what the gate verifies

    work = scratch / "gate"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(copy / "examples/pipeline/work", work)
    report = json.loads((work / run_demo.GATE_REPORT).read_text())
    run_id = report["runId"]
    for stage in LATER_STAGES:
        for bundle in (work / run_demo.STORE / "runs" / run_id).glob(f"{stage}.*"):
            bundle.unlink()
    argv = [tool("mlspec-attest"), "verify", "--policy", str(run_demo.SIGNED_POLICY),
            "--policy-key", str(run_demo.OWNER_PUB), "--run-id", run_id]  # fmt: skip
    for role, path in run_demo.DEPLOY_ARTIFACTS.items():
        argv += ["--artifact", f"{role}={path}"]
    argv += ["--vsa-out", "gate/bench.vsa.json", "--vsa-key", str(run_demo.VERIFIER_KEY)]
    argv += ["--resource-uri", run_demo.RESOURCE_URI, "--json"]
    gate_env = run_demo.environment(work, run_id)
    return argv, work, gate_env, phase.group(1) if phase else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="rounds (median); sign: a third")
    parser.add_argument("--files", type=int, default=1000, help="files of the chain's dataset")
    parser.add_argument("--sign-files", type=int, default=100_000, help="0: skip sign")
    parser.add_argument("--demo", action="store_true", help="run the demo, time its gate")
    parser.add_argument("--before", type=Path, help="a directory holding another mlspec_attest")
    parser.add_argument(
        "--deploy-venv",
        type=Path,
        help="with --demo: also time the gate with this venv's mlspec-attest (a venv made by "
        "`pip install '.[all]'`, what a deploy job installs, without the test extras)",
    )
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    args = parser.parse_args()
    base = args.workdir or Path(tempfile.mkdtemp(prefix="mlspec-startup-"))
    base.mkdir(parents=True, exist_ok=True)
    for package in [
        REPO / "mlspec_attest",
        *([args.before / "mlspec_attest"] if args.before else []),
    ]:
        byte_compile(package)
    envs = environments(args.before)
    env = envs[""]
    dataset = many_files(base / "data", "chain", args.files, 1024, 1000)
    chain = base / "chain"
    intoto = build_intoto_chain(chain / "intoto", dataset.path.parent, dataset.path.name)
    ours, _ = build_mlspec_chain(chain / "ours", dataset.path.parent, dataset.path.name)
    cwd = dataset.path.parent
    cases = {
        "in-toto-verify": (intoto, cwd, env),
        "python -c pass": ([sys.executable, "-c", "pass"], cwd, env),
    }
    for label, e in envs.items():
        cases[f"mlspec-attest verify{label}"] = (ours, cwd, e)
        cases[f"mlspec-attest --help{label}"] = ([tool("mlspec-attest"), "--help"], cwd, e)
    phase = None
    if args.demo:
        argv, work, gate_env, phase = demo_gate(base)
        for label, e in envs.items():
            extra = {"PYTHONPATH": e["PYTHONPATH"]} if "PYTHONPATH" in e else {}
            cases[f"deploy gate verify{label}"] = (argv, work, {**gate_env, **extra})
        if args.deploy_venv:
            deploy = [str(args.deploy_venv / "bin" / "mlspec-attest"), *argv[1:]]
            cases["deploy gate verify, .[all] venv"] = (deploy, work, gate_env)
    times = rounds(cases, args.reps)
    if args.sign_files:
        times.update(sign_rounds(base, envs, args.sign_files, max(3, args.reps // 3)))
    print_table(times, phase)
    return 0


def sign_rounds(
    base: Path, envs: dict[str, dict[str, str]], files: int, reps: int
) -> dict[str, list[float]]:
    small = many_files(base / "data", "small", files, 1024, 1000)
    keys = base / "keys"
    env = envs[""]
    subprocess.run(
        [tool("mlspec-attest"), "keygen", "--out", keys / "k", "--force"],
        check=True,
        capture_output=True,
    )
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (keys / "k.pem").write_bytes(pem)
    (base / "links").mkdir(exist_ok=True)
    root = small.path.parent
    cases = {
        "in-toto-run": ([tool("in-toto-run"), "-n", "bench", "--signing-key", str(keys / "k.pem"),
                         "-p", small.path.name, "-x", "-d", str(base / "links")], root, env),
    }  # fmt: skip
    for label, e in envs.items():
        sign = [tool("mlspec-attest"), "sign", "--stage", "bench", "--key", str(keys / "k.key"),
                "--store", str(base / f"store{len(label)}"), "--run-id", "bench",
                "--base-dir", str(root), "--product", str(small.path), "--quiet"]  # fmt: skip
        cases[f"mlspec-attest sign{label}"] = (sign, root, e)
    return rounds(cases, reps)


def print_table(times: dict[str, list[float]], phase: str | None) -> None:
    def ms(x: float) -> str:
        return f"{x * 1000:,.0f} ms"

    peers = {"mlspec-attest verify": "in-toto-verify", "mlspec-attest sign": "in-toto-run"}
    rows = []
    for name, xs in times.items():
        med = statistics.median(xs)
        peer = next((p for k, p in peers.items() if name.startswith(k) and p in times), None)
        ratio = f"{statistics.median(times[peer]) / med:.1f}×" if peer else "—"
        rows.append([name, ms(med), f"{ms(min(xs))}–{ms(max(xs))}", str(len(xs)), ratio])
    print(markdown_table(["command", "median", "range", "runs", "peer ÷ ours"], rows))
    if phase is not None:
        print(f"\nthe demo's own '2. Deploy gate' phase in this run: {phase}")
    print("\n" + "; ".join(f"{k}: {v}" for k, v in machine()[:5]))


if __name__ == "__main__":
    sys.exit(main())
