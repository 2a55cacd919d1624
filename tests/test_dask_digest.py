"""Hashing on a Dask cluster (digest/cluster.py, digest/cluster_rows.py): the local result.

A real ``LocalCluster`` of two worker processes hashes files, shards and dataset
rows; the manifests, roots and leakage records must be byte-identical to the
local engine's. Failures are real too: a file that is gone when a task first
reads it (moved away by a worker plugin as the task starts, put back when the
task fails) is retried and the digest comes out whole; a worker process that
dies mid-task is replaced and its task run again; a file that never comes back
fails the whole digest, never a manifest of the rest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.cli import main as cli_main
from mlspec_attest.digest import cluster, dask_client
from mlspec_attest.digest.artifact import ArtifactDigest, digest_path
from mlspec_attest.digest.datasets import open_dataset, open_material
from mlspec_attest.digest.scheme import DigestScheme
from mlspec_attest.errors import ArtifactPathError
from mlspec_attest.evidence.content_sets import hash_content
from mlspec_attest.evidence.leakage import prove_splits

distributed = pytest.importorskip("distributed", reason="needs the dask extra")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A cluster of two worker processes, as a user would start one; active only in
    ``cluster.use`` blocks."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=":0", silence_logs=40
        ) as local,
        distributed.Client(local) as c,
    ):
        yield c


@pytest.fixture
def on_cluster(client: Any) -> Iterator[Any]:
    with cluster.use(client):
        yield client


def tree(root: Path, count: int = 40) -> Path:
    for i in range(count):
        path = root / f"d{i % 3}" / f"f{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(97 * i))  # f000 is empty
    (root / "a-c").write_bytes(b"sorts after a/ in path-component order")
    return root


def same(local: ArtifactDigest, there: ArtifactDigest) -> None:
    assert there.digest_set() == local.digest_set()
    assert (there.kind, there.size, there.files) == (local.kind, local.size, local.files)
    if local.manifest is not None:
        assert there.manifest is not None
        assert there.manifest.canonical_bytes() == local.manifest.canonical_bytes()


SCHEMES = [
    DigestScheme(),
    DigestScheme("blake3"),
    DigestScheme("blake2b", "shards", 500),
]


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.key)
def test_a_directory_and_a_file_hash_to_the_local_manifest(
    tmp_path: Path, client: Any, scheme: DigestScheme
) -> None:
    root = tree(tmp_path / "m")
    local = digest_path(root, scheme=scheme), digest_path(root / "d1/f037.bin", scheme=scheme)
    with cluster.use(client):
        there = digest_path(root, scheme=scheme), digest_path(root / "d1/f037.bin", scheme=scheme)
    for a, b in zip(local, there, strict=True):
        same(a, b)


def test_nothing_runs_on_the_cluster_outside_the_block(tmp_path: Path, client: Any) -> None:
    with cluster.use(client):
        assert dask_client.active() is client
    assert dask_client.active() is None


# --------------------------------------------------------------- failures
def _plugin(state: Path, victim: Path | None, *, kill: bool) -> Any:
    """A worker plugin, defined here so it travels by value: on the first task start
    anywhere it moves ``victim`` away (or kills its own worker process); on a task
    error it puts the file back, unless ``state/keep-away`` exists."""

    class Trouble(distributed.WorkerPlugin):  # type: ignore[misc]
        def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
            if finish == "executing" and _first(state / "started"):
                if kill:
                    os._exit(1)  # the worker process dies holding the task
                assert victim is not None
                victim.rename(victim.with_name(victim.name + ".away"))
            back = victim is not None and not (state / "keep-away").exists()
            if finish == "error" and back and _first(state / "restored"):
                assert victim is not None
                victim.with_name(victim.name + ".away").rename(victim)

    return Trouble()


def _first(marker: Path) -> bool:
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


@pytest.fixture
def trouble(client: Any) -> Iterator[Callable[..., None]]:
    names: list[str] = []

    def register(*args: Any, **kwargs: Any) -> None:
        name = f"trouble-{len(names)}"
        client.register_plugin(_plugin(*args, **kwargs), name=name)
        names.append(name)

    yield register
    for name in names:
        client.unregister_worker_plugin(name)


def test_a_file_gone_at_the_first_read_is_retried(
    tmp_path: Path, on_cluster: Any, trouble: Callable[..., None]
) -> None:
    root = tree(tmp_path / "m")
    local = cluster_free_digest(root)
    state = tmp_path / "state"
    state.mkdir()
    trouble(state, root / "d2/f020.bin", kill=False)
    same(local, digest_path(root))
    assert (state / "restored").exists()  # the task did fail once, and was run again


def test_a_file_that_stays_gone_fails_the_whole_digest(
    tmp_path: Path, on_cluster: Any, trouble: Callable[..., None]
) -> None:
    root = tree(tmp_path / "m")
    state = tmp_path / "state"
    state.mkdir()
    (state / "keep-away").touch()
    trouble(state, root / "d2/f020.bin", kill=False)
    with pytest.raises(ArtifactPathError, match=r"f020\.bin: no such file"):
        digest_path(root)


def test_a_worker_killed_mid_task_is_replaced(
    tmp_path: Path, on_cluster: Any, trouble: Callable[..., None]
) -> None:
    root = tree(tmp_path / "m")
    local = cluster_free_digest(root)
    state = tmp_path / "state"
    state.mkdir()
    trouble(state, None, kill=True)
    same(local, digest_path(root))
    assert (state / "started").exists()


def cluster_free_digest(root: Path) -> ArtifactDigest:
    token = dask_client._ACTIVE.set(None)
    try:
        return digest_path(root)
    finally:
        dask_client._ACTIVE.reset(token)


# --------------------------------------------------------------- rows
def write_csv(path: Path, header: str, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")


@pytest.fixture
def splits(tmp_path: Path) -> dict[str, Path]:
    """Directory splits of several shards: a split label, a column one shard lacks,
    a header-only shard, a one-row shard, rows shared across splits."""
    train, hold = tmp_path / "train", tmp_path / "hold"
    write_csv(train / "part-0.csv", "id,x,split,note", [f"{i},{i % 7},train," for i in range(9)])
    write_csv(train / "part-1.csv", "id,x,split", [f"{i},{i % 5},train" for i in range(9, 20)])
    write_csv(train / "part-2.csv", "id,x,split,extra", [])
    write_csv(train / "part-3.csv", "id,x,split", ["20,3,train"])
    write_csv(hold / "part-0.csv", "id,x,split", [f"{i},{i % 11},hold" for i in range(30, 45)])
    write_csv(hold / "part-1.csv", "id,x,split,c", [f"{i},{i},hold,1" for i in range(45, 50)])
    return {"train": train, "hold": hold}


def test_the_leakage_proof_is_the_local_one(splits: dict[str, Path], client: Any) -> None:
    local = prove_splits(splits, exclude_columns=["id"])
    with cluster.use(client):
        there = prove_splits(splits, exclude_columns=["id"])
    assert json.dumps(there.record, sort_keys=True) == json.dumps(local.record, sort_keys=True)
    assert there.blobs == local.blobs
    assert local.record["splits"]["train"]["droppedColumns"]["split"] == "split-label"


def test_content_sets_of_files_and_mixed_materials(tmp_path: Path, client: Any) -> None:
    images = tmp_path / "images"
    for i in range(12):
        (images / f"{i:02d}.png").parent.mkdir(exist_ok=True)
        (images / f"{i:02d}.png").write_bytes(bytes([i % 5]) * 10)
    write_csv(tmp_path / "mixed/a.csv", "k,v", ["1,2", "3,2"])
    write_csv(tmp_path / "mixed/b.csv", "k,v", ["1,2"])
    (tmp_path / "mixed/c.png").write_bytes(b"png")
    for dataset in (open_dataset(images), open_material(tmp_path / "mixed")):
        assert not isinstance(dataset, str)
        local = hash_content(dataset)
        with cluster.use(client):
            there = hash_content(dataset)
        assert there.profile == local.profile
        assert {k: v.digests for k, v in there.sets.items()} == {
            k: v.digests for k, v in local.sets.items()
        }


@pytest.mark.parametrize(
    ("first", "second", "constant"),
    [(7, 7.0, True), (7.0, 7, True), (7, 7.5, False), (2**60, 2.0**60, None), (1, True, False)],
)
def test_constant_columns_across_shards_are_the_local_ones(
    tmp_path: Path, client: Any, first: float, second: float, constant: bool | None
) -> None:
    """Shards typed differently (Parquet int64 in one, double or bool in the next): the
    cluster compares canonical digests, the local pass normalized values (the double 7.0
    is the integer 7, a large integer a decimal string), and they agree."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    (tmp_path / "d").mkdir()
    pq.write_table(pa.table({"k": [1, 2], "v": [first, first]}), tmp_path / "d/a.parquet")
    pq.write_table(pa.table({"k": [3], "v": [second]}), tmp_path / "d/b.parquet")
    dataset = open_material(tmp_path / "d")
    assert not isinstance(dataset, str)
    local = hash_content(dataset)
    with cluster.use(client):
        there = hash_content(dataset)
    if constant is not None:
        assert ("v" in local.profile.constant) is constant
    assert there.profile == local.profile
    assert {k: v.digests for k, v in there.sets.items()} == {
        k: v.digests for k, v in local.sets.items()
    }


# --------------------------------------------------------------- the CLI
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(*args: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            cli_main.main([str(a) for a in args])
        out, err = capsys.readouterr()
        code = info.value.code
        return (code if isinstance(code, int) else 0), out, err

    return invoke


def test_digest_and_leakage_check_with_local_dask_workers(
    tmp_path: Path, splits: dict[str, Path], run: Run
) -> None:
    root = tree(tmp_path / "m")
    args = ["--serialization", "shards", "--shard-size", "700", "--json", "-q"]
    assert run("digest", root, *args)[:2] == run("digest", root, *args, "--dask-workers", "2")[:2]
    check = ["leakage", "check", f"train={splits['train']}", f"hold={splits['hold']}", "--json"]
    local = run(*check)
    assert local[0] == 0, local
    assert run(*check, "--dask-workers", "2")[:2] == local[:2]


def test_a_scheduler_that_is_not_there_is_unavailable(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    code, _, err = run(
        "digest", tmp_path, "--dask-scheduler", "tcp://127.0.0.1:9", "--json"
    )  # fmt: skip
    assert code == 4, err
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert "Traceback" not in err
