"""The gate holds the bytes it verified for the loader, so a model whose files claim more
memory than the process has left is refused with that reason before any buffer is made:
a sparse file of a few KiB on disk may claim gigabytes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlspec_attest.formats import memory
from mlspec_attest.formats.memory import memory_available

GATE_UNDER_LIMIT = """
import resource, sys
from pathlib import Path
from mlspec_attest.errors import BadInputError
from mlspec_attest.serve.gate import read_verified
vm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (vm + (512 << 20), resource.RLIM_INFINITY))
try:
    read_verified(Path(sys.argv[1]), {"sha256": "0" * 64})
except BadInputError as exc:
    print("refused:", exc.message)
"""


def test_a_sparse_file_larger_than_the_memory_left_is_refused_before_it_is_read(
    tmp_path: Path,
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "card.json").write_text("{}")
    with (model / "weights.bin").open("wb") as f:
        f.truncate(2 << 30)  # 2 GiB claimed, nothing on disk
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", GATE_UNDER_LIMIT, str(model)],
        capture_output=True, text=True, cwd=root, timeout=120, check=True,
    )  # fmt: skip
    assert "refused: model file weights.bin: the model's files need more than" in done.stdout
    assert "of memory this process has left" in done.stdout


def test_memory_available_is_the_smallest_bound_the_system_gives(tmp_path: Path) -> None:
    assert (memory_available() or 1) > 0
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text("MemTotal: 900 kB\nMemAvailable:     500 kB\n")
    cgroup = tmp_path / "cgroup"
    (cgroup / "memory" / "job").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text("4:memory:/job\n0::/\n")
    (cgroup / "memory" / "job" / "memory.limit_in_bytes").write_text("300000\n")
    (cgroup / "memory" / "job" / "memory.usage_in_bytes").write_text("100000\n")
    saved = memory._PROC, memory._CGROUP
    memory._PROC, memory._CGROUP = proc, cgroup  # the operating system's files, stood in
    try:
        assert memory._meminfo_available() == 500 * 1024
        assert memory._cgroup_headroom() == 200_000
        (cgroup / "memory" / "job" / "memory.limit_in_bytes").write_text(str(2**63 - 4096))
        assert memory._cgroup_headroom() is None  # v1's "no limit"
        (proc / "self" / "cgroup").write_text("0::/job\n")
        (cgroup / "job").mkdir()
        (cgroup / "job" / "memory.max").write_text("max\n")
        (cgroup / "job" / "memory.current").write_text("5\n")
        assert memory._cgroup_headroom() is None  # v2's "no limit"
        (cgroup / "job" / "memory.max").write_text("4096\n")
        assert memory._cgroup_headroom() == 4091
    finally:
        memory._PROC, memory._CGROUP = saved
    assert os.path.exists("/proc/meminfo") == (memory._meminfo_available() is not None)
