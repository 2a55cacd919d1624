"""The digest engine: schemes, shards, blake3, in-toto ``dir:``, cache, progress, O(1) size.

Every expected value comes from somewhere else: hashlib, the blake3 package, or
files produced by OpenSSF model-signing and in-toto (made by them in this session).
No test here measures time; benchmarks/ does.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from mlspec_attest.attestation.stage import HashingOptions, StageRecord, sign_stage
from mlspec_attest.cli.main import main
from mlspec_attest.cli.progress import TerminalProgress, progress_for
from mlspec_attest.digest import _reader as readmod
from mlspec_attest.digest import engine as hashengine
from mlspec_attest.digest._helper import HelperClient, whole_small_file
from mlspec_attest.digest._reader import CHUNK, SMALL_FILE
from mlspec_attest.digest.artifact import (
    ArtifactDigest,
    digest_directory,
    digest_path,
    intoto_dir_digest,
)
from mlspec_attest.digest.cache import CACHE_FILE, DigestCache
from mlspec_attest.digest.directory import (
    MANIFEST_TYPE,
    MANIFEST_TYPE_V2,
    DirectoryManifest,
    FileEntry,
    ManifestDiff,
    path_components_key,
)
from mlspec_attest.digest.engine import (
    digest_file,
    digest_files,
    digest_shards,
    shard_bounds,
)
from mlspec_attest.digest.scheme import DEFAULT_SCHEME, DigestScheme
from mlspec_attest.digest.walk import IgnoreRules, walk_tree
from mlspec_attest.errors import ArtifactPathError, BackendError, BadInputError, UsageError
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.report import Check

from .interop.reference import DirTree
from .support import VERIFY_NOW, Pipeline, checks_of

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SHARDS_8 = DigestScheme("sha256", "shards", 8)
SHARDS_1G = DigestScheme("sha256", "shards")


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), out, err


# ------------------------------------------------------------ plain files
SIZES = [0, 1, 2047, 2048, SMALL_FILE - 1, SMALL_FILE, SMALL_FILE + 1, CHUNK + 17, 2 * CHUNK]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("algorithm", ["sha256", "blake2b"])
def test_file_digest_equals_hashlib(tmp_path: Path, size: int, algorithm: str) -> None:
    data = os.urandom(size)
    path = write(tmp_path / "f", data)
    expected = hashlib.new(algorithm, data).digest()
    assert digest_file(str(path), algorithm) == (expected, size)
    result = digest_path(path, scheme=DigestScheme(algorithm))
    assert result.digest == expected.hex()
    assert result.digest_set() == {algorithm: expected.hex()}


def test_many_files_any_worker_count(tmp_path: Path) -> None:
    blobs = [os.urandom(n) for n in (0, 1, 5000, SMALL_FILE + 3, 70, 3 * CHUNK + 1)] * 40
    paths = [str(write(tmp_path / f"f{i}", b)) for i, b in enumerate(blobs)]
    expected = [(hashlib.sha256(b).digest(), len(b)) for b in blobs]
    for workers in (1, 2, 3, 8):
        assert digest_files(paths, workers=workers) == expected


def test_a_growing_small_file_is_read_to_its_end(tmp_path: Path) -> None:
    # The engine reads size+1 bytes to notice a file that grew after fstat.
    path = write(tmp_path / "f", b"x" * 100)
    fd = os.open(path, os.O_RDONLY)
    try:
        with open(path, "ab") as fh:
            fh.write(b"y" * 50)
        reader = readmod.FileReader("sha256", None)
        assert reader.digest_fd(fd, 100, str(path)) == (
            hashlib.sha256(b"x" * 100 + b"y" * 50).digest(),
            150,
        )
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def large_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """Big enough for the memory-mapped path (readmod.MMAP_MIN)."""
    data = os.urandom(readmod.MMAP_MIN + 12345)
    path = tmp_path_factory.mktemp("large") / "weights.bin"
    path.write_bytes(data)
    return path, data


@pytest.mark.parametrize("use_mmap", [True, False])
def test_large_files_mapped_or_read(
    large_file: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch, use_mmap: bool
) -> None:
    monkeypatch.setattr(readmod, "USE_MMAP", use_mmap)
    path, data = large_file
    assert digest_file(str(path)) == (hashlib.sha256(data).digest(), len(data))
    shard = readmod.MMAP_MIN + 1  # one mapped shard, one small read shard
    [(shards, _)] = digest_shards([str(path)], "sha256", shard, workers=2)
    assert shards == [hashlib.sha256(data[:shard]).digest(), hashlib.sha256(data[shard:]).digest()]
    offset = 4096 * 3 + 5  # a shard starting off a page boundary
    assert (
        readmod.FileReader("sha256", None).digest_range(
            str(path), offset, offset + readmod.MMAP_MIN
        )
        == hashlib.sha256(data[offset : offset + readmod.MMAP_MIN]).digest()
    )


def test_a_mapped_file_that_grew_is_read_to_its_end(large_file: tuple[Path, bytes]) -> None:
    path, data = large_file
    fd = os.open(path, os.O_RDONLY)
    try:
        # A stale size hint: the map covers it, the rest is read after it.
        hint = readmod.MMAP_MIN
        assert readmod.FileReader("sha256", None).digest_fd(fd, hint, str(path)) == (
            hashlib.sha256(data).digest(),
            len(data),
        )
    finally:
        os.close(fd)


def test_helper_processes_give_the_same_digests(tmp_path: Path) -> None:
    count = hashengine.PROCESS_MIN_FILES + 100
    blobs = [os.urandom(i % 300) for i in range(count)]
    blobs[7] = os.urandom(readmod.SMALL_FILE + 5)
    blobs[8] = os.urandom(CHUNK + 9)
    paths = [str(write(tmp_path / f"d{i % 7}" / f"f{i}", b)) for i, b in enumerate(blobs)]
    expected = [(hashlib.sha256(b).digest(), len(b)) for b in blobs]
    assert digest_files(paths, workers=3) == expected
    assert digest_files(paths, "blake2b", workers=2) == [
        (hashlib.blake2b(b).digest(), len(b)) for b in blobs
    ]


@pytest.mark.parametrize("helper", ["missing", "crashes", "garbage"])
def test_helper_trouble_falls_back_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper: str
) -> None:
    count = hashengine.PROCESS_MIN_FILES + 1
    paths = [str(write(tmp_path / "d" / f"f{i}", b"%d" % i)) for i in range(count)]
    expected = [(hashlib.sha256(b"%d" % i).digest(), len(b"%d" % i)) for i in range(count)]
    script = tmp_path / "helper.py"
    if helper == "crashes":
        script.write_text("import sys\nsys.exit(1)\n")
    elif helper == "garbage":
        script.write_text("import sys\nsys.stdin.buffer.read(4)\nsys.stdout.write('x')\n")
    monkeypatch.setattr(hashengine, "_HELPER", script)
    assert digest_files(paths, workers=2) == expected


def test_a_file_the_helper_cannot_read_gives_the_usual_error(tmp_path: Path) -> None:
    count = hashengine.PROCESS_MIN_FILES + 1
    paths = [str(write(tmp_path / f"f{i}", b"x")) for i in range(count)]
    paths[-1] = str(tmp_path / "vanished")
    with pytest.raises(ArtifactPathError, match="vanished: no such file"):
        digest_files(paths, workers=2)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_never_blocks_and_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ArtifactPathError, match="not a regular file"):
        digest_file(str(tmp_path / "pipe"))


# --------------------------------------------------------------- schemes
@pytest.mark.parametrize(
    ("scheme", "key"),
    [
        (DigestScheme(), "sha256"),
        (DigestScheme("blake3"), "blake3"),
        (DigestScheme("blake2b"), "blake2b"),
        (SHARDS_1G, "sha256-sharded-1000000000"),
        (DigestScheme("blake2b", "shards", 8), "blake2b-sharded-8"),
    ],
)
def test_scheme_keys_round_trip(scheme: DigestScheme, key: str) -> None:
    assert scheme.key == key
    assert DigestScheme.from_key(key) == scheme
    assert DigestScheme.of_digest_set({key: "00", "manifest-sha256": "11"}) == scheme


def test_scheme_refusals() -> None:
    assert DigestScheme.from_key("manifest-sha256") is None
    assert DigestScheme.from_key("sha256-sharded-0") is None
    assert DigestScheme.of_digest_set({"sha256": "a", "blake3": "b"}) == DEFAULT_SCHEME
    with pytest.raises(BadInputError, match="names no digest algorithm"):
        DigestScheme.of_digest_set({"md5": "x"})
    with pytest.raises(UsageError, match="unknown digest algorithm"):
        DigestScheme("md5")
    with pytest.raises(UsageError, match="blake3 is not sharded"):
        DigestScheme("blake3", "shards")
    with pytest.raises(UsageError, match="positive"):
        DigestScheme("sha256", "shards", 0)


# ---------------------------------------------------------------- blake3
def test_blake3_equals_the_blake3_package(tmp_path: Path) -> None:
    blake3 = pytest.importorskip("blake3")
    for size in (0, 100, readmod.BLAKE3_MMAP_MIN, 5 * CHUNK + 3):
        data = os.urandom(size)
        path = write(tmp_path / f"f{size}", data)
        expected = blake3.blake3(data).hexdigest()
        result = digest_path(path, scheme=DigestScheme("blake3"))
        assert result.digest_set() == {"blake3": expected}
    manifest = digest_directory(tmp_path, scheme=DigestScheme("blake3"))
    assert {e.path: e.digest for e in manifest.entries} == {
        p.name: blake3.blake3(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()
    }
    # The root follows model-signing: sha256 over the raw digests, whatever the algorithm.
    raw = b"".join(bytes.fromhex(e.digest) for e in manifest.entries)
    assert manifest.root == hashlib.sha256(raw).hexdigest()


def test_blake3_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "blake3", None)
    path = write(tmp_path / "f", b"x")
    with pytest.raises(BackendError) as info:
        digest_path(path, scheme=DigestScheme("blake3"))
    assert info.value.message == "the blake3 digest algorithm needs blake3, which is not installed"
    assert info.value.remedy == "pip install 'mlspec-attest'"  # a core dependency


# ------------------------------------------------- model-signing: shards
GOLDEN_MODELS = {
    "sample_model_folder": "sample_model",
    "deep_model_folder": "deep_model",
    "sample_model_file": "file_model",
    "empty_model_file": "empty_file_model",
    "model_folder_with_empty_file": "empty_file_inside_model",
    "empty_model_folder": "empty_folder_model",
}


def _golden_model(oms_golden: Path, model: str) -> Path:
    return oms_golden / "golden-models" / model / GOLDEN_MODELS[model]


def _shard_lines(result_manifest: DirectoryManifest) -> list[str]:
    lines = []
    size = result_manifest.scheme.shard_size
    for entry in result_manifest.entries:
        for (start, end), digest in zip(shard_bounds(entry.size, size), entry.shards, strict=True):
            lines.append(f"{entry.path}:{start}:{end}:{digest}")
    return lines


@pytest.mark.parametrize("model", list(GOLDEN_MODELS))
@pytest.mark.parametrize(("suffix", "scheme"), [("", SHARDS_1G), ("_small_shards", SHARDS_8)])
def test_shards_equal_model_signing_golden_manifests(
    oms_golden: Path, model: str, suffix: str, scheme: DigestScheme
) -> None:
    golden = oms_golden / "golden-manifests/file_shard/TestSerializer" / (model + suffix)
    expected = [line for line in golden.read_text().splitlines() if line.strip()]
    result = digest_path(_golden_model(oms_golden, model), scheme=scheme)
    assert result.manifest is not None
    assert _shard_lines(result.manifest) == expected


PAYLOADS = {
    "sample_model_folder": "sample_model_folder",
    "deep_model_folder": "deep_model_folder",
    "sample_model_file": "sample_model_file",
    "empty_model_file": "empty_model_file",
    "model_folder_with_empty_file": "model_folder_with_empty_file",
    "empty_model_folder": "empty_model_folder",
}


@pytest.mark.parametrize("model", list(PAYLOADS))
@pytest.mark.parametrize("suffix", ["", "_shard", "_small_shards"])
def test_roots_equal_model_signing_golden_payloads(
    oms_golden: Path, model: str, suffix: str
) -> None:
    payload = json.loads(
        (oms_golden / "golden-payloads/signing-TestPayload" / (model + suffix)).read_text()
    )
    serialization = payload["predicate"]["serialization"]
    scheme = (
        DigestScheme("sha256", "shards", int(serialization["shard_size"]))
        if serialization["method"] == "shards"
        else DEFAULT_SCHEME
    )
    result = digest_path(_golden_model(oms_golden, model), scheme=scheme)
    root = result.digest
    if result.manifest is None:  # one file, "files": model-signing hashes its one digest again
        root = hashlib.sha256(bytes.fromhex(result.digest)).hexdigest()
    assert root == payload["subject"][0]["digest"]["sha256"]
    names = [r["name"] for r in payload["predicate"]["resources"]]
    if result.manifest is not None and scheme.sharded:
        assert [line.rsplit(":", 1)[0] for line in _shard_lines(result.manifest)] == names
    if scheme.sharded:
        assert {r["algorithm"] for r in payload["predicate"]["resources"]} <= {scheme.key}


def test_shards_of_a_large_file_in_parallel(tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK + 5)
    path = write(tmp_path / "model.bin", data)
    shard = CHUNK + 1
    [(digests, size)] = digest_shards([str(path)], "sha256", shard, workers=3)
    assert size == len(data)
    assert digests == [
        hashlib.sha256(data[i : i + shard]).digest() for i in range(0, len(data), shard)
    ]
    result = digest_path(path, scheme=DigestScheme("sha256", "shards", shard))
    assert result.kind == "file"
    assert result.manifest is not None and result.manifest.entries[0].path == "."
    assert result.digest == hashlib.sha256(b"".join(digests)).hexdigest()
    assert set(result.digest_set()) == {f"sha256-sharded-{shard}", "manifest-sha256"}


def test_shard_bounds() -> None:
    assert shard_bounds(0, 8) == []
    assert shard_bounds(8, 8) == [(0, 8)]
    assert shard_bounds(23, 8) == [(0, 8), (8, 16), (16, 23)]


# ------------------------------------------------------ structure & names
def test_empty_directory_every_scheme(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    for scheme in (DEFAULT_SCHEME, SHARDS_8, DigestScheme("blake2b")):
        result = digest_path(tmp_path / "d", scheme=scheme)
        assert result.files == 0
        assert result.digest == EMPTY_SHA256


def test_empty_files_are_listed_but_carry_no_shard(tmp_path: Path) -> None:
    write(tmp_path / "m/empty", b"")
    write(tmp_path / "m/x", b"12345678901")
    manifest = digest_directory(tmp_path / "m", scheme=SHARDS_8)
    assert manifest.entries[0] == FileEntry("empty", "", 0, ())
    assert len(manifest.entries[1].shards) == 2
    # model-signing: an empty file contributes nothing to the shards root ...
    assert manifest.root == digest_path(tmp_path / "m/x", scheme=SHARDS_8).digest
    # ... but the manifest (and so manifest-sha256) still names it.
    assert manifest.to_json()["files"][0] == {"path": "empty", "size": 0, "shards": []}


def test_unicode_names_every_scheme(tmp_path: Path) -> None:
    names = ["données/é.bin", "模型.pt", "ñ/ü/ß", "emoji-🙂"]
    for i, name in enumerate(names):
        write(tmp_path / "m" / name, str(i).encode() * 5)
    for scheme in (DEFAULT_SCHEME, SHARDS_8, DigestScheme("blake2b")):
        manifest = digest_directory(tmp_path / "m", scheme=scheme)
        assert sorted(e.path for e in manifest.entries) == sorted(names)
        assert DirectoryManifest.from_bytes(manifest.canonical_bytes()) == manifest


@pytest.mark.skipif(os.uname().sysname == "Darwin", reason="macOS refuses non-UTF-8 names")
def test_non_utf8_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    fd = os.open(os.fsencode(tmp_path / "m") + b"/bad\xff", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    with pytest.raises(ArtifactPathError, match="not valid UTF-8"):
        digest_directory(tmp_path / "m")


def test_backslash_names_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "m/a\\b", b"x")
    with pytest.raises(ArtifactPathError, match="'\\\\'"):
        digest_directory(tmp_path / "m")


def test_path_component_order_for_shards(tmp_path: Path) -> None:
    write(tmp_path / "m/a-c", b"second")
    write(tmp_path / "m/a/b", b"first")
    write(tmp_path / "m/a.d", b"third")
    manifest = digest_directory(tmp_path / "m", scheme=SHARDS_8)
    assert [e.path for e in manifest.entries] == ["a/b", "a-c", "a.d"]
    digests = [hashlib.sha256(x).digest() for x in (b"first", b"second", b"third")]
    assert manifest.root == hashlib.sha256(b"".join(digests)).hexdigest()


def test_manifests_list_files_in_path_component_order(tmp_path: Path) -> None:
    names = ["a-c", "a/b", "a.d", "a/b-c/x", "a/c/y/z", "ab", "a0", "B", "é", "a b", "a/ b", "~"]
    for name in names:
        write(tmp_path / "t" / name, name.encode())
    found = sorted((rel for rel, _ in walk_tree(str(tmp_path / "t"))), key=path_components_key)
    assert found == sorted(names, key=path_components_key)
    manifest = digest_directory(tmp_path / "t")
    assert [e.path for e in manifest.entries] == found
    assert manifest == DirectoryManifest.build(reversed(manifest.entries))


# --------------------------------------------------------------- ignore
def test_ignore_rules() -> None:
    rules = IgnoreRules(["model.sig", ".git", "*.tmp", "logs/*.txt"])
    assert rules.matches("model.sig", "model.sig")
    assert not rules.matches("sub/model.sig", "model.sig")  # exact paths are relative to the root
    assert rules.matches(".git", ".git")
    assert rules.matches("a/b/x.tmp", "x.tmp")  # a glob without '/' matches names anywhere
    assert rules.matches("logs/a.txt", "a.txt")
    assert not rules.matches("other/a.txt", "a.txt")
    assert not IgnoreRules([])


def test_ignore_patterns_in_a_walk(tmp_path: Path) -> None:
    write(tmp_path / "m/keep.bin", b"k")
    write(tmp_path / "m/sub/scratch.tmp", b"t")
    write(tmp_path / "m/.git/objects/x", b"g")
    write(tmp_path / "m/ckpt/step1/w", b"c")
    manifest = digest_directory(tmp_path / "m", ignore=["*.tmp", ".git", "ckpt/"])
    assert [e.path for e in manifest.entries] == ["keep.bin"]


def test_symlink_rules_every_scheme(tmp_path: Path) -> None:
    write(tmp_path / "outside", b"secret")
    write(tmp_path / "m/real", b"content")
    (tmp_path / "m/alias").symlink_to("real")
    for scheme in (DEFAULT_SCHEME, SHARDS_8):
        manifest = digest_directory(tmp_path / "m", scheme=scheme)
        assert [e.path for e in manifest.entries] == ["alias", "real"]
        assert manifest.entries[0].item_digests() == manifest.entries[1].item_digests()
    (tmp_path / "m/escape").symlink_to(tmp_path / "outside")
    for scheme in (DEFAULT_SCHEME, SHARDS_8):
        with pytest.raises(ArtifactPathError, match="outside"):
            digest_directory(tmp_path / "m", scheme=scheme)


def test_a_dangling_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m/dangling").symlink_to("nowhere")
    with pytest.raises(ArtifactPathError, match="no such file"):
        digest_directory(tmp_path / "m")


# ------------------------------------------------------- in-toto dir:
def test_intoto_dir_hash_equals_in_toto(intoto_dir_tree: DirTree) -> None:
    """The digests in-toto's DirectoryResolver computes for the same tree in this session."""
    tree = intoto_dir_tree.path
    assert intoto_dir_digest(tree) == intoto_dir_tree.digest
    assert intoto_dir_digest(tree, ignore=["README.md"]) == intoto_dir_tree.digest_without_readme
    # without README.md, the tree is in-toto's own dir_resolver test data, and so is its digest
    assert (
        intoto_dir_tree.digest_without_readme
        == "c272da5259699b7bdda998e5c88dd2c5769e6c1cdbb538511f9bd46a0ad527e2"
    )


def test_intoto_dir_hash_is_the_sha256sum_listing(tmp_path: Path) -> None:
    write(tmp_path / "d/b/x", b"1")
    write(tmp_path / "d/a-c", b"2")
    write(tmp_path / "d/é", b"3")
    listing = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n"
        for name, data in sorted([("b/x", b"1"), ("a-c", b"2"), ("é", b"3")])
    )
    assert intoto_dir_digest(tmp_path / "d") == hashlib.sha256(listing.encode()).hexdigest()
    (tmp_path / "e").mkdir()
    assert intoto_dir_digest(tmp_path / "e") == EMPTY_SHA256
    with pytest.raises(ArtifactPathError, match="not a directory"):
        intoto_dir_digest(tmp_path / "d/a-c")


def test_cli_digest_intoto_dir(
    intoto_dir_tree: DirTree, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = intoto_dir_tree.path
    code, out, _ = run_cli(
        capsys, "digest", tree, "--scheme", "intoto-dir", "--ignore", "README.md"
    )
    assert code == 0
    assert out.strip() == f"sha256:{intoto_dir_tree.digest_without_readme}  dir:{tree}"
    code, out, _ = run_cli(capsys, "digest", tree, "--scheme", "intoto-dir", "--json")
    doc = json.loads(out)
    assert doc["digest"] == {"sha256": intoto_dir_tree.digest}
    code, _, err = run_cli(
        capsys, "digest", tree, "--scheme", "intoto-dir", "--algorithm", "blake2b"
    )
    assert code == 2 and "sha256 over files only" in err


def test_cli_digest_schemes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = os.urandom(30)
    write(tmp_path / "m/w.bin", data)
    code, out, _ = run_cli(
        capsys, "digest", tmp_path / "m", "--serialization", "shards", "--shard-size", "8", "--json"
    )
    assert code == 0
    doc = json.loads(out)
    assert set(doc["digest"]) == {"sha256-sharded-8", "manifest-sha256"}
    assert doc["serialization"] == {"method": "shards", "shardSize": 8}
    assert doc["files"][0]["shards"] == [
        hashlib.sha256(data[i : i + 8]).hexdigest() for i in range(0, 30, 8)
    ]
    code, out, _ = run_cli(capsys, "digest", tmp_path / "m/w.bin", "--algorithm", "blake2b")
    assert out.strip() == f"blake2b:{hashlib.blake2b(data).hexdigest()}  {tmp_path / 'm/w.bin'}"


# ------------------------------------------------------- manifest format
def test_default_manifests_stay_v1(tmp_path: Path) -> None:
    write(tmp_path / "m/a", b"a")
    doc = digest_directory(tmp_path / "m").to_json()
    assert doc["_type"] == MANIFEST_TYPE
    assert set(doc) == {"_type", "algorithm", "root", "files"}


@pytest.mark.parametrize(
    "scheme", [DigestScheme("blake2b"), SHARDS_8, DigestScheme("blake2b", "shards", 3)]
)
def test_v2_manifest_round_trip(tmp_path: Path, scheme: DigestScheme) -> None:
    write(tmp_path / "m/a/b", b"ab" * 10)
    write(tmp_path / "m/c", b"")
    manifest = digest_directory(tmp_path / "m", scheme=scheme)
    doc = manifest.to_json()
    assert doc["_type"] == MANIFEST_TYPE_V2
    assert doc["algorithm"] == scheme.algorithm
    assert doc["serialization"]["method"] == scheme.serialization
    again = DirectoryManifest.from_bytes(manifest.canonical_bytes())
    assert again == manifest and again.address == manifest.address


def _mutations() -> list[tuple[Callable[[dict[str, Any]], None], str]]:
    def dup(d: dict[str, Any]) -> None:
        d["files"].append(dict(d["files"][0]))

    return [
        (lambda d: d.update(algorithm="md5"), "unsupported algorithm"),
        (lambda d: d["serialization"].update(method="tensors"), "unsupported"),
        (lambda d: d["serialization"].update(shardSize=True), "unsupported"),
        (lambda d: d["files"][0]["shards"].pop(), "bad file entry"),
        (lambda d: d["files"][0]["shards"].__setitem__(0, "AB" * 32), "bad file entry"),
        (lambda d: d["files"][0].update(size=-1), "bad file entry"),
        (lambda d: d["files"][0].update(path="a/../b"), "not a normalized relative path"),
        (lambda d: d["files"][0].update(path="a//b"), "not a normalized relative path"),
        (dup, "listed twice"),
        (lambda d: d.update(root="0" * 64), "root does not match"),
    ]


@pytest.mark.parametrize(("mutate", "message"), _mutations())
def test_v2_manifest_refusals(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], message: str
) -> None:
    write(tmp_path / "m/a", b"0123456789")
    doc = digest_directory(tmp_path / "m", scheme=SHARDS_8).to_json()
    mutate(doc)
    with pytest.raises(BadInputError, match=message):
        DirectoryManifest.from_json(doc)


def test_v1_manifest_refuses_uppercase_or_short_digests(tmp_path: Path) -> None:
    write(tmp_path / "m/a", b"a")
    doc = digest_directory(tmp_path / "m").to_json()
    doc["files"][0]["sha256"] = doc["files"][0]["sha256"].upper()
    with pytest.raises(BadInputError, match="bad file entry"):
        DirectoryManifest.from_json(doc)


_NAME_CHARS = st.characters(blacklist_categories=["Cs"], blacklist_characters="/\\\0")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(_NAME_CHARS, min_size=1, max_size=12).filter(lambda s: s not in (".", "..")),
        min_size=1,
        max_size=6,
        unique=True,
    ),
    st.sampled_from([DEFAULT_SCHEME, SHARDS_8, DigestScheme("blake3")]),
)
def test_fast_canonical_json_equals_rfc8785(names: list[str], scheme: DigestScheme) -> None:
    entries = [
        FileEntry(n, "", 9, ("ab" * 32, "cd" * 32))
        if scheme.sharded
        else FileEntry(n, hashlib.sha256(n.encode()).hexdigest(), 2**40 + i)
        for i, n in enumerate(names)
    ]
    manifest = DirectoryManifest.build(entries, scheme)
    assert manifest.canonical_bytes() == bytes(rfc8785.dumps(manifest.to_json()))


# ------------------------------------------------------------------ diff
def test_diff_reports_every_file(tmp_path: Path) -> None:
    for i in range(30):
        write(tmp_path / f"m/f{i:02d}", b"x%d" % i)
    for scheme in (DEFAULT_SCHEME, SHARDS_8, DigestScheme("blake2b")):
        before = digest_directory(tmp_path / "m", scheme=scheme)
        work = tmp_path / f"copy-{scheme.key}"
        work.mkdir()
        for entry in before.entries:
            write(work / entry.path, (tmp_path / "m" / entry.path).read_bytes())
        write(work / "f03", b"changed")
        write(work / "f04", b"x4 but longer now")
        (work / "f05").unlink()
        write(work / "new/file", b"n")
        after = digest_directory(work, scheme=scheme)
        diff = before.diff(after)
        assert diff == ManifestDiff(added=("new/file",), removed=("f05",), changed=("f03", "f04"))
        assert diff.to_json() == {
            "added": ["new/file"],
            "removed": ["f05"],
            "changed": ["f03", "f04"],
        }


def test_diff_of_large_manifests_is_exact() -> None:
    n = 200_000
    base = [FileEntry(f"d{i % 100}/f{i}", f"{i:064x}", i) for i in range(n)]
    other = list(base)
    other[7] = other[7]._replace(digest="f" * 64)
    del other[100]
    other.append(FileEntry("zzz/new", "e" * 64, 1))
    diff = DirectoryManifest.build(base).diff(DirectoryManifest.build(other))
    assert diff.changed == ("d7/f7",)
    assert diff.removed == ("d0/f100",)
    assert diff.added == ("zzz/new",)


# ---------------------------------------------- attestation size is O(1)
def _sign_dataset(pipeline: Pipeline, files: int, scheme: DigestScheme = DEFAULT_SCHEME) -> int:
    data = pipeline.ws / f"data-{files}"
    for i in range(files):
        write(data / f"part-{i // 1000:03d}" / f"{i:07d}.bin", b"%07d" % i)
    record = StageRecord(stage="ingest", products=[data], started_on="2026-01-01T00:00:00Z")
    signed = sign_stage(
        record,
        pipeline.keys["data-engineer"].signer,
        pipeline.store,
        run_id=f"size-{files}",
        base_dir=pipeline.ws,
        clock=lambda: "2026-01-01T00:00:01Z",
        environment={"test": True},
        hashing=HashingOptions(scheme=scheme),
    )
    [product] = signed.statement.products
    manifest = pipeline.store.get_blob(product.digest["manifest-sha256"])
    assert manifest is not None
    assert len(DirectoryManifest.from_bytes(manifest).entries) == files
    return len(signed.statement.to_payload())


def test_attestation_size_does_not_grow_with_the_dataset(pipeline: Pipeline) -> None:
    small = _sign_dataset(pipeline, 10)
    large = _sign_dataset(pipeline, 10_000)
    # Only digits differ: file count, total size, and the names "data-10"/"size-10" (+3 each).
    assert large - small <= 12
    assert large < 2048


def test_a_million_file_dataset_still_has_an_o1_statement() -> None:
    from mlspec_attest.formats.statement import ResourceDescriptor

    entries = tuple(FileEntry(f"{i:07d}", f"{i:064x}", 1) for i in range(1_000_000))
    manifest = DirectoryManifest(entries)
    digest = ArtifactDigest(
        "directory", manifest.root, 1_000_000, manifest, manifest.address, len(entries)
    )
    descriptor = ResourceDescriptor(
        "data", digest.digest_set(), {"mlspec.kind": "directory", "mlspec.files": digest.files}
    )
    assert len(json.dumps(descriptor.to_json())) < 300
    assert len(manifest.canonical_bytes()) > 100_000_000  # lives in the store, not the statement


# ------------------------------------------------------- sign & verify
def _package_with(pipeline: Pipeline, scheme: DigestScheme) -> None:
    pipeline.run(skip=["package"])
    from .support import STAGES

    STAGES["package"].build(pipeline.ws)
    # No materials: MATCH rules compare DigestSets, so a material hashed with
    # another scheme than the stage that produced it could never match.
    record = StageRecord(
        stage="package",
        products=[pipeline.ws / "dist/model"],
        policy_digest=pipeline.signed.digest,
        started_on=pipeline.clock(),
    )
    sign_stage(
        record,
        pipeline.keys["release-engineer"].signer,
        pipeline.store,
        run_id=pipeline.run_id,
        base_dir=pipeline.ws,
        clock=pipeline.clock,
        environment={"test": True},
        hashing=HashingOptions(scheme=scheme),
    )


@pytest.mark.parametrize("scheme", [SHARDS_8, DigestScheme("blake2b")])
def test_verify_rehashes_with_the_attested_scheme(pipeline: Pipeline, scheme: DigestScheme) -> None:
    _package_with(pipeline, scheme)
    report = pipeline.verify(now=VERIFY_NOW)
    assert report.passed, report.failures
    [model] = [a for a in report.artifacts if a.role == "model"]
    assert scheme.key in model.digest

    model_dir = pipeline.ws / "dist/model"
    (model_dir / "weights.bin").write_bytes(b"tampered")
    (model_dir / "MANIFEST").unlink()
    write(model_dir / "extra.py", b"import os")
    report = pipeline.verify(now=VERIFY_NOW)
    assert Check.ARTIFACT_MISMATCH in checks_of(report)
    [model] = [a for a in report.artifacts if a.role == "model"]
    assert model.files == {
        "added": ["extra.py"],
        "removed": ["MANIFEST"],
        "changed": ["weights.bin"],
    }
    assert report.to_json()["artifacts"][0]["files"] == model.files
    [failure] = [f for f in report.failures if f.check == Check.ARTIFACT_MISMATCH]
    assert "changed: weights.bin; added: extra.py; removed: MANIFEST" in failure.found
    assert failure.expected.startswith(scheme.key)


def test_verify_reports_an_unknown_digest_algorithm(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:

    with monkeypatch.context() as patch:
        # A signer whose tool recorded an algorithm this verifier cannot compute.
        patch.setattr(ArtifactDigest, "digest_set", lambda self: {"sha512": "0" * 128})
        _package_with(pipeline, DEFAULT_SCHEME)
    report = pipeline.verify(now=VERIFY_NOW)
    [failure] = [
        f for f in report.failures if f.check == Check.ARTIFACT_MISMATCH and f.stage == "package"
    ]
    assert "names no digest algorithm" in failure.message
    assert failure.found == "sha512"


# ------------------------------------------------------------------ cache
@pytest.fixture
def cache_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cache files of any size and age (the defaults skip small and fresh files)."""
    monkeypatch.setattr("mlspec_attest.digest.cache.RACY_NS", 0)
    monkeypatch.setattr(hashengine, "CACHE_MIN_SIZE", 0)


@pytest.mark.usefixtures("cache_everything")
def test_cache_reuses_unchanged_files_only(tmp_path: Path) -> None:
    for i in range(20):
        write(tmp_path / f"d/f{i}", os.urandom(100 + i))
    cache = DigestCache(tmp_path / "cache")
    first = digest_directory(tmp_path / "d", cache=cache)
    assert (cache.hits, cache.misses) == (0, 20)
    second = digest_directory(tmp_path / "d", cache=cache)
    assert second == first
    assert cache.hits == 20
    # Same size, mtime put back: the ctime still gives the change away.
    target = tmp_path / "d/f3"
    st = target.stat()
    target.write_bytes(os.urandom(st.st_size))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    cache = DigestCache(tmp_path / "cache")
    third = digest_directory(tmp_path / "d", cache=cache)
    assert cache.misses == 1 and cache.hits == 19
    assert {e.path: e.digest for e in third.entries}["f3"] == hashlib.sha256(
        target.read_bytes()
    ).hexdigest()


def test_cache_skips_racily_fresh_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashengine, "CACHE_MIN_SIZE", 0)
    write(tmp_path / "d/new", b"just written")
    cache = DigestCache(tmp_path / "cache")
    digest_directory(tmp_path / "d", cache=cache)
    digest_directory(tmp_path / "d", cache=cache)
    assert cache.hits == 0


@pytest.mark.usefixtures("cache_everything")
def test_cache_for_a_single_file_and_other_algorithms(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"data")
    cache = DigestCache(tmp_path / "cache")
    for _ in range(2):
        assert digest_path(path, cache=cache).digest == hashlib.sha256(b"data").hexdigest()
        assert (
            digest_path(path, cache=cache, scheme=DigestScheme("blake2b")).digest
            == hashlib.blake2b(b"data").hexdigest()
        )
    assert cache.hits == 2 and cache.misses == 2


def test_small_files_bypass_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlspec_attest.digest.cache.RACY_NS", 0)
    write(tmp_path / "d/small", b"s" * 100)
    big = os.urandom(hashengine.CACHE_MIN_SIZE)
    write(tmp_path / "d/big", big)
    for _ in range(2):
        cache = DigestCache(tmp_path / "cache")
        manifest = digest_directory(tmp_path / "d", cache=cache)
        assert {e.path: e.digest for e in manifest.entries} == {
            "big": hashlib.sha256(big).hexdigest(),
            "small": hashlib.sha256(b"s" * 100).hexdigest(),
        }
    assert (cache.hits, cache.misses) == (1, 0)  # only "big" was looked up, and found


def test_a_damaged_cache_is_discarded(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / CACHE_FILE).write_bytes(b"not a database" * 100)
    cache = DigestCache(tmp_path / "cache")
    write(tmp_path / "d/a", b"a")
    assert digest_directory(tmp_path / "d", cache=cache).entries[0].digest == (
        hashlib.sha256(b"a").hexdigest()
    )


def test_verify_never_uses_the_cache(
    honest: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = tmp_path / "digest-cache"
    monkeypatch.setenv("MLSPEC_ATTEST_DIGEST_CACHE", str(cache_dir))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("verify consulted the digest cache")

    monkeypatch.setattr(DigestCache, "lookup", refuse)
    monkeypatch.setattr(DigestCache, "__init__", refuse)
    with pytest.raises(SystemExit) as exit_info:
        main(honest.cli_verify_args())
    assert exit_info.value.code == 0
    assert not cache_dir.exists()


def test_sign_cli_cache_and_algorithm(
    pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = pipeline.ws / "data"
    for i in range(5):
        write(data / f"{i}.csv", b"a,b\n%d,2\n" % i)
    args = [
        "sign", "--stage", "ingest", "--key", pipeline.keys["data-engineer"].key_path,
        "--store", tmp_path / "store", "--base-dir", pipeline.ws, "--product", data,
        "--digest-algorithm", "blake2b", "--digest-cache", tmp_path / "cache", "--json",
    ]  # fmt: skip
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    [subject] = json.loads(out)["subjects"]
    assert set(subject["digest"]) == {"blake2b", "manifest-sha256"}
    assert (tmp_path / "cache" / CACHE_FILE).exists()
    assert err == ""  # no progress bar when stderr is not a terminal


# --------------------------------------------------------------- progress
class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_silent_unless_a_terminal() -> None:
    assert progress_for(False, stream=io.StringIO()) is None
    assert progress_for(True, stream=FakeTerminal()) is None
    assert isinstance(progress_for(False, stream=FakeTerminal()), TerminalProgress)


def test_progress_draws_on_a_terminal_after_the_delay(tmp_path: Path) -> None:
    for i in range(50):
        write(tmp_path / f"d/f{i}", os.urandom(2000))
    terminal = FakeTerminal()
    quick = TerminalProgress(stream=terminal)  # the default one-second delay
    digest_path(tmp_path / "d", progress=quick)
    assert terminal.getvalue() == ""
    slow = TerminalProgress(stream=terminal, show_after=0.0)
    digest_path(tmp_path / "d", progress=slow, workers=2)
    digest_path(tmp_path / "d/f1", progress=slow)
    digest_path(tmp_path / "d", progress=slow, scheme=SHARDS_8)
    assert "hashing" in terminal.getvalue()


def test_progress_ends_when_hashing_fails(tmp_path: Path) -> None:
    events: list[str] = []

    class Recorder:
        def begin(self, label: str, files: int, total_bytes: int | None) -> None:
            events.append("begin")

        def advance(self, nbytes: int, files: int = 0) -> None:
            pass

        def end(self) -> None:
            events.append("end")

    (tmp_path / "d").mkdir()
    (tmp_path / "d/dangling").symlink_to("nowhere")
    with pytest.raises(ArtifactPathError):
        digest_path(tmp_path / "d", progress=Recorder())
    assert events == ["begin", "end"]


def test_store_keeps_manifests_for_sharded_files(pipeline: Pipeline) -> None:
    model = write(pipeline.ws / "model.bin", os.urandom(100))
    record = StageRecord(stage="train", products=[model], started_on="2026-01-01T00:00:00Z")
    signed = sign_stage(
        record,
        pipeline.keys["ml-engineer"].signer,
        AttestationStore(pipeline.store_path),
        run_id="sharded",
        base_dir=pipeline.ws,
        environment={},
        hashing=HashingOptions(scheme=SHARDS_8),
    )
    [product] = signed.statement.products
    blob = pipeline.store.get_blob(product.digest["manifest-sha256"])
    assert blob is not None
    manifest = DirectoryManifest.from_bytes(blob)
    assert manifest.entries[0].path == "." and len(manifest.entries[0].shards) == 13
    assert product.annotations == {"mlspec.size": 100}


def test_python_api_hashes_like_the_cli(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlspec_attest import api

    monkeypatch.setenv("MLSPEC_ATTEST_DIGEST_ALGORITHM", "blake2b")
    data = write(pipeline.ws / "data/x.bin", b"payload")
    with api.stage(
        "ingest",
        key=pipeline.keys["data-engineer"].signer,
        store=pipeline.store_path,
        run_id="api-scheme",
        base_dir=pipeline.ws,
    ) as s:
        s.product(data)
    assert s.result is not None
    [product] = s.result.statement.products
    assert product.digest == {"blake2b": hashlib.blake2b(b"payload").hexdigest()}


def test_hashing_options_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert HashingOptions.from_env().scheme == DEFAULT_SCHEME
    monkeypatch.setenv("MLSPEC_ATTEST_DIGEST_SERIALIZATION", "shards")
    monkeypatch.setenv("MLSPEC_ATTEST_SHARD_SIZE", "4096")
    assert HashingOptions.from_env().scheme == DigestScheme("sha256", "shards", 4096)
    monkeypatch.setenv("MLSPEC_ATTEST_SHARD_SIZE", "big")
    with pytest.raises(UsageError, match="MLSPEC_ATTEST_SHARD_SIZE"):
        HashingOptions.from_env()


# --------------------------------------------------------------- small files in two calls
def test_a_small_file_is_read_whole_in_two_calls_or_handed_to_the_careful_path(
    tmp_path: Path,
) -> None:
    """whole_small_file: the content when the read is no longer than the end offset; None
    (fstat and the regular-file check follow) otherwise."""
    cases = {"empty": b"", "ten": b"0123456789", "limit": b"s" * SMALL_FILE}
    for name, data in cases.items():
        fd = os.open(write(tmp_path / name, data), os.O_RDONLY)
        try:
            assert whole_small_file(fd) == data
        finally:
            os.close(fd)
    fd = os.open(write(tmp_path / "big", b"b" * (SMALL_FILE + 1)), os.O_RDONLY)
    try:
        assert whole_small_file(fd) is None
    finally:
        os.close(fd)
    fd = os.open(write(tmp_path / "grows", b"abc"), os.O_RDONLY)
    try:  # a file that reads back longer than its end grew meanwhile (or is a device)
        assert whole_small_file(fd, pread=lambda f, n, at: os.pread(f, n, at) + b"more") is None
    finally:
        os.close(fd)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("workers", [1, 2])
def test_a_fifo_among_many_files_is_refused_by_the_batch_loops(
    tmp_path: Path, workers: int
) -> None:
    """The batches (this process's loop, and the helper's when workers=2) refuse a FIFO in
    the list: it has no end offset, so it takes the careful path's regular-file check."""
    count = hashengine.PROCESS_MIN_FILES + 1
    paths = [str(write(tmp_path / f"f{i}", b"x" * i)) for i in range(count)]
    os.mkfifo(tmp_path / "pipe")
    paths[count // 2] = str(tmp_path / "pipe")
    with pytest.raises(ArtifactPathError, match="not a regular file"):
        digest_files(paths, workers=workers)
    fd = os.open(tmp_path / "pipe", os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert whole_small_file(fd) is None
    finally:
        os.close(fd)


def test_the_helper_processes_hash_files_whose_names_are_not_utf8(tmp_path: Path) -> None:
    """Names go to the helpers as the file system's bytes (os.fsencode's), undecodable
    bytes included: each file's digest is hashlib's."""
    count = hashengine.PROCESS_MIN_FILES + 8
    root = os.fsencode(tmp_path)
    paths = []
    for i in range(count):
        name = root + b"/f%d\xff\xfe" % i
        with open(name, "wb") as handle:
            handle.write(b"x" * i)
        paths.append(os.fsdecode(name))
    got = digest_files(paths, workers=2)
    assert got == [(hashlib.sha256(b"x" * i).digest(), i) for i in range(count)]
    helper = HelperClient.start("sha256", hashengine._HELPER)  # and one helper, directly
    assert helper is not None
    try:
        helper.send(paths[:3])
        assert helper.receive(3) == got[:3]
    finally:
        helper.close()
