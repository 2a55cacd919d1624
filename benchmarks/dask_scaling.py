"""Dask scaling benchmark: hashing and leakage row digests on 1 and 2 local Dask workers.

    python benchmarks/dask_scaling.py [--files 64] [--file-mib 16] [--shards 8] [--rows 40000]

Writes, in a temporary directory, a folder of ``--files`` files of ``--file-mib`` MiB
(the page cache is warmed by one untimed pass) and two directory splits of
``--shards`` CSV shards of ``--rows`` rows each (10 columns: ints, floats, short
strings). Then, for the local engine and for a ``LocalCluster`` of 1 and of 2 worker
processes (one thread each; its start-up is timed apart): the median of 3 runs of
``digest`` of the folder (sha256, files serialization, and sha256 shards of 4 MiB) and
of the leakage proof over the two splits. Every configuration must give the same
digests and the same proof, or the benchmark stops. Prints the CPU (``lscpu``) and a
Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

from bench_common import markdown_table, median

from mlspec_attest.digest import cluster
from mlspec_attest.digest.artifact import digest_path
from mlspec_attest.digest.scheme import DigestScheme
from mlspec_attest.evidence.leakage import prove_splits

MiB = 1 << 20
SHARDS = DigestScheme("sha256", "shards", 4 * MiB)


def cpu() -> str:
    """The CPU as ``lscpu`` names it, with the logical CPUs this process may use."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = "unknown"
    return f"{model}, {len(os.sched_getaffinity(0))} logical CPUs"


def write_files(root: Path, count: int, size: int) -> None:
    root.mkdir(parents=True)
    block = os.urandom(size)
    for i in range(count):
        # Different bytes per file, cheaply: a counter in front of one random block.
        (root / f"part-{i:04d}.bin").write_bytes(i.to_bytes(8, "big") + block[8:])


def write_split(root: Path, shards: int, rows: int, seed: int) -> None:
    root.mkdir(parents=True)
    rng = random.Random(seed)
    header = "id," + ",".join(f"c{k}" for k in range(9))
    for s in range(shards):
        lines = [header]
        for r in range(rows):
            ints = [str(rng.randrange(1000)) for _ in range(3)]
            floats = [f"{rng.random() * 100:.3f}" for _ in range(3)]
            words = [rng.choice(["red", "green", "blue", "amber", "teal"]) for _ in range(3)]
            lines.append(",".join([f"{seed}-{s}-{r}", *ints, *floats, *words]))
        (root / f"part-{s:03d}.csv").write_text("\n".join(lines) + "\n")


def timed(call: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return median(times), result


def workloads(folder: Path, splits: dict[str, Path]) -> dict[str, Callable[[], Any]]:
    return {
        "digest, sha256 files": lambda: digest_path(folder).digest_set(),
        "digest, sha256 shards of 4 MiB": lambda: digest_path(folder, scheme=SHARDS).digest_set(),
        "leakage proof (row digests)": lambda: json.dumps(
            prove_splits(splits, exclude_columns=["id"]).record, sort_keys=True
        ),
    }


def measure(folder: Path, splits: dict[str, Path]) -> dict[str, dict[str, float]]:
    import distributed

    jobs = workloads(folder, splits)
    results: dict[str, dict[str, float]] = {name: {} for name in jobs}
    expected: dict[str, Any] = {}
    for name, job in jobs.items():
        seconds, expected[name] = timed(job)
        results[name]["local engine"] = seconds
    for workers in (1, 2):
        label = f"Dask, {workers} worker{'s' if workers > 1 else ''}"
        start = time.perf_counter()
        with (
            distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, dashboard_address=":0", silence_logs=40
            ) as local,
            distributed.Client(local) as client,
        ):
            print(f"{label}: cluster up in {time.perf_counter() - start:.1f} s", flush=True)
            with cluster.use(client):
                for name, job in jobs.items():
                    seconds, got = timed(job)
                    if got != expected[name]:
                        raise SystemExit(f"{name} on {label} differs from the local engine")
                    results[name][label] = seconds
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--file-mib", type=int, default=16)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--rows", type=int, default=40_000)
    args = parser.parse_args()
    print("CPU:", cpu())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        write_files(folder, args.files, args.file_mib * MiB)
        splits = {"train": Path(tmp) / "train", "holdback": Path(tmp) / "holdback"}
        for seed, path in enumerate(splits.values()):
            write_split(path, args.shards, args.rows, seed)
        digest_path(folder)  # warm the page cache
        total = args.files * args.file_mib
        rows = 2 * args.shards * args.rows
        print(f"{args.files} files x {args.file_mib} MiB ({total} MiB); {rows} rows in 2 splits")
        results = measure(folder, splits)
    columns = ["local engine", "Dask, 1 worker", "Dask, 2 workers"]
    table = [
        [
            name,
            *(f"{by[c]:.2f} s" for c in columns),
            f"{by['Dask, 1 worker'] / by['Dask, 2 workers']:.2f}x",
        ]
        for name, by in results.items()
    ]
    print(markdown_table(["workload", *columns, "2 vs 1 worker"], table))


if __name__ == "__main__":
    main()
