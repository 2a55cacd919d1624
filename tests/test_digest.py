"""File digests and directory manifests, checked against OpenSSF model-signing's goldens."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlspec_attest.digest.artifact import digest_directory, digest_path, sha256_file
from mlspec_attest.digest.directory import (
    MANIFEST_TYPE,
    DirectoryManifest,
    FileEntry,
    ManifestDiff,
    path_components_key,
)
from mlspec_attest.errors import ArtifactPathError, BadInputError
from mlspec_attest.formats.jsonio import loads_strict

from .support import asset

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def root_of(hex_digests: list[str]) -> str:
    """model-signing's "files" root: sha256 over the raw digests, in order."""
    h = hashlib.sha256()
    for d in hex_digests:
        h.update(bytes.fromhex(d))
    return h.hexdigest()


# ---------------------------------------------------------------- files
@pytest.mark.parametrize(
    "data", [b"", b"x", b"hello world\n", bytes(range(256)) * 1000, b"\0" * (4 * 1024 * 1024 + 3)]
)
def test_file_sha256_equals_hashlib(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path / "f.bin", data)
    assert sha256_file(path) == (hashlib.sha256(data).hexdigest(), len(data))
    result = digest_path(path)
    assert result.kind == "file"
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.digest_set() == {"sha256": hashlib.sha256(data).hexdigest()}
    assert result.manifest is None


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "empty", b"")
    assert sha256_file(path) == (EMPTY_SHA256, 0)


def test_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactPathError, match="no such file"):
        digest_path(tmp_path / "nope")
    with pytest.raises(ArtifactPathError, match="no such file"):
        sha256_file(tmp_path / "nope")


def test_sha256_file_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ArtifactPathError):
        sha256_file(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_inside_a_directory_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "model/a", b"a")
    os.mkfifo(tmp_path / "model/pipe")
    with pytest.raises(ArtifactPathError, match="not a regular file"):
        digest_directory(tmp_path / "model")


# ----------------------------------------------------------- directories
def test_directory_digest_is_manifest_root(tmp_path: Path) -> None:
    write(tmp_path / "m/weights.bin", b"w" * 10)
    write(tmp_path / "m/sub/config.json", b"{}")
    result = digest_path(tmp_path / "m")
    assert result.kind == "directory"
    assert result.manifest is not None
    assert result.files == 2
    assert result.size == 12
    expected = root_of([hashlib.sha256(b"{}").hexdigest(), hashlib.sha256(b"w" * 10).hexdigest()])
    assert result.sha256 == expected == result.manifest.root
    assert result.manifest_address == hashlib.sha256(result.manifest.canonical_bytes()).hexdigest()
    assert result.digest_set() == {"sha256": expected, "manifest-sha256": result.manifest_address}


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    manifest = digest_directory(tmp_path / "empty")
    assert manifest.entries == ()
    assert manifest.root == EMPTY_SHA256
    assert digest_path(tmp_path / "empty").files == 0


def test_empty_subdirectories_do_not_change_the_manifest(tmp_path: Path) -> None:
    write(tmp_path / "m/a", b"a")
    before = digest_directory(tmp_path / "m")
    (tmp_path / "m/empty/deeper").mkdir(parents=True)
    assert digest_directory(tmp_path / "m") == before


def test_empty_files_are_entries(tmp_path: Path) -> None:
    write(tmp_path / "m/empty", b"")
    manifest = digest_directory(tmp_path / "m")
    assert manifest.entries == (FileEntry("empty", EMPTY_SHA256, 0),)
    assert manifest.root == root_of([EMPTY_SHA256])


def test_unicode_names(tmp_path: Path) -> None:
    names = ["données/é.bin", "模型.pt", "ñ/ü/ß"]
    for i, name in enumerate(names):
        write(tmp_path / "m" / name, str(i).encode())
    manifest = digest_directory(tmp_path / "m")
    assert sorted(e.path for e in manifest.entries) == sorted(names)
    again = DirectoryManifest.from_json(loads_strict(manifest.canonical_bytes()))
    assert again == manifest


def test_path_component_order(tmp_path: Path) -> None:
    # '-' (0x2d) sorts before '/' (0x2f) as text, but a/b comes first by components.
    write(tmp_path / "m/a-c", b"second")
    write(tmp_path / "m/a/b", b"first")
    write(tmp_path / "m/a.d", b"third")
    manifest = digest_directory(tmp_path / "m")
    assert [e.path for e in manifest.entries] == ["a/b", "a-c", "a.d"]
    assert manifest.root == root_of(
        [hashlib.sha256(x).hexdigest() for x in (b"first", b"second", b"third")]
    )
    assert path_components_key("a/b") < path_components_key("a-c")


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(
            st.text("ab-._", min_size=1, max_size=3).filter(lambda c: c not in (".", "..")),
            min_size=1,
            max_size=3,
        ),
        min_size=1,
        max_size=8,
    )
)
def test_manifest_order_is_pure_path_order(parts: list[list[str]]) -> None:
    from pathlib import PurePosixPath

    names = {"/".join(p) for p in parts}
    entries = [FileEntry(n, hashlib.sha256(n.encode()).hexdigest(), 1) for n in names]
    built = DirectoryManifest.build(reversed(entries))
    assert [e.path for e in built.entries] == sorted(names, key=lambda n: PurePosixPath(n).parts)
    assert DirectoryManifest.build(entries) == built


def test_thread_pool_gives_the_same_manifest(tmp_path: Path) -> None:
    for i in range(12):
        write(tmp_path / f"m/d{i % 3}/f{i}", os.urandom(100))
    assert digest_directory(tmp_path / "m", workers=1) == digest_directory(
        tmp_path / "m", workers=4
    )


def test_ignore_paths(tmp_path: Path) -> None:
    write(tmp_path / "m/keep", b"k")
    write(tmp_path / "m/model.sig", b"sig")
    write(tmp_path / "m/.git/HEAD", b"ref")
    manifest = digest_directory(tmp_path / "m", ignore=["model.sig", ".git"])
    assert [e.path for e in manifest.entries] == ["keep"]


def test_root_does_not_cover_names_but_address_does(tmp_path: Path) -> None:
    write(tmp_path / "m/a", b"same")
    first = digest_path(tmp_path / "m")
    (tmp_path / "m/a").rename(tmp_path / "m/b")
    second = digest_path(tmp_path / "m")
    assert first.sha256 == second.sha256  # model-signing's root: digests only
    assert first.manifest_address != second.manifest_address
    assert first != second  # the DigestSet differs, so a verifier sees the rename


# --------------------------------------------------------------- symlinks
def test_symlink_escaping_the_root_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "secret.txt", b"outside")
    write(tmp_path / "m/a", b"a")
    (tmp_path / "m/link").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ArtifactPathError, match="outside"):
        digest_directory(tmp_path / "m")


def test_relative_symlink_escaping_the_root_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "secret.txt", b"outside")
    (tmp_path / "m").mkdir()
    (tmp_path / "m/link").symlink_to("../secret.txt")
    with pytest.raises(ArtifactPathError, match="outside"):
        digest_path(tmp_path / "m")


def test_symlink_to_a_directory_outside_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "elsewhere/x", b"x")
    (tmp_path / "m").mkdir()
    (tmp_path / "m/dir").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ArtifactPathError):
        digest_directory(tmp_path / "m")


def test_symlink_inside_the_root_hashes_its_target(tmp_path: Path) -> None:
    write(tmp_path / "m/real", b"content")
    (tmp_path / "m/alias").symlink_to("real")
    manifest = digest_directory(tmp_path / "m")
    assert {e.path: e.sha256 for e in manifest.entries} == {
        "alias": hashlib.sha256(b"content").hexdigest(),
        "real": hashlib.sha256(b"content").hexdigest(),
    }


# ------------------------------------------------------------------- diff
def test_manifest_diff(tmp_path: Path) -> None:
    write(tmp_path / "m/same", b"s")
    write(tmp_path / "m/changed", b"1")
    write(tmp_path / "m/removed", b"r")
    before = digest_directory(tmp_path / "m")
    write(tmp_path / "m/changed", b"2")
    (tmp_path / "m/removed").unlink()
    write(tmp_path / "m/added/new", b"n")
    after = digest_directory(tmp_path / "m")
    diff = before.diff(after)
    assert diff == ManifestDiff(added=("added/new",), removed=("removed",), changed=("changed",))
    assert not diff.empty
    assert diff.summary() == "changed: changed; added: added/new; removed: removed"
    assert before.diff(before).empty
    assert before.diff(before).summary() == "no file differences"


def test_manifest_diff_summary_truncates() -> None:
    diff = ManifestDiff(added=tuple(f"f{i}" for i in range(8)))
    assert diff.summary(limit=2) == "added: f0, f1 (+6 more)"


# ------------------------------------------------------------------- JSON
def test_manifest_json_round_trip(tmp_path: Path) -> None:
    write(tmp_path / "m/a/b", b"ab")
    write(tmp_path / "m/c", b"c")
    manifest = digest_directory(tmp_path / "m")
    doc = manifest.to_json()
    assert doc["_type"] == MANIFEST_TYPE
    assert doc["algorithm"] == "sha256"
    assert doc["root"] == manifest.root
    assert doc["files"] == [
        {"path": "a/b", "sha256": hashlib.sha256(b"ab").hexdigest(), "size": 2},
        {"path": "c", "sha256": hashlib.sha256(b"c").hexdigest(), "size": 1},
    ]
    assert DirectoryManifest.from_json(json.loads(json.dumps(doc))) == manifest
    assert json.loads(manifest.canonical_bytes()) == doc


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(root="0" * 64), "root does not match"),
        (lambda d: d.update(_type="something-else"), "not an mlspec-attest directory manifest"),
        (lambda d: d.update(algorithm="md5"), "unsupported algorithm"),
        (lambda d: d["files"][0].update(path="../escape"), "not a normalized relative path"),
        (lambda d: d["files"][0].update(path="/abs"), "not a normalized relative path"),
        (lambda d: d["files"][0].pop("size"), "bad file entry"),
    ],
)
def test_manifest_from_json_refuses_bad_documents(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path / "m/a", b"a")
    doc = digest_directory(tmp_path / "m").to_json()
    mutate(doc)
    # every refusal is bad input (exit 3); path problems surface as ArtifactPathError
    with pytest.raises(BadInputError, match=message):
        DirectoryManifest.from_json(doc)


# ---------------------------------------------- model-signing interop goldens
def _golden_lines(path: Path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            name, _, digest = line.rpartition(":")
            out.append((name, digest))
    return out


FOLDER_MODELS = {
    "deep_model_folder": "deep_model",
    "sample_model_folder": "sample_model",
    "model_folder_with_empty_file": "empty_file_inside_model",
    "empty_model_folder": "empty_folder_model",
}


@pytest.mark.parametrize("model", list(FOLDER_MODELS))
def test_directory_manifest_matches_model_signing_golden(oms_golden: Path, model: str) -> None:
    golden = oms_golden / "golden-manifests/file/TestSerializer" / model
    source = oms_golden / "golden-models" / model / FOLDER_MODELS[model]
    expected = _golden_lines(golden)
    manifest = digest_directory(source)
    assert [(e.path, e.sha256) for e in manifest.entries] == expected
    assert manifest.root == root_of([d for _, d in expected])


@pytest.mark.parametrize(
    ("model", "inner"),
    [("sample_model_file", "file_model"), ("empty_model_file", "empty_file_model")],
)
def test_file_digest_matches_model_signing_golden(oms_golden: Path, model: str, inner: str) -> None:
    golden = oms_golden / "golden-manifests/file/TestSerializer" / model
    [(name, digest)] = _golden_lines(golden)
    assert name == "."
    path = oms_golden / "golden-models" / model / inner
    assert digest_path(path).sha256 == digest


def _model_sig_statement(path: Path) -> dict:  # type: ignore[type-arg]
    bundle = json.loads(path.read_bytes())
    return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


@pytest.mark.parametrize("version", ["v1.0.1-elliptic-key", "v1.1.0-elliptic-key"])
def test_folder_root_equals_model_signing_subject(version: str) -> None:
    folder = asset("model-signing/cli-fixtures") / version
    statement = _model_sig_statement(folder / "model.sig")
    manifest = digest_directory(folder, ignore=["ignore-me", "model.sig"])
    assert manifest.root == statement["subject"][0]["digest"]["sha256"]
    resources = statement["predicate"]["resources"]
    assert [(e.path, e.sha256) for e in manifest.entries] == [
        (r["name"], r["digest"]) for r in resources
    ]


@pytest.mark.parametrize("version", ["v0.3.1-elliptic-key", "v1.0.0-elliptic-key"])
def test_single_file_root_equals_model_signing_subject(version: str) -> None:
    folder = asset("model-signing/cli-fixtures") / version
    statement = _model_sig_statement(folder / "model.sig")
    file_digest = digest_path(folder / "signme-1").sha256
    [resource] = statement["predicate"]["resources"]
    assert resource == {"name": ".", "algorithm": "sha256", "digest": file_digest}
    assert root_of([file_digest]) == statement["subject"][0]["digest"]["sha256"]
