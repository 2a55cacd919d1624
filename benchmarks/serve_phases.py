"""Target (a) of issue 13, split by how fast the machine ran while it was measured.

On the 2-vCPU VMs this project is measured on, a whole process sometimes runs about 1.6x
slower for a few tenths of a second to minutes at a time: the bare app's median request
moves from about 1.2 to 1.9 µs, and every other figure with it, within one process and
with its address-space layout and hash seed fixed (docs/benchmarks.md, "Tenth session").
A median over one stretch of requests measures whichever speed the stretch fell in.

This runs the bare app, the middleware with the in-memory log and with the journal,
interleaved request by request (as ``serve_overhead.py`` (a) does), in blocks of
``--block`` rounds; each block's medians are taken, and the blocks are grouped by the
bare app's median in them: *usual* blocks within 15 % of the fastest block's bare time,
*slow* the rest. It prints the overhead (each app's median minus the bare app's, in the
same block) over all blocks, over the usual ones and over the slow ones, and the bare app's
time in each group, so a reader sees both the figure and the speed it was taken at.

    python benchmarks/serve_phases.py [--blocks 40] [--block 250]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_overhead as so  # the same apps and the same request

#: A block is *usual* when its bare median is within this factor of the fastest block's.
USUAL = 1.15


async def block(apps: dict[str, Any], rounds: int) -> dict[str, float]:
    """Medians (µs) of ``rounds`` requests through each app, interleaved."""
    times: dict[str, list[int]] = {name: [] for name in apps}
    for _ in range(rounds):
        for name, app in apps.items():
            times[name].append(await so.one_call(app))
    return {name: statistics.median(values) / 1000 for name, values in times.items()}


async def measure(apps: dict[str, Any], blocks: int, rounds: int) -> list[dict[str, float]]:
    for _ in range(1000):  # warm up every path
        for app in apps.values():
            await so.one_call(app)
    return [await block(apps, rounds) for _ in range(blocks)]


def report(results: list[dict[str, float]]) -> None:
    fastest = min(r["bare"] for r in results)
    usual = [r for r in results if r["bare"] <= fastest * USUAL]
    slow = [r for r in results if r["bare"] > fastest * USUAL]
    print(f"{len(results)} blocks: {len(usual)} at the usual speed, {len(slow)} slow")
    for label, group in (("all", results), ("usual", usual), ("slow", slow)):
        if not group:
            continue
        bare = statistics.median(r["bare"] for r in group)
        parts = [f"bare {bare:5.2f} µs"]
        for name in ("memory", "journal"):
            over = [r[name] - r["bare"] for r in group]
            parts.append(
                f"{name} overhead median {statistics.median(over):5.2f} "
                f"({min(over):5.2f}-{max(over):5.2f})"
            )
        print(f"    {label:5} ({len(group):2} blocks)  " + ";  ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--block", type=int, default=250, help="rounds per block")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        apps = {
            "bare": so.bare_app,
            "memory": so.wrapped_app("memory", Path(tmp)),
            "journal": so.wrapped_app("journal", Path(tmp) / "journal"),
        }
        try:
            report(asyncio.run(measure(apps, args.blocks, args.block)))
        finally:
            apps["journal"].log.close()


if __name__ == "__main__":
    main()
