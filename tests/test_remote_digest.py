"""Object store URLs (digest/remote.py): streamed digests equal to the local engine's.

A real S3-compatible server (moto's server mode) runs on 127.0.0.1 for the module;
s3fs talks to it over HTTP as it would to S3. The same bytes, written once to a
local folder and once under a bucket prefix, must get the same digest, the same
manifest (names, order, shards) and the same manifest address, through the library
and the CLI; a product recorded by URL is re-hashed by verify, which catches a
changed object; a missing key, missing credentials or a missing package is a clear
error with the contract's exit code.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.cli import main as cli_main
from mlspec_attest.digest import remote
from mlspec_attest.digest.artifact import ArtifactDigest, digest_path
from mlspec_attest.digest.scheme import DigestScheme
from mlspec_attest.errors import ArtifactPathError
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.formats.statement import ResourceDescriptor
from mlspec_attest.policy import load_policy_yaml, sign_policy

from .support import KeyPair

moto_server = pytest.importorskip("moto.server", reason="needs the dev extra (moto[server])")
s3fs = pytest.importorskip("s3fs", reason="needs the remote extra (s3fs)")

BUCKET = "mlspec-test"
MiB = 1 << 20

FILES: dict[str, bytes] = {
    "a/b": b"first file, long enough for several shards",
    "a-c": b"second",
    "a.d": b"",  # an empty object
    "weights.bin": bytes(range(256)) * 40,
    "z/y/x": b"deep",
    "skip/me.tmp": b"left out by --ignore",
    "notes.tmp": b"left out too",
}


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """moto's S3 on 127.0.0.1, reached through the environment s3fs and botocore read."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.fspath(tmp_path_factory.mktemp("aws") / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.fspath(tmp_path_factory.mktemp("aws") / "creds"),
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem()
        fs.mkdir(BUCKET)
        yield fs
        s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def put(fs: Any, files: dict[str, bytes], prefix: str) -> str:
    for name, data in files.items():
        fs.pipe(f"{BUCKET}/{prefix}/{name}", data)
    return f"s3://{BUCKET}/{prefix}"


def write(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def same(local: ArtifactDigest, there: ArtifactDigest) -> None:
    """Equal digest sets, and (for manifests) byte-identical manifest documents."""
    assert there.digest_set() == local.digest_set()
    assert (there.kind, there.size, there.files) == (local.kind, local.size, local.files)
    if local.manifest is None:
        assert there.manifest is None
    else:
        assert there.manifest is not None
        assert there.manifest.canonical_bytes() == local.manifest.canonical_bytes()


SCHEMES = [
    DigestScheme(),
    DigestScheme("blake2b"),
    DigestScheme("blake3"),
    DigestScheme("sha256", "shards", 1000),  # weights.bin: 11 shards, a/b: one
    DigestScheme("blake2b", "shards", 4096),
]


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.key)
def test_a_prefix_of_many_objects_is_the_same_manifest_as_the_folder(
    s3: Any, tmp_path: Path, scheme: DigestScheme
) -> None:
    url = put(s3, FILES, f"many-{scheme.key}")
    local = write(tmp_path / "m", FILES)
    for ignore in ((), ("*.tmp",), ("skip", "notes.tmp")):
        same(
            digest_path(local, scheme=scheme, ignore=ignore),
            digest_path(url, scheme=scheme, ignore=ignore),
        )
    # The trailing slash and the scheme's case do not change what is named.
    same(digest_path(local, scheme=scheme), digest_path("S3://" + url[5:] + "/", scheme=scheme))


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.key)
def test_a_single_object_and_an_empty_one(s3: Any, tmp_path: Path, scheme: DigestScheme) -> None:
    url = put(s3, {"one.bin": FILES["weights.bin"], "empty": b""}, f"single-{scheme.key}")
    local = write(tmp_path, {"one.bin": FILES["weights.bin"], "empty": b""})
    same(
        digest_path(local / "one.bin", scheme=scheme), digest_path(f"{url}/one.bin", scheme=scheme)
    )
    empty = digest_path(f"{url}/empty", scheme=scheme)
    same(digest_path(local / "empty", scheme=scheme), empty)
    if scheme == DigestScheme():
        assert empty.digest == hashlib.sha256(b"").hexdigest()


def test_a_big_object_spans_read_blocks_and_shards(s3: Any, tmp_path: Path) -> None:
    """20 MiB: several READ_BLOCK requests per object, shards that straddle them."""
    data = os.urandom(20 * MiB + 12345)
    url = put(s3, {"weights.bin": data, "small": b"x"}, "big")
    local = write(tmp_path, {"weights.bin": data, "small": b"x"})
    assert 20 * MiB > 2 * remote.READ_BLOCK
    for scheme in (DigestScheme(), DigestScheme("sha256", "shards", 6 * MiB + 1)):
        same(digest_path(local, scheme=scheme), digest_path(url, scheme=scheme))
        same(
            digest_path(local / "weights.bin", scheme=scheme),
            digest_path(f"{url}/weights.bin", scheme=scheme),
        )


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


def test_the_digest_command_prints_the_local_documents_files(
    s3: Any, tmp_path: Path, run: Run
) -> None:
    url = put(s3, FILES, "cli")
    local = write(tmp_path / "m", FILES)
    for extra in ((), ("--serialization", "shards", "--shard-size", "1000")):
        code, out, err = run("digest", url, "--json", "-q", *extra)
        assert code == 0, err
        there = json.loads(out)
        code, out, _ = run("digest", local, "--json", "-q", *extra)
        here = json.loads(out)
        assert there.pop("path") == url
        assert here.pop("path") == str(local)
        assert there == here


def test_a_missing_key_is_bad_input_not_a_traceback(s3: Any, run: Run) -> None:
    code, out, err = run("digest", f"s3://{BUCKET}/no/such/key")
    assert code == 3
    assert out == ""
    assert f"s3://{BUCKET}/no/such/key: no such object or prefix" in err
    assert "Traceback" not in err
    with pytest.raises(ArtifactPathError, match="no such object"):
        digest_path(f"s3://{BUCKET}/nothing-here")


def test_no_credentials_is_unavailable(s3: Any, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        code, _, err = run("digest", f"s3://{BUCKET}/cli/a-c")
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
    assert code == 4, err
    assert "no credentials for the object store" in err
    assert "Traceback" not in err


def test_without_fsspec_the_extra_is_named(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)  # import fsspec now raises ImportError
    code, _, err = run("digest", "s3://bucket/key")
    assert code == 4
    assert "object store URLs needs fsspec, which" in err
    assert "pip install 'mlspec-attest[remote]'" in err


def test_an_unknown_scheme_and_an_unnameable_url(run: Run) -> None:
    code, _, err = run("digest", "nosuchscheme://bucket/key")
    assert code == 3
    assert "Protocol not known: nosuchscheme" in err
    code, _, err = run("digest", "s3://bucket//key")
    assert code == 2
    assert "empty, '.' or '..' path component" in err


@pytest.mark.parametrize(
    "name",
    ["s3://bucket/key", "gs://b", "s3://b/a/b.c", "abfs://container/x-y_z"],
)
def test_statement_names_may_be_object_urls(name: str) -> None:
    doc = {"name": name, "digest": {"sha256": "0" * 64}}
    assert ResourceDescriptor.from_json(doc, what="subject").name == name


@pytest.mark.parametrize(
    "name",
    [
        "s3://bucket/../x",
        "s3://bucket/a//b",
        "s3://bucket/k/",
        "S3://bucket/k",
        "s3://b/k?v=1",
        "s3:///k",
        "file:///etc/passwd",
        "s3://b/a b",
    ],
)
def test_statement_names_refuse_other_urls(name: str) -> None:
    from mlspec_attest.errors import MalformedDocumentError

    with pytest.raises(MalformedDocumentError):
        ResourceDescriptor.from_json({"name": name, "digest": {"sha256": "0" * 64}}, what="s")


# --------------------------------------------------------------- sign -> verify
POLICY = """\
apiVersion: mlspec-attest/v1
kind: Policy
metadata:
  name: remote-artifacts
  owner: compliance@example.org
expires: "2099-01-01"
functionaries:
  release-engineer:
    key: {pub}
stages:
  - name: package
    kind: package
    functionaries: [release-engineer]
    materials:
      - ALLOW *
    products:
      - CREATE {url}
      - DISALLOW *
deploy:
  artifacts:
    model:
      stage: package
      product: {url}
"""


def test_products_recorded_by_url_are_re_hashed_by_verify(
    s3: Any, tmp_path: Path, run: Run, keys: dict[str, KeyPair]
) -> None:
    url = put(s3, FILES, "model")
    data = put(s3, {"train.csv": b"a,b\n1,2\n"}, "data") + "/train.csv"
    owner, release = keys["owner"], keys["release-engineer"]
    (tmp_path / "policy.yaml").write_text(POLICY.format(pub=release.pub_path, url=url))
    envelope = sign_policy(load_policy_yaml(tmp_path / "policy.yaml"), [owner.signer])
    (tmp_path / "policy.json").write_bytes(canonical(envelope.to_json()))
    store = tmp_path / "store"
    code, out, err = run(
        "sign", "--stage", "package", "--key", release.key_path, "--store", store,
        "--policy", tmp_path / "policy.json", "--new-run", "--material", data,
        "--product", url + "/", "--role", f"model={url}", "-q", "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    verify = [
        "verify", "--policy", tmp_path / "policy.json", "--policy-key", owner.pub_path,
        "--store", store, "--run-id", summary["runId"], "--artifact", f"model={url}", "--json",
    ]  # fmt: skip
    code, out, err = run(*verify)
    assert code == 0, out + err
    report = json.loads(out)
    [artifact] = report["artifacts"]
    assert artifact["path"] == url
    assert artifact["digest"] == digest_path(write(tmp_path / "m", FILES)).digest_set()
    # One object changed in the bucket: the deploy check names it.
    s3.pipe(f"{BUCKET}/model/z/y/x", b"DEEP")
    code, out, err = run(*verify)
    assert code == 1, out + err
    [failure] = [f for f in json.loads(out)["failures"] if f["check"] == "artifact-mismatch"]
    assert "changed: z/y/x" in failure["found"]
