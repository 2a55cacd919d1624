"""The store under concurrency, kills and full disks: never torn, never overwritten.

Every test runs the real ``mlspec-attest sign`` (or the real write helpers) in
separate processes, with real keys and real hashing; the only things faked are
the failures themselves: a SIGKILL, a full tmpfs, a file size limit.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from mlspec_attest.errors import StoreError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.fsutil import create_once, exclusive_lock, write_error
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.store.ledger import LOCK_NAME, RUN_ID_RE, AttestationStore, check_run_id

from .support import KeyPair

PY = sys.executable
TEMP_RE = re.compile(r"^\..+\.tmp$")

# A child that imports everything `sign` needs, says it is ready, waits for the
# start gate, and only then runs the real CLI: all children race at one point.
GATED_SIGN = """
import os, sys, time
import mlspec_attest.attestation.stage, mlspec_attest.cli.sign, mlspec_attest.digest.artifact
import mlspec_attest.digest.cache, mlspec_attest.signing.keys
from mlspec_attest.cli.main import main
ready, gate = sys.argv[1], sys.argv[2]
open(ready, "w").close()
while not os.path.exists(gate):
    time.sleep(0.002)
main(sys.argv[3:])
"""


def sign_args(store: Path, key: KeyPair, stage: str, *extra: str) -> list[str]:
    return [
        "sign",
        "--stage",
        stage,
        "--key",
        str(key.key_path),
        "--store",
        str(store),
        "-q",
        *extra,
    ]


def run_sign(
    cwd: Path, args: Sequence[str], preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "mlspec_attest", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=preexec,
        check=False,
    )


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def check_store_intact(root: Path, key: KeyPair) -> int:
    """Every visible file complete and valid; hidden ones only temporaries or the lock.

    Returns the number of attestations found.
    """
    store = AttestationStore(root)
    count = 0
    for path in sorted(root.rglob("*")):
        if path.is_dir():
            continue
        rel = path.relative_to(root)
        if path.name.startswith("."):
            assert path.name == LOCK_NAME or TEMP_RE.match(path.name), rel
        elif rel.as_posix() == "current-run":
            check_run_id(path.read_text().strip())
        elif rel.parts[0] == "blobs":
            assert rel.parts[1] == "sha256" and len(rel.parts) == 3, rel
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, rel
        else:
            assert rel.parts[0] == "runs" and RUN_ID_RE.match(rel.parts[1]), rel
            bundle = Bundle.from_json(load_file(path), what=str(rel))
            assert bundle.envelope.verified_by(key.public), rel
            StageStatement.from_payload(bundle.envelope.payload)
            count += 1
    for run in store.runs():
        assert all(s.error is None for s in store.attestations(run))
    return count


def start_gated_signs(ws: Path, argvs: Sequence[Sequence[str]]) -> list[subprocess.Popen[str]]:
    """Start one ``sign`` per argv, all released at the same moment."""
    gate = ws / "gate"
    procs = []
    for i, argv in enumerate(argvs):
        procs.append(
            subprocess.Popen(
                [PY, "-c", GATED_SIGN, str(ws / f"ready-{i}"), str(gate), *argv],
                cwd=ws,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    deadline = time.monotonic() + 120
    while sum((ws / f"ready-{i}").exists() for i in range(len(argvs))) < len(argvs):
        assert time.monotonic() < deadline, "children did not start"
        assert all(p.poll() is None for p in procs), "a child died before the gate"
        time.sleep(0.01)
    gate.touch()
    return procs


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "out").mkdir(parents=True)
    (ws / "out/result.txt").write_text("result\n")
    return ws


# ------------------------------------------------------ parallel signing
@pytest.mark.parametrize("same_stage", [False, True], ids=["distinct-stages", "one-stage"])
def test_parallel_signs_without_run_id_join_one_run(
    workspace: Path, keys: dict[str, KeyPair], same_stage: bool
) -> None:
    # Reported against main: 32 parallel signs on an empty store made 32 runs.
    store, key, n = workspace / "store", keys["owner"], 32
    argvs = [
        sign_args(
            store,
            key,
            "train" if same_stage else f"step-{i}",
            "--product",
            "out/result.txt",
            "--param",
            f"worker={i}",
        )
        for i in range(n)
    ]
    procs = start_gated_signs(workspace, argvs)
    outcomes = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    assert [rc for rc, _ in outcomes] == [0] * n, outcomes
    runs = AttestationStore(store).runs()
    assert len(runs) == 1
    assert (store / "current-run").read_text() == runs[0] + "\n"
    assert check_store_intact(store, key) == n
    names = sorted(p.name for p in (store / "runs" / runs[0]).iterdir())
    workers = set()
    for stored in AttestationStore(store).attestations(runs[0]):
        assert stored.bundle is not None
        meta = StageStatement.from_payload(stored.bundle.envelope.payload).metadata
        assert meta.run_id == runs[0]
        workers.add(meta.parameters["worker"])
    assert workers == set(range(n))  # no attestation replaced another
    if same_stage:
        # The first keeps the documented name; the others add their own digest.
        first = f"train.{key.keyid[:8]}.sigstore.json"
        assert first in names
        assert all(
            re.fullmatch(rf"train\.{key.keyid[:8]}\.[0-9a-f]{{16}}\.sigstore\.json", name)
            for name in names
            if name != first
        )


def test_new_run_still_starts_a_run_and_others_join_it(
    workspace: Path, keys: dict[str, KeyPair]
) -> None:
    store, key = workspace / "store", keys["owner"]
    product = ("--product", "out/result.txt")
    first = run_sign(workspace, sign_args(store, key, "ingest", *product))
    assert first.returncode == 0, first.stderr
    yesterday = AttestationStore(store).current_run()
    # Without --new-run a later sign joins the current run, however old it is.
    again = run_sign(workspace, sign_args(store, key, "split", *product))
    assert again.returncode == 0 and AttestationStore(store).current_run() == yesterday
    fresh = run_sign(workspace, sign_args(store, key, "ingest", "--new-run", *product))
    assert fresh.returncode == 0, fresh.stderr
    today = AttestationStore(store).current_run()
    assert today not in (None, yesterday)
    joined = run_sign(workspace, sign_args(store, key, "split", *product))
    assert joined.returncode == 0 and f"(run {today}," in joined.stderr


# ----------------------------------------------------------------- kills
def _big_tree(root: Path, files: int) -> None:
    root.mkdir(parents=True)
    for i in range(files):
        (root / f"part-{i:05d}.bin").write_bytes(i.to_bytes(4, "big") * 256)


def _store_entries(root: Path) -> set[str]:
    return {os.path.join(d, f) for d, _, files in os.walk(root) for f in files}


def _wait_for_a_write(root: Path, before: set[str], proc: subprocess.Popen[bytes]) -> None:
    """Return once ``proc`` has created something in the store (or has exited)."""
    while _store_entries(root) == before and proc.poll() is None:
        time.sleep(0.0002)


def test_sign_killed_at_random_points_leaves_the_store_intact(
    workspace: Path, keys: dict[str, KeyPair]
) -> None:
    store, key = workspace / "store", keys["owner"]
    _big_tree(workspace / "data", 1500)
    _big_tree(workspace / "model", 1500)
    argv = sign_args(store, key, "train", "--material", "data", "--product", "model")
    started = time.monotonic()
    assert run_sign(workspace, argv).returncode == 0
    duration = time.monotonic() - started
    rng = random.Random(20261206)  # seeded: the same kill points on every run
    for i in range(10):
        # A changed product means a new manifest blob: every sign writes blobs too.
        (workspace / "model/iteration.txt").write_text(f"{i}\n")
        extra = ["--new-run"] if rng.random() < 0.3 else []
        before = _store_entries(store)
        proc = subprocess.Popen(
            [PY, "-m", "mlspec_attest", *argv, *extra],
            cwd=workspace,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if i % 2:  # anywhere in the run: start-up, hashing, signing, writing
            time.sleep(rng.uniform(0.05, 1.1) * duration)
        else:  # inside the short write phase, which a uniform delay rarely hits
            _wait_for_a_write(store, before, proc)
            time.sleep(rng.uniform(0, 0.002))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        check_store_intact(store, key)
    after = run_sign(workspace, argv)
    assert after.returncode == 0, after.stderr
    assert check_store_intact(store, key) >= 2


@pytest.mark.parametrize("writer", ["create_once", "atomic_write"])
def test_write_killed_midway_is_invisible(tmp_path: Path, writer: str) -> None:
    # The kill lands while the bytes are written or fsynced: no half file, ever.
    target = tmp_path / "blob"
    if writer == "atomic_write":
        target.write_bytes(b"old")
    code = (
        "import sys; from pathlib import Path; from mlspec_attest.formats import fsutil; "
        f"fsutil.{writer}(Path(sys.argv[1]), b'\\x01' * (96 << 20))"
    )
    proc = subprocess.Popen([PY, "-c", code, str(target)])
    deadline = time.monotonic() + 60
    while not any(TEMP_RE.match(p.name) for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.0005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    if writer == "atomic_write":
        assert target.read_bytes() == b"old"
    else:
        assert not target.exists()
    assert all(TEMP_RE.match(p.name) for p in tmp_path.iterdir() if p != target)
    # The leftover temporary does not stand in the way of the next write.
    assert create_once(tmp_path / "blob2", b"new")


def test_readers_skip_leftover_temporaries(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    store = AttestationStore(tmp_path)
    digest = store.put_blob(b"manifest")
    (tmp_path / "runs/r1").mkdir(parents=True)
    (tmp_path / "runs/r1/.train.1234abcd.sigstore.json.k2j3.tmp").write_text('{"half')
    (tmp_path / "runs/.r2.tmp").mkdir()
    (tmp_path / f"blobs/sha256/.{digest}.x.tmp").write_text("half")
    (tmp_path / ".current-run.a.tmp").write_text("half")
    assert store.runs() == ["r1"]
    assert list(store.attestations("r1")) == []
    assert store.get_blob(digest) == b"manifest"
    assert store.current_run() is None
    # ... and never delete them: one may belong to a live writer.
    assert (tmp_path / "runs/r1/.train.1234abcd.sigstore.json.k2j3.tmp").exists()


# ------------------------------------------------------------------ locks
def test_lock_times_out_with_a_clear_error(tmp_path: Path) -> None:
    lock = tmp_path / LOCK_NAME
    # flock conflicts between open file descriptions, even in one process.
    with (
        exclusive_lock(lock),
        pytest.raises(StoreError, match="held by another process") as info,
        exclusive_lock(lock, timeout=0.2),
    ):
        pass
    assert info.value.remedy is not None and "MLSPEC_RUN_ID" in info.value.remedy
    with exclusive_lock(lock, timeout=0.2):
        pass  # released on leaving the block


def test_lock_of_a_killed_holder_is_released(tmp_path: Path) -> None:
    lock = tmp_path / LOCK_NAME
    code = (
        "import sys, time; from pathlib import Path; from mlspec_attest.formats.fsutil import "
        "exclusive_lock\nwith exclusive_lock(Path(sys.argv[1])):\n"
        "    print('locked', flush=True); time.sleep(600)"
    )
    proc = subprocess.Popen([PY, "-c", code, str(lock)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    with pytest.raises(StoreError), exclusive_lock(lock, timeout=0.1):
        pass
    proc.kill()
    proc.wait(timeout=60)
    with exclusive_lock(lock, timeout=5):
        pass  # the kernel dropped the dead holder's lock


def test_claim_run_joins_or_starts(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path)
    first = store.claim_run()
    assert store.current_run() == first and (tmp_path / LOCK_NAME).exists()
    assert store.claim_run() == first
    second = store.claim_run(new_run=True)
    assert second != first and store.current_run() == second


# ------------------------------------------------------------- full disk
@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a real ENOSPC. Needs root (or CAP_SYS_ADMIN) and mount(8)."""
    mount = shutil.which("mount")
    target = tmp_path / "tmpfs"
    target.mkdir()
    if mount is None:
        pytest.skip("mount(8) is not installed")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def _fill(directory: Path) -> Path:
    """Write a file until its filesystem is full, down to the last byte."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    chunk = 1 << 16
    try:
        while chunk:
            try:
                os.write(fd, b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                chunk //= 2
    finally:
        os.close(fd)
    return filler


def assert_one_clear_error(result: subprocess.CompletedProcess[str], reason: str) -> None:
    assert result.returncode == 4, result.stderr  # StoreError: the store is unavailable
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "cannot write" in errors[0] and reason in errors[0]
    assert "fix: free space" in result.stderr


@pytest.mark.parametrize("new_run", [False, True], ids=["attestation", "current-run"])
def test_full_disk_fails_clearly_and_keeps_the_store(
    workspace: Path, keys: dict[str, KeyPair], small_tmpfs: Path, new_run: bool
) -> None:
    store, key = small_tmpfs / "store", keys["owner"]
    argv = sign_args(store, key, "train", "--product", "out")
    assert run_sign(workspace, argv).returncode == 0
    before = snapshot(store)
    filler = _fill(small_tmpfs)
    (workspace / "out/result.txt").write_text("retrained\n")  # a new manifest blob too
    failed = run_sign(workspace, [*argv, "--new-run"] if new_run else argv)
    assert_one_clear_error(failed, "No space left on device")
    assert snapshot(store) == before  # byte for byte, and no temporaries left behind
    filler.unlink()
    retried = run_sign(workspace, argv)
    assert retried.returncode == 0, retried.stderr
    assert check_store_intact(store, key) == 2


def _limit_file_size() -> None:
    # With SIGXFSZ ignored, a write past the limit fails with EFBIG instead of killing.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))


def test_file_size_limit_fails_clearly_and_keeps_the_store(
    workspace: Path, keys: dict[str, KeyPair]
) -> None:
    store, key = workspace / "store", keys["owner"]
    for i in range(12):
        (workspace / f"out/part-{i:02d}.txt").write_text(f"part {i}\n")
    argv = sign_args(store, key, "train", "--product", "out")
    assert run_sign(workspace, argv).returncode == 0
    before = snapshot(store)
    (workspace / "out/result.txt").write_text("retrained\n")
    failed = run_sign(workspace, argv, preexec=_limit_file_size)
    assert_one_clear_error(failed, "File too large")
    assert snapshot(store) == before
    assert run_sign(workspace, argv).returncode == 0


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_a_full_disk_error_names_the_remedy(code: int) -> None:
    error = write_error(Path("store/blobs/x"), OSError(code, os.strerror(code)))
    assert error.message == f"cannot write store/blobs/x: {os.strerror(code)}"
    assert error.remedy is not None and "free space" in error.remedy
    assert write_error(Path("x"), OSError(errno.EACCES, "Permission denied")).remedy is None
