"""The gate's hashing read against one plain hashing pass over the same files.

A 1 GiB model (four 256 MiB files, random bytes) in a temporary folder, warm in the
page cache. Timed, median of N runs, in this one process:

* ``hashlib.file_digest`` of each file in turn: the least a gate must do (read + sha256);
* ``read_verified`` (serve/gate.py) keeping the bytes: one open per file, reads into a
  buffer of the file's size, sha256 of each chunk, the manifest compared with the subject;
* ``read_verified`` with ``keep=False`` (what ``mlspec-attest gate`` does: no bytes held);
* ``read_verified`` keeping the bytes on one thread (files hashed one after the other).

Prints the ratio of each to the plain pass (target <= 1.1x). No asserts: a benchmark
reports, docs/benchmarks.md keeps the table.

    .venv/bin/python benchmarks/gate_check.py [--size-mib 1024] [--files 4] [--runs 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_common import machine

from mlspec_attest.digest.artifact import digest_path
from mlspec_attest.serve import gate
from mlspec_attest.serve.gate import read_verified


def make_model(root: Path, total_mib: int, files: int) -> Path:
    model = root / "model"
    model.mkdir()
    each = total_mib * 1024 * 1024 // files
    block = os.urandom(8 * 1024 * 1024)
    for i in range(files):
        with (model / f"shard-{i:02d}.safetensors").open("wb") as f:
            for _ in range(each // len(block)):
                f.write(block[: len(block) // 2] + os.urandom(len(block) // 2))
    return model


def plain_pass(model: Path) -> None:
    for path in sorted(model.iterdir()):
        with path.open("rb") as f:
            hashlib.file_digest(f, "sha256")


def timed(action: Callable[[], object], runs: int) -> float:
    action()  # warm the page cache (and the allocator)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gate-bench-") as tmp:
        model = make_model(Path(tmp), args.size_mib, args.files)
        subject = digest_path(model).digest_set()
        plain = timed(lambda: plain_pass(model), args.runs)
        kept = timed(lambda: read_verified(model, subject), args.runs)
        streamed = timed(lambda: read_verified(model, subject, keep=False), args.runs)
        gate.WORKERS = 1  # the same work on one thread, as the baseline runs
        single = timed(lambda: read_verified(model, subject), args.runs)
    print(f"# gate check: {args.size_mib} MiB in {args.files} files, median of {args.runs}")
    print("# " + "; ".join(f"{k}: {v}" for k, v in machine()))
    print(f"{'what':<48} {'seconds':>8} {'ratio':>7}")
    for label, seconds in (
        ("hashlib.file_digest, one pass (baseline)", plain),
        ("read_verified, bytes kept for the loader", kept),
        ("read_verified, keep=False (the gate command)", streamed),
        ("read_verified, bytes kept, one thread", single),
    ):
        print(f"{label:<48} {seconds:8.3f} {seconds / plain:6.2f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
