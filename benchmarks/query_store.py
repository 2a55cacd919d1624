"""Query-store benchmark: indexing throughput and ``query`` latency, SQLite and PostgreSQL.

    python benchmarks/query_store.py [--runs 10000] [--stages 13] [--store-url URL]

Each run is a chain of ``--stages`` stage attestations (stage i reads stage i-1's
product; a real Ed25519 signature over each payload), written straight into a store
directory. Then, for the SQLite index in the store and for PostgreSQL (``--store-url``,
else a throwaway server started from the OS package's binaries, as the tests start one;
``--no-postgres`` skips it): the full build (``store reindex --full``), the no-op
freshness check a query pays, adding one run (an incremental update: 13 bundles read),
the median of 5 calls of each query from the library, and one ``mlspec-attest query
run`` end to end (a new process: start-up and the freshness check included). Prints the
machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

from bench_common import machine, median

from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.formats.statement import (
    ResourceDescriptor,
    StageMetadata,
    StageStatement,
)
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key
from mlspec_attest.store.index import (
    build_index,
    ensure_index,
    index_location,
    index_path,
    store_id,
)
from mlspec_attest.store.index_pg import schema_name
from mlspec_attest.store.index_query import AttestationIndex
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.store.run_diff import diff_runs

KINDS = ["objectives", "ingest", "analyze", "transform", "validate", "split", "train"]
KINDS += ["evaluate", "test", "package", "serve", "monitor", "log"]


def _digest(text: str) -> dict[str, str]:
    return {"sha256": hashlib.sha256(text.encode()).hexdigest()}


def write_run(root: Path, r: int, stages: int, signer: LocalKeySigner) -> None:
    keyid = signer.public_key.keyid
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


def once(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


@contextmanager
def postgres(args: argparse.Namespace) -> Iterator[str | None]:
    """The PostgreSQL URL to measure: given, or a throwaway server's (None: not measured)."""
    if args.no_postgres or args.store_url:
        yield None if args.no_postgres else args.store_url
        return
    import pytest

    from tests.postgres_server import start_server  # the tests' server, from the OS package

    try:
        server = start_server()
    except (Exception, pytest.skip.Exception, pytest.fail.Exception) as exc:  # no binaries
        print(f"PostgreSQL: not measured ({exc})")
        yield None
        return
    try:
        yield server.url
    finally:
        server.stop()


def index_size(store: AttestationStore, url: str | None) -> float:
    """MiB the index takes (the SQLite file, or the PostgreSQL schema's relations)."""
    if url is None:
        return index_path(store).stat().st_size / 2**20
    import psycopg

    with psycopg.connect(url) as pg:
        [(size,)] = pg.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
            (schema_name(store_id(store)),),
        ).fetchall()
    return int(size) / 2**20


def queries(index: AttestationIndex, runs: int) -> dict[str, Callable[[], Any]]:
    middle = f"run-{runs // 2:06d}"
    dataset = ("sha256", _digest(f"{runs // 2}/1")["sha256"])
    model = ("sha256", _digest(f"{runs // 2}/6")["sha256"])
    return {
        "query runs": index.runs,
        "query run RUN": lambda: index.run(middle),
        "query models --dataset": lambda: index.models_from(dataset),
        "query datasets --model": lambda: index.inputs_of(model),
        "query datasets --vsa (one run)": lambda: index.inputs_of(model, middle),
        "query signed-by --key": lambda: index.signed_by(keyid="0" * 64),
        "query diff RUN_A RUN_B": lambda: diff_runs(index, "run-000000", middle),
    }


def measure(name: str, store: AttestationStore, url: str | None, args: argparse.Namespace) -> None:
    print(f"\n== {name}")
    elapsed, build = once(lambda: build_index(store, url))
    print(
        f"store reindex --full: {build.attestations} bundles in {elapsed:.2f} s "
        f"({build.attestations / elapsed:,.0f} bundles/s), index {index_size(store, url):.1f} MiB"
    )
    print(f"freshness check (no update): {timed(lambda: ensure_index(store, url)) * 1000:.0f} ms")
    signer = generate_key(KeyType.ED25519)
    write_run(store.root, args.runs + args.extra, args.stages, signer)
    args.extra += 1
    elapsed, update = once(lambda: ensure_index(store, url))
    print(
        f"one run added: incremental update read {update.added} bundles in "
        f"{elapsed * 1000:.0f} ms ({update.attestations} attestations indexed)"
    )
    index = AttestationIndex(index_location(store, url).reader())
    for label, call in queries(index, args.runs).items():
        print(f"{label:<32} {timed(call) * 1000:9.2f} ms")
    index.close()
    argv = [sys.executable, "-m", "mlspec_attest", "query", "run", f"run-{args.runs // 2:06d}"]
    argv += ["--store", str(store.root), *(["--store-url", url] if url else [])]
    cli = timed(lambda: subprocess.run(argv, check=True, capture_output=True), repeat=3)
    print(f"{'mlspec-attest query run (process)':<32} {cli * 1000:9.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--stages", type=int, default=13)
    parser.add_argument("--store-url", help="A PostgreSQL URL (default: a throwaway server).")
    parser.add_argument("--no-postgres", action="store_true", help="Measure SQLite only.")
    args = parser.parse_args()
    args.extra = 0
    for name, value in machine():
        print(f"{name}: {value}")
    print("CPU:", _cpu())
    with tempfile.TemporaryDirectory() as tmp, postgres(args) as url:
        start = time.perf_counter()
        signer = generate_key(KeyType.ED25519)
        for r in range(args.runs):
            write_run(Path(tmp), r, args.stages, signer)
        store = AttestationStore(Path(tmp))
        print(
            f"generated {args.runs} runs x {args.stages} stages "
            f"in {time.perf_counter() - start:.1f} s"
        )
        measure("SQLite (STORE/index.sqlite3)", store, None, args)
        if url is not None:
            import psycopg

            with psycopg.connect(url) as pg:
                version = pg.execute("SHOW server_version").fetchone()
            measure(f"PostgreSQL {version[0] if version else '?'}", store, url, args)


if __name__ == "__main__":
    main()
