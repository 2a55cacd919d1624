"""The attestation store: atomic writes, content-addressed blobs, runs."""

from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mlspec_attest.errors import BadInputError, StoreError, UsageError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.formats.fsutil import atomic_write, create_once
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.store.ledger import (
    DEFAULT_STORE,
    RUN_ID_RE,
    STORE_ENV,
    AttestationStore,
    check_run_id,
    default_store_path,
    new_run_id,
)

from .support import KeyPair


def all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# ----------------------------------------------------------- atomic writes
def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub/dir/file.json"
    for i in range(5):
        atomic_write(target, f"version {i}".encode())
    assert target.read_bytes() == b"version 4"
    assert all_files(tmp_path) == ["sub/dir/file.json"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_write_mode(tmp_path: Path) -> None:
    atomic_write(tmp_path / "secret", b"x", mode=0o600)
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600


def test_failed_atomic_write_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    (target / "inside").mkdir(parents=True)  # a non-empty directory cannot be replaced
    with pytest.raises(StoreError, match="cannot write"):
        atomic_write(target, b"data")
    assert all_files(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_atomic_write_into_a_file_path_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(StoreError):
        atomic_write(tmp_path / "plain/child", b"data")


# ------------------------------------------------------------------ blobs
def test_blobs_are_content_addressed(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path)
    data = b'{"manifest": true}'
    digest = store.put_blob(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "blobs/sha256" / digest).read_bytes() == data
    assert store.get_blob(digest) == data
    assert store.put_blob(data) == digest  # idempotent
    assert all_files(tmp_path) == [f"blobs/sha256/{digest}"]


def test_blobs_are_write_once(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path)
    digest = store.put_blob(b"one")
    path = tmp_path / "blobs/sha256" / digest
    before = path.stat().st_ino
    store.put_blob(b"one")
    assert path.stat().st_ino == before


def test_corrupted_blob_is_not_returned(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path)
    digest = store.put_blob(b"original")
    (tmp_path / "blobs/sha256" / digest).write_bytes(b"tampered")
    assert store.get_blob(digest) is None


@pytest.mark.parametrize(
    "digest", ["", "../../etc/passwd", "A" * 64, "0" * 63, "g" * 64, "sha256:" + "0" * 64]
)
def test_bad_blob_addresses(tmp_path: Path, digest: str) -> None:
    assert AttestationStore(tmp_path).get_blob(digest) is None


def test_missing_blob(tmp_path: Path) -> None:
    assert AttestationStore(tmp_path).get_blob("0" * 64) is None


# ------------------------------------------------------------------- runs
def test_new_run_ids_are_valid_and_unique() -> None:
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(RUN_ID_RE.match(i) for i in ids)


@pytest.mark.parametrize("run_id", ["", "../x", "a/b", "-lead", "with space", "x" * 129, "é"])
def test_invalid_run_ids(run_id: str) -> None:
    with pytest.raises(UsageError):
        check_run_id(run_id)


def test_run_dir_refuses_traversal(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        AttestationStore(tmp_path).run_dir("../../outside")


@pytest.mark.parametrize("run_id", ["r1", "2025-06-01T12:00:00Z-abc", "a.b_c:d-e", "x" * 128])
def test_valid_run_ids(run_id: str) -> None:
    assert check_run_id(run_id) == run_id


def test_resolve_run(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path)
    with pytest.raises(BadInputError, match="holds no attestations"):
        store.resolve_run(None)
    with pytest.raises(BadInputError, match="has no run 'explicit'"):
        store.resolve_run("explicit")  # a named run must exist
    store.run_dir("r1").mkdir(parents=True)
    assert store.resolve_run(None) == "r1"  # the only run
    assert store.resolve_run("r1") == "r1"
    store.run_dir("r2").mkdir(parents=True)
    with pytest.raises(UsageError, match="2 runs") as info:
        store.resolve_run(None)
    assert info.value.remedy is not None and "run_id" in info.value.remedy
    assert store.runs() == ["r1", "r2"]


def test_resolve_run_does_not_trust_the_current_run_marker(tmp_path: Path) -> None:
    # Anyone who can write the store could point the marker at an older, fully
    # valid run (a downgrade): with several runs, the caller must name one.
    store = AttestationStore(tmp_path)
    store.run_dir("old").mkdir(parents=True)
    store.run_dir("new").mkdir(parents=True)
    store.set_current_run("old")
    with pytest.raises(UsageError):
        store.resolve_run(None)
    assert store.resolve_run("new") == "new"


def test_current_run_marker(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path)
    assert store.current_run() is None
    store.set_current_run("abc")
    assert (tmp_path / "current-run").read_text() == "abc\n"
    (tmp_path / "current-run").write_text("../evil\n")
    with pytest.raises(UsageError):
        store.current_run()


def test_default_store_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(STORE_ENV, raising=False)
    assert default_store_path() == DEFAULT_STORE
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "s"))
    assert default_store_path() == tmp_path / "s"


# ----------------------------------------------------------- attestations
def test_add_and_read_attestations(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    store = AttestationStore(tmp_path)
    envelope = Envelope.sign(b"{}", INTOTO_PAYLOAD_TYPE, [keys["owner"].signer])
    bundle = Bundle.for_public_key(envelope, keys["owner"].keyid)
    path = store.add("r1", "train", keys["owner"].keyid, bundle)
    assert path == tmp_path / "runs/r1" / f"train.{keys['owner'].keyid[:8]}.sigstore.json"
    assert path.read_bytes() == canonical(bundle.to_json())
    (tmp_path / "runs/r1/.hidden").write_text("ignored")
    (tmp_path / "runs/r1/subdir").mkdir()
    (tmp_path / "runs/r1/zz-broken.sigstore.json").write_text("{not json")
    stored = list(store.attestations("r1"))
    # hidden files are writes in progress; anything else in a run is evidence or a failure
    assert [s.path.name for s in stored] == ["subdir", path.name, "zz-broken.sigstore.json"]
    assert stored[1].bundle == bundle and stored[1].error is None
    assert stored[0].bundle is None and "not a regular file" in (stored[0].error or "")
    assert stored[2].bundle is None and stored[2].error is not None
    assert "not valid JSON" in stored[2].error
    assert all_files(tmp_path / "runs/r1") == [
        ".hidden",
        path.name,
        "zz-broken.sigstore.json",
    ]


def test_attestations_of_a_missing_run(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="has no run 'nope'"):
        list(AttestationStore(tmp_path).attestations("nope"))


def test_store_files_are_not_world_writable(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    store = AttestationStore(tmp_path)
    envelope = Envelope.sign(b"{}", INTOTO_PAYLOAD_TYPE, [keys["owner"].signer])
    path = store.add("r1", "s", keys["owner"].keyid, Bundle.for_public_key(envelope, "k"))
    assert not stat.S_IMODE(path.stat().st_mode) & 0o022
    assert os.access(path, os.R_OK)


def test_a_second_attestation_of_a_stage_by_one_key_is_kept(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    store = AttestationStore(tmp_path)
    signer, keyid = keys["owner"].signer, keys["owner"].keyid
    first = Bundle.for_public_key(Envelope.sign(b"{}", INTOTO_PAYLOAD_TYPE, [signer]), keyid)
    second = Bundle.for_public_key(Envelope.sign(b"[]", INTOTO_PAYLOAD_TYPE, [signer]), keyid)
    path1 = store.add("r1", "train", keyid, first)
    path2 = store.add("r1", "train", keyid, second)
    digest = hashlib.sha256(canonical(second.to_json())).hexdigest()
    assert path1.name == f"train.{keyid[:8]}.sigstore.json"  # the documented name, unchanged
    assert path2.name == f"train.{keyid[:8]}.{digest[:16]}.sigstore.json"
    assert path1.read_bytes() == canonical(first.to_json())  # never replaced
    assert store.add("r1", "train", keyid, second) == path2  # the same bytes again: a no-op
    assert {s.path: s.bundle for s in store.attestations("r1")} == {path1: first, path2: second}


def test_an_attestation_never_replaces_a_foreign_file(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    # Even a file squatting on both names stays: the full digest is the last resort.
    store = AttestationStore(tmp_path)
    keyid = keys["owner"].keyid
    bundle = Bundle.for_public_key(
        Envelope.sign(b"{}", INTOTO_PAYLOAD_TYPE, [keys["owner"].signer]), keyid
    )
    digest = hashlib.sha256(canonical(bundle.to_json())).hexdigest()
    run = tmp_path / "runs/r1"
    run.mkdir(parents=True)
    for name in (f"s.{keyid[:8]}", f"s.{keyid[:8]}.{digest[:16]}"):
        (run / f"{name}.sigstore.json").write_text("squatter")
    path = store.add("r1", "s", keyid, bundle)
    assert path.name == f"s.{keyid[:8]}.{digest}.sigstore.json"
    assert sorted(p.read_text() for p in run.iterdir()).count("squatter") == 2


def test_create_once_has_one_winner(tmp_path: Path) -> None:
    target = tmp_path / "name"
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda i: create_once(target, f"writer {i}".encode()), range(32)))
    assert won.count(True) == 1
    assert target.read_bytes() == f"writer {won.index(True)}".encode()
    assert [p.name for p in tmp_path.iterdir()] == ["name"]  # no temporaries left


def test_put_blob_repairs_a_corrupted_copy(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path)
    digest = store.put_blob(b"original")
    (tmp_path / "blobs/sha256" / digest).write_bytes(b"tampered")
    assert store.put_blob(b"original") == digest
    assert store.get_blob(digest) == b"original"


def test_runs_lists_only_run_ids(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path)
    for name in ("r1", ".hidden", "-x"):
        (tmp_path / "runs" / name).mkdir(parents=True)
    (tmp_path / "runs/r2").write_text("a file, not a run")
    assert store.runs() == ["r1"]
