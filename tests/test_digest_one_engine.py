"""One digest engine: every path to a digest gives the same answer (issue 12).

``mlspec-attest digest`` (mlspec-attest manifests) and ``mlspec-attest model
sign``/``model verify`` (OpenSSF model-signing serializations) are two
serializations over one walker, one file reader and one root: the same folder
gets the same root under the same algorithm and serialization, or the same
refusal (blake3 is never sharded). One file hasher, one shard-size default.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest

from mlspec_attest.cli import main as cli_main
from mlspec_attest.digest import _helper, _reader, engine
from mlspec_attest.digest.artifact import digest_path, sha256_file
from mlspec_attest.digest.engine import digest_file
from mlspec_attest.digest.scheme import ALGORITHMS, DEFAULT_SHARD_SIZE, DigestScheme
from mlspec_attest.digest.serialization import (
    Serialization,
    resource_sort_key,
    serialize_model,
)
from mlspec_attest.digest.walk import IgnoreRules, walk_model, walk_tree
from mlspec_attest.errors import ArtifactPathError, MalformedDocumentError, UsageError
from mlspec_attest.interop.oms.manifest import build_manifest, parse_statement
from mlspec_attest.signing.keys import KeyType, generate_key, write_key_pair
from mlspec_attest.verify import oms_evidence

SCHEMES = [
    ("sha256", "files", None),
    ("blake2b", "files", None),
    ("blake3", "files", None),
    ("sha256", "shards", 8),
    ("blake2b", "shards", 16),
    ("sha256", "shards", DEFAULT_SHARD_SIZE),
]
IDS = [f"{a}-{s}-{n}" for a, s, n in SCHEMES]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    for name, data in {
        "a/b": b"first file, long enough for several shards",
        "a-c": b"second",
        "a.d": b"",
        "weights.bin": os.urandom(100),
        "z/y/x": b"deep",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """The real entry point in-process (its exit-code mapping): code, stdout, stderr."""

    def invoke(*args: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            cli_main.main([str(a) for a in args])
        out, err = capsys.readouterr()
        code = info.value.code
        return (code if isinstance(code, int) else 0), out, err

    return invoke


def needs(algorithm: str) -> None:
    if algorithm == "blake3":
        pytest.importorskip("blake3", reason="blake3 extra not installed")


# ------------------------------------------------------------ one answer
@pytest.mark.parametrize(("algorithm", "method", "shard_size"), SCHEMES, ids=IDS)
def test_digest_and_model_signing_give_the_same_root(
    model: Path, algorithm: str, method: str, shard_size: int | None
) -> None:
    needs(algorithm)
    scheme = DigestScheme(algorithm, method, shard_size or DEFAULT_SHARD_SIZE)
    ours = digest_path(model, scheme=scheme)
    manifest, problems = build_manifest(model, Serialization(method, algorithm, False, shard_size))
    assert problems == []
    assert ours.digest == manifest.root_digest
    items = [d for e in ours.manifest.entries for d in e.item_digests()] if ours.manifest else []
    assert items == [r.digest for r in manifest.resources]


@pytest.mark.parametrize(("algorithm", "method", "shard_size"), SCHEMES, ids=IDS)
def test_the_cli_commands_agree(
    model: Path, tmp_path: Path, run: Run, algorithm: str, method: str, shard_size: int | None
) -> None:
    """``digest --json`` root == the root ``model verify`` reports for ``model sign``'s signature."""
    needs(algorithm)
    size = ["--shard-size", str(shard_size)] if shard_size else []
    code, out, err = run(
        "digest", model, "--algorithm", algorithm, "--serialization", method, *size, "--json", "-q"
    )
    assert code == 0, err
    digested = json.loads(out)["root"]
    key, pub = write_key_pair(generate_key(KeyType.ECDSA_P256), tmp_path / "k")
    sig = tmp_path / "model.sig"
    code, _, err = run(
        "model", "sign", model, "--key", key, "--signature", sig,
        "--serialization", method, "--hash", algorithm, *size,
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run(
        "model", "verify", model, "--signature", sig, "--public-key", pub, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["rootDigest"] == {"sha256": digested}


def test_blake3_is_never_sharded_on_any_path(model: Path, tmp_path: Path, run: Run) -> None:
    """The same refusal: the digest scheme, the model-signing serialization (signing),
    a signed statement that records it (verifying) and both commands."""
    with pytest.raises(UsageError) as scheme_refusal:
        DigestScheme("blake3", "shards", 8)
    with pytest.raises(UsageError) as serialization_refusal:
        Serialization("shards", "blake3", shard_size=8)
    assert scheme_refusal.value.message == serialization_refusal.value.message
    assert "blake3 is not sharded" in scheme_refusal.value.message
    recorded = {"method": "shards", "hash_type": "blake3", "allow_symlinks": False, "shard_size": 8}
    with pytest.raises(MalformedDocumentError, match="blake3 is not sharded"):
        Serialization.from_json(recorded)
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model", "digest": {"sha256": hashlib.sha256(b"").hexdigest()}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {"serialization": recorded, "resources": []},
    }
    with pytest.raises(MalformedDocumentError, match="blake3 is not sharded"):
        parse_statement(json.dumps(statement).encode())
    code, _, err = run("digest", model, "--algorithm", "blake3", "--serialization", "shards")
    assert code == 2 and "blake3 is not sharded" in err
    key, _ = write_key_pair(generate_key(KeyType.ECDSA_P256), tmp_path / "k")
    code, _, err = run(
        "model", "sign", model, "--key", key, "--signature", tmp_path / "m.sig",
        "--serialization", "shards", "--hash", "blake3",
    )  # fmt: skip
    assert code == 2 and "blake3 is not sharded" in err
    assert not (tmp_path / "m.sig").exists()


def test_the_oms_evidence_check_refuses_a_sharded_blake3_record(model: Path) -> None:
    record = {
        "schemaVersion": oms_evidence.EVIDENCE_SCHEMA,
        "serialization": {"method": "shards", "hash_type": "blake3", "allow_symlinks": False},
        "ignorePaths": [],
        "manifestDigest": {"sha256": "0" * 64},
        "resources": 1,
    }
    record["serialization"]["shard_size"] = 8  # type: ignore[index]
    [problem] = oms_evidence.check_oms_evidence(record, model)
    assert "blake3 is not sharded" in problem


def test_one_shard_default_everywhere() -> None:
    assert DigestScheme().shard_size == DEFAULT_SHARD_SIZE
    for command in ("digest", "model"):
        group: Any = cli_main.cli.get_command(click.Context(cli_main.cli), command)
        commands = [group.get_command(None, "sign")] if command == "model" else [group]
        for cmd in commands:
            [option] = [p for p in cmd.params if p.name == "shard_size"]
            assert option.default == DEFAULT_SHARD_SIZE


def test_one_algorithm_registry() -> None:
    """The helper process runs without the package: its copies must agree."""
    assert dict(ALGORITHMS) == _helper.DIGEST_SIZES
    assert (_helper.CHUNK, _helper.SMALL_FILE, _helper.FLAGS) == (
        _reader.CHUNK,
        _reader.SMALL_FILE,
        _reader.OPEN_FLAGS,
    )


# ------------------------------------------------------------ one file hasher
def test_one_file_hasher(tmp_path: Path) -> None:
    data = os.urandom(_reader.SMALL_FILE + 7)
    (tmp_path / "f").write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert digest_file(os.fspath(tmp_path / "f"))[0].hex() == expected
    assert sha256_file(tmp_path / "f") == (expected, len(data))
    with pytest.raises(ArtifactPathError, match="is a directory"):
        sha256_file(tmp_path)
    with pytest.raises(ArtifactPathError, match="no such file"):
        sha256_file(tmp_path / "missing")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_the_file_hasher_never_reads_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ArtifactPathError, match="not a regular file"):
        sha256_file(tmp_path / "fifo")


# ------------------------------------------------------------ one walker
def test_one_walker_two_rule_sets(model: Path) -> None:
    """A plain folder: the artifact walk and the model walk list the same files."""
    artifact = sorted(walk_tree(os.fspath(model)))
    found, refused = walk_model(os.fspath(model), None, allow_symlinks=False)
    assert sorted(found) == artifact
    assert refused == []


def test_model_walk_refuses_what_the_artifact_walk_rejects(model: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").write_bytes(b"outside the model")
    (model / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ArtifactPathError, match="symlink points outside"):
        walk_tree(os.fspath(model))
    found, refused = walk_model(os.fspath(model), None, allow_symlinks=False)
    assert [(r.check, r.name) for r in refused] == [("symlink", "link")]
    assert "link" not in dict(found)
    found, refused = walk_model(os.fspath(model), None, allow_symlinks=True)
    assert refused == [] and dict(found)["link"] == os.fspath(model / "link")


def test_model_walk_refuses_a_loop(model: Path) -> None:
    (model / "a" / "up").symlink_to(model)
    found, refused = walk_model(os.fspath(model), None, allow_symlinks=True)
    assert [(r.check, r.message) for r in refused] == [
        ("symlink", "a/up links back to a folder above it")
    ]
    assert sorted(name for name, _ in found) == ["a-c", "a.d", "a/b", "weights.bin", "z/y/x"]


def test_model_ignore_paths_are_literal(model: Path) -> None:
    """model-signing's ignore_paths are paths, never globs ('*' is a file name)."""
    (model / "a*").write_bytes(b"star")
    exact = IgnoreRules.exact_paths(["a*", "./z\\y"])
    names = {name for name, _ in walk_model(os.fspath(model), exact, allow_symlinks=False)[0]}
    assert names == {"a/b", "a-c", "a.d", "weights.bin"}
    assert walk_model(os.fspath(model), IgnoreRules.exact_paths(["."]), allow_symlinks=False) == (
        [],
        [],
    )


def test_serialize_model_orders_resources_as_model_signing(model: Path) -> None:
    serialized = serialize_model(model, Serialization("shards", shard_size=16))
    names = [r.name for r in serialized.resources]
    assert names == [
        "a/b:0:16",
        "a/b:16:32",
        "a/b:32:42",
        "a-c:0:6",
        "weights.bin:0:16",
        "weights.bin:16:32",
        "weights.bin:32:48",
        "weights.bin:48:64",
        "weights.bin:64:80",
        "weights.bin:80:96",
        "weights.bin:96:100",
        "z/y/x:0:4",
    ]
    assert names == sorted(names, key=lambda n: resource_sort_key(n, "shards"))


def test_model_serialization_of_many_files_goes_through_the_helpers(tmp_path: Path) -> None:
    """Enough files for helper processes: the same resources as hashlib file by file."""
    model = tmp_path / "many"
    names = [f"d{i % 7}/f{i:05d}" for i in range(engine.PROCESS_MIN_FILES + 50)]
    for name in names:
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).write_bytes(name.encode() * 3)
    serialized = serialize_model(model, Serialization(), workers=2)
    expected = sorted(names, key=lambda n: n.split("/"))
    assert [r.name for r in serialized.resources] == expected
    assert [r.digest for r in serialized.resources] == [
        hashlib.sha256(n.encode() * 3).hexdigest() for n in expected
    ]
