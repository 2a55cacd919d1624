"""Query-store benchmark: index build throughput and ``query`` latency on a synthetic store.

    python benchmarks/query_store.py [--runs 10000] [--stages 13]

Each run is a chain of ``--stages`` stage attestations (stage i reads stage i-1's
product; a real Ed25519 signature over each payload), written straight into a store
directory. Then: the full index build (``store reindex``), the no-op freshness check a
query pays, and the median of 5 calls of each query. Prints the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import machine, median

from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.formats.statement import (
    ResourceDescriptor,
    StageMetadata,
    StageStatement,
)
from mlspec_attest.signing.keys import KeyType, generate_key
from mlspec_attest.store.index import build_index, ensure_index, index_path
from mlspec_attest.store.index_query import AttestationIndex
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.store.run_diff import diff_runs

KINDS = ["objectives", "ingest", "analyze", "transform", "validate", "split", "train"]
KINDS += ["evaluate", "test", "package", "serve", "monitor", "log"]


def _digest(text: str) -> dict[str, str]:
    return {"sha256": hashlib.sha256(text.encode()).hexdigest()}


def make_store(root: Path, runs: int, stages: int) -> AttestationStore:
    signer = generate_key(KeyType.ED25519)
    keyid = signer.public_key.keyid
    for r in range(runs):
        run_id = f"run-{r:06d}"
        directory = root / "runs" / run_id
        directory.mkdir(parents=True)
        for s in range(stages):
            kind = KINDS[s % len(KINDS)]
            metadata = StageMetadata(
                stage=kind,
                kind=kind,
                run_id=run_id,
                started_on=f"2025-06-01T00:{s:02d}:00Z",
                finished_on=f"2025-06-01T00:{s:02d}:30Z",
                parameters={"seed": r, "stage": s},
                metrics={"loss": 1.0 / (r + s + 1)},
            )
            materials = (ResourceDescriptor(f"a{s - 1}", _digest(f"{r}/{s - 1}")),) if s else ()
            statement = StageStatement(
                (ResourceDescriptor(f"a{s}", _digest(f"{r}/{s}")),), materials, metadata
            )
            envelope = Envelope.sign(
                statement.to_payload(), INTOTO_PAYLOAD_TYPE, [signer], keyid_hint=False
            )
            bundle = Bundle.for_public_key(envelope, keyid)
            path = directory / f"{kind}.{keyid[:8]}.sigstore.json"
            path.write_bytes(canonical(bundle.to_json()))
    return AttestationStore(root)


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} logical CPUs)"
    return "unknown"


def timed(call: Callable[[], Any], repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--stages", type=int, default=13)
    args = parser.parse_args()
    for name, value in machine():
        print(f"{name}: {value}")
    print("CPU:", _cpu())
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        store = make_store(Path(tmp), args.runs, args.stages)
        print(
            f"generated {args.runs} runs x {args.stages} stages in {time.perf_counter() - start:.1f} s"
        )
        start = time.perf_counter()
        build = build_index(store)
        elapsed = time.perf_counter() - start
        size = index_path(store).stat().st_size
        print(
            f"store reindex: {build.attestations} bundles in {elapsed:.2f} s "
            f"({build.attestations / elapsed:,.0f} bundles/s), index {size / 2**20:.1f} MiB"
        )
        print(f"freshness check (no rebuild): {timed(lambda: ensure_index(store)) * 1000:.1f} ms")
        index = AttestationIndex.open(index_path(store))
        middle = f"run-{args.runs // 2:06d}"
        dataset = ("sha256", _digest(f"{args.runs // 2}/1")["sha256"])
        model = ("sha256", _digest(f"{args.runs // 2}/6")["sha256"])
        queries: dict[str, Callable[[], Any]] = {
            "query runs": index.runs,
            "query run RUN": lambda: index.run(middle),
            "query models --dataset": lambda: index.models_from(dataset),
            "query datasets --model": lambda: index.inputs_of(model),
            "query signed-by --key": lambda: index.signed_by(keyid="0" * 64),
            "query diff RUN_A RUN_B": lambda: diff_runs(index, "run-000000", middle),
        }
        for name, call in queries.items():
            print(f"{name:<26} {timed(call) * 1000:9.1f} ms")
        index.close()


if __name__ == "__main__":
    main()
