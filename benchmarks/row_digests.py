"""Row digests benchmark: the row engine against a naive pyarrow + hashlib loop, in one run.

    python benchmarks/row_digests.py [--rows 1000000] [--repeat 3] [--reference]

Writes one table of ``--rows`` rows x 10 columns (ints, floats, short strings; a
fixed seed) as CSV and as Parquet in a temporary directory, then times, alternating
and taking medians:

* **naive**: ``pyarrow.csv.read_csv`` (or ``pyarrow.parquet.read_table``), then for each
  row of ``to_pylist()``, ``hashlib.sha256(json.dumps(row, sort_keys=True).encode())``.
  It does less than the engine: no canonical form (CSV cells stay as Arrow infers them,
  ``007`` and ``7`` differ, no Unicode or whitespace rules, no RFC 8785);
* **engine**: ``mlspec_attest.digest.rows.iter_row_digests`` (``mlspec-rows/v2``),
  every digest collected in a list;
* **reference** (``--reference``): the same with ``vectorized=False``, the
  row-at-a-time Python engine the vectorized one is checked against (the run stops
  if their digests differ);
* **leakage check**: ``mlspec-attest leakage check train=<rows> holdback=<rows/10>``,
  the whole process (start-up, both splits, the overlap, the report).

Prints the CPU (``lscpu``), each time, rows/s and the engine/naive ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import load, machine, median, timed_run

from mlspec_attest.digest.rows import iter_row_digests

WORDS = ["alpha", "beta", "gamma", "delta", "Berlin", "Paris", "New York", "x", "yes", "no"]


def cpu_model() -> str:
    """The CPU as ``lscpu`` names it (with the core count)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        out = ""
    fields = {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in out.splitlines())
    }
    model = fields.get("Model name", "unknown CPU")
    return f"{model} ({fields.get('CPU(s)', os.cpu_count())} CPUs)"


def make_table(rows: int, seed: int = 0) -> Any:
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    words = np.array(WORDS)
    return pa.table(
        {
            "id": np.arange(rows),
            "age": rng.integers(18, 90, rows),
            "count": rng.integers(-(10**6), 10**6, rows),
            "income": np.round(rng.normal(50000, 15000, rows), 2),
            "score": rng.random(rows),
            "ratio": rng.normal(0, 1, rows),
            "city": words[rng.integers(0, len(WORDS), rows)],
            "label": words[rng.integers(8, 10, rows)],
            "code": np.char.add("c", rng.integers(0, 1000, rows).astype(str)),
            "flag": rng.integers(0, 2, rows),
        }
    )


def write(table: Any, root: Path, name: str) -> dict[str, Path]:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    paths = {"csv": root / f"{name}.csv", "parquet": root / f"{name}.parquet"}
    # Quoted only where needed (no value here needs it), as pandas writes CSV.
    pcsv.write_csv(table, paths["csv"], pcsv.WriteOptions(quoting_style="none"))
    pq.write_table(table, paths["parquet"])
    return paths


def naive(path: Path) -> list[bytes]:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    table = pq.read_table(path) if path.suffix == ".parquet" else pcsv.read_csv(path)
    return [
        hashlib.sha256(json.dumps(row, sort_keys=True).encode()).digest()
        for row in table.to_pylist()
    ]


def engine(path: Path) -> list[bytes]:
    return list(iter_row_digests(path))


def reference(path: Path) -> list[bytes]:
    return list(iter_row_digests(path, vectorized=False))


def timed(call: Callable[[Path], list[bytes]], path: Path, rows: int) -> tuple[float, list[bytes]]:
    start = time.perf_counter()
    found = call(path)
    elapsed = time.perf_counter() - start
    assert len(found) == rows, (call.__name__, len(found), rows)
    return elapsed, found


def leakage_check(train: Path, holdback: Path) -> float:
    exe = Path(sys.executable).with_name("mlspec-attest")
    argv: list[str | Path] = [exe, "leakage", "check", f"train={train}", f"holdback={holdback}"]
    return timed_run(argv, expect=(0, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reference", action="store_true", help="also time the Python engine")
    args = parser.parse_args()
    print("CPU (lscpu):", cpu_model())
    for name, value in machine():
        if name in ("Memory", "OS", "Python"):
            print(f"{name}: {value}")
    import pyarrow

    print(f"pyarrow: {pyarrow.__version__}; load average before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        table = make_table(args.rows)
        train = write(table, root, "train")
        holdback = write(table.slice(0, max(args.rows // 10, 1)), root, "holdback")
        print(
            f"{args.rows:,} rows x 10 columns: CSV {train['csv'].stat().st_size / 1e6:.0f} MB, "
            f"Parquet {train['parquet'].stat().st_size / 1e6:.0f} MB"
        )
        calls: list[Callable[[Path], list[bytes]]] = [naive, engine]
        if args.reference:
            calls.append(reference)
        for fmt in ("csv", "parquet"):
            times: dict[str, list[float]] = {c.__name__: [] for c in calls}
            times["leakage check"] = []
            for _ in range(args.repeat):
                found = {}
                for call in calls:
                    elapsed, found[call.__name__] = timed(call, train[fmt], args.rows)
                    times[call.__name__].append(elapsed)
                if "reference" in found and found["reference"] != found["engine"]:
                    raise SystemExit(f"{fmt}: the engine's digests are not the reference's")
                del found
                times["leakage check"].append(leakage_check(train[fmt], holdback[fmt]))
            report(fmt, {k: median(v) for k, v in times.items()}, args.rows)
    print(f"load average after: {load()}")


def report(fmt: str, seconds: dict[str, float], rows: int) -> None:
    print(f"\n{fmt}:")
    for name, value in seconds.items():
        counted = rows + rows // 10 if name == "leakage check" else rows
        print(f"  {name:<14} {value:7.2f} s  {counted / value:>11,.0f} rows/s")
    print(f"  engine / naive throughput: {seconds['naive'] / seconds['engine']:.2f}x")


if __name__ == "__main__":
    main()
