#!/usr/bin/env python3
"""What the inference log costs: one append, and auditing a whole log.

Writes ``--records`` requests (200,000 by default) with the real writer
(``mlspec_attest.log.writer.InferenceLog``, an Ed25519 key, a checkpoint every 1000
records, no fsync per record), timing every ``append``; then audits the log with
``verify_log``, the default way (the fast pass over the signed records) and
``exact=True`` (every record decoded, checked and rendered against its access.log
line), ``--reps`` times each. Prints the median append in microseconds and records
per second of each audit (best and median of the runs). Nothing is asserted: the
numbers are for docs/benchmarks.md. The log lives in a temporary directory, removed at
the end unless ``--keep``.

    python benchmarks/log_verify.py [--records 200000] [--reps 3] [--keep]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mlspec_attest.log.audit import verify_log  # noqa: E402
from mlspec_attest.log.writer import InferenceLog  # noqa: E402
from mlspec_attest.signing.keys import KeyType, generate_key  # noqa: E402

ORIGIN = "mlspec-attest/iris/4c1e2f3a4b5c6d7e"
BODY = b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[5.1,3.5,1.4,0.2]}]}'


def request(i: int) -> dict[str, object]:
    """One Open Inference Protocol request as the middleware logs it."""
    return {
        "request_id": f"5f0c7a0e-{i:012d}",
        "client": f"10.0.{i % 7}.{i % 250}",
        "user": f"user-{i % 97}",
        "method": "POST",
        "path": "/v2/models/iris/infer",
        "protocol": "HTTP/1.1",
        "status": 200,
        "bytes_sent": 112,
        "referer": None,
        "user_agent": "python-httpx/0.27.0",
        "model": "iris",
        "model_version": "3",
        "model_digest": "ab" * 32,
        "vsa_digest": "4c1e2f3a4b5c6d7e" + "cd" * 24,
        "body": BODY,
        "output": {
            "model_name": "iris",
            "outputs": [{"name": "predict", "shape": [1], "datatype": "INT64", "data": [i % 3]}],
        },
        "latency_us": 700 + i % 300,
        "time": None,
    }


def write(directory: Path, records: int) -> list[float]:
    """Append ``records`` requests; the microseconds each append took."""
    signer = generate_key(KeyType.ED25519)
    log = InferenceLog.open(
        directory, signer, origin=ORIGIN, checkpoint_every=1000, checkpoint_interval_s=0
    )
    took: list[float] = []
    for i in range(records):
        started = time.perf_counter_ns()
        log.append(**request(i))  # type: ignore[arg-type]
        took.append((time.perf_counter_ns() - started) / 1000)
    log.close()
    (directory.parent / "key.pem").write_text(signer.public_key.pem())
    return took


def audit(directory: Path, records: int, reps: int, exact: bool) -> list[float]:
    """Records per second of each of ``reps`` audits."""
    from mlspec_attest.signing.keys import load_public_key

    key = load_public_key(directory.parent / "key.pem")
    rates = []
    for _ in range(reps):
        started = time.perf_counter()
        result = verify_log(directory, key, exact=exact)
        elapsed = time.perf_counter() - started
        if not result.ok or result.records != records:
            raise SystemExit(f"the audit did not pass: {result.to_json()}")
        rates.append(records / elapsed)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the log directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlspec-log-bench-"))
    try:
        directory = work / "log"
        started = time.perf_counter()
        took = write(directory, args.records)
        wrote = time.perf_counter() - started
        size = (directory / "records.cbor").stat().st_size
        fast = audit(directory, args.records, args.reps, exact=False)
        exact = audit(directory, args.records, max(1, args.reps - 1), exact=True)
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}"
        )
        print(
            f"records: {args.records:,} ({size / args.records:.0f} bytes each), "
            f"written in {wrote:.1f} s, a checkpoint every 1000"
        )
        print(
            f"append: median {statistics.median(took):.1f} µs, p99 "
            f"{sorted(took)[int(len(took) * 0.99)]:.1f} µs per record"
        )
        print(
            f"log verify: {max(fast):,.0f} records/s best, {statistics.median(fast):,.0f} median "
            f"of {len(fast)}"
        )
        print(
            f"log verify --exact: {max(exact):,.0f} records/s best, "
            f"{statistics.median(exact):,.0f} median of {len(exact)}"
        )
        if args.keep:
            print(f"kept: {work}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
