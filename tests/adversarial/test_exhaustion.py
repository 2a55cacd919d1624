"""Resource exhaustion: huge, deep, numerous and endless inputs.

Every scenario runs ``python -m mlspec_attest ...`` in a child process under
setrlimit (address space, CPU seconds, and for one case open files): a parse
that runs away hits RLIMIT_AS (MemoryError, exit 70) or RLIMIT_CPU (SIGXCPU)
and fails the scenario. A child found blocked on a FIFO by its kernel wait
channel is killed and reported as a hang. Nothing is timed.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

from mlspec_attest.digest.directory import MANIFEST_TYPE
from mlspec_attest.formats.limits import MAX_JSON_BYTES

from ..support import Pipeline, flip_byte, read_bundle
from .kit import (
    Scenario,
    expect,
    make_bundle,
    resign,
    run_limited,
    scenario,
    statement_of,
    verify_args,
    write_doc,
)

GiB = 1024**3
MALFORMED = "attestation-malformed"


def run_dir(p: Pipeline) -> Path:
    return p.store.run_dir(p.run_id)


def verify_limited(
    p: Pipeline, *extra: str | Path, run_id: str | None = None, **limits: Any
) -> Any:
    return run_limited([*verify_args(p, run_id=run_id), *extra], cwd=p.root, **limits)


# ------------------------------------------------------------ huge and deep bundles
@scenario(
    "bundle-over-size-limit",
    "drop a 64 MiB + 1 byte (sparse) file into the run directory",
    1,
    [MALFORMED],
    "larger than 48 MiB, the limit for a Sigstore bundle",
)
def test_huge_bundle(case: Scenario, hp: Pipeline) -> None:
    with (run_dir(hp) / "package.huge.sigstore.json").open("wb") as fh:
        fh.truncate(MAX_JSON_BYTES + 1)
    expect(verify_limited(hp), case)


@scenario(
    "payload-over-decoded-size-limit",
    "a 45 MB bundle whose base64 payload would decode past the 32 MiB payload limit",
    1,
    [MALFORMED],
    "larger than 32 MiB once decoded",
)
def test_huge_payload(case: Scenario, hp: Pipeline) -> None:
    doc = read_bundle(hp.bundle_path("package"))
    doc["dsseEnvelope"]["payload"] = "A" * 45_000_000  # decodes to 33.75 MB > 32 MiB
    write_doc(run_dir(hp) / "package.big.sigstore.json", doc)
    expect(verify_limited(hp), case)


@scenario(
    "deep-payload-signed-validly",
    "the split functionary validly signs a payload of 10^5 nested arrays (as an extra file)",
    1,
    [MALFORMED],
    "nested deeper than 64",
)
def test_deep_payload(case: Scenario, hp: Pipeline) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    signer = hp.keys["data-engineer"].signer
    write_doc(run_dir(hp) / "split.deep.sigstore.json", make_bundle(deep, [signer]))
    expect(verify_limited(hp), case)


@scenario(
    "sixty-five-signatures",
    "an envelope carrying 65 signatures (each would cost a verification per key)",
    1,
    [MALFORMED],
    "more than the 64 allowed",
)
def test_signature_flood(case: Scenario, hp: Pipeline) -> None:
    path = hp.bundle_path("split")
    doc = read_bundle(path)
    sig = doc["dsseEnvelope"]["signatures"][0]
    doc["dsseEnvelope"]["signatures"] = [dict(sig) for _ in range(65)]
    write_doc(path, doc)
    expect(verify_limited(hp), case)


@scenario(
    "many-copies-of-one-attestation",
    "500 byte-identical copies of ingest's bundle in the run, verified with 64 open files at most",
    0,
)
def test_many_files(case: Scenario, hp: Pipeline) -> None:
    source = hp.bundle_path("ingest")
    for i in range(500):
        os.link(source, source.with_name(f"ingest.copy{i:03d}.sigstore.json"))
    expect(verify_limited(hp, open_files=64), case)


# ------------------------------------------------------------ manifests
@functools.cache
def million_entry_manifest() -> tuple[bytes, str]:
    """The canonical bytes of a valid manifest of 10^6 files, and its root digest."""
    digest = hashlib.sha256(b"x").hexdigest()
    count = 10**6
    files = ",".join(
        f'{{"path":"shard/{i:07d}.bin","sha256":"{digest}","size":1}}' for i in range(count)
    )
    root = hashlib.sha256(bytes.fromhex(digest) * count).hexdigest()
    text = f'{{"_type":"{MANIFEST_TYPE}","algorithm":"sha256","files":[{files}],"root":"{root}"}}'
    return text.encode(), root


@scenario(
    "signed-manifest-with-million-entries",
    "the package functionary attests dist/model by a stored 114 MB manifest of 10^6 files "
    "(over the manifest size limit); the deployed dir differs, so the verifier diffs them",
    1,
    ["artifact-mismatch"],
    "differs from what 'package' attested",
)
def test_million_entry_manifest(case: Scenario, hp: Pipeline) -> None:
    data, root = million_entry_manifest()
    address = hp.store.put_blob(data)

    def claim(statement: dict[str, Any]) -> None:
        statement["subject"][0]["digest"] = {"sha256": root, "manifest-sha256": address}

    resign(hp, "package", hp.keys["release-engineer"].signer, claim)
    expect(verify_limited(hp, memory=1 * GiB), case)


def _manifest_blob(p: Pipeline) -> Path:
    digest = statement_of(p.bundle_path("package"))["subject"][0]["digest"]
    return p.store_path / "blobs/sha256" / digest["manifest-sha256"]


@scenario(
    "manifest-blob-swapped-for-million-entry-claim",
    "flip a model byte and replace the attested manifest blob by a 114 MB manifest claiming "
    "10^6 files (its bytes do not match its address)",
    1,
    ["artifact-mismatch"],
    "attested manifest not in store",
)
def test_manifest_blob_swapped(case: Scenario, hp: Pipeline) -> None:
    flip_byte(hp.ws / "dist/model/weights.bin", offset=7)
    blob = _manifest_blob(hp)
    blob.unlink()
    blob.write_bytes(million_entry_manifest()[0])
    expect(verify_limited(hp), case)


@scenario(
    "manifest-blob-is-dev-zero",
    "flip a model byte and replace the attested manifest blob by a symlink to /dev/zero",
    1,
    ["artifact-mismatch"],
    "attested manifest not in store",
)
def test_manifest_blob_dev_zero(case: Scenario, hp: Pipeline) -> None:
    flip_byte(hp.ws / "dist/model/weights.bin", offset=7)
    blob = _manifest_blob(hp)
    blob.unlink()
    blob.symlink_to("/dev/zero")
    expect(verify_limited(hp), case)


# ------------------------------------------------------------ policies, keys, baselines
def laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@scenario(
    "yaml-alias-bomb-policy",
    "`policy sign` a policy carrying a billion-laughs alias bomb",
    3,
    message="anchors and aliases",
)
def test_alias_bomb(case: Scenario, hp: Pipeline) -> None:
    hp.policy_yaml.write_text(
        hp.policy_yaml.read_text()
        + "x-bomb:\n"
        + "".join("  " + line + "\n" for line in laughs().splitlines())
    )
    owner = hp.keys["owner"].key_path
    out = hp.root / "bomb.signed.json"
    args = ["policy", "sign", hp.policy_yaml, "--key", owner, "--out", out]
    expect(run_limited(args, cwd=hp.root, memory=512 * 1024**2), case)


@scenario(
    "baseline-is-dev-zero",
    "pass /dev/zero as --baseline (an endless file)",
    1,
    ["baseline"],
    "larger than 64 MiB",
)
def test_baseline_dev_zero(case: Scenario, hp: Pipeline) -> None:
    expect(verify_limited(hp, "--baseline", "/dev/zero"), case)


@scenario(
    "policy-file-is-fifo",
    "pass a FIFO (nobody writes to it) as --policy",
    3,
    message="not valid JSON",
)
def test_policy_fifo(case: Scenario, hp: Pipeline) -> None:
    fifo = hp.root / "policy.fifo"
    os.mkfifo(fifo)
    args = verify_args(hp)
    args[args.index("--policy") + 1] = fifo
    expect(run_limited(args, cwd=hp.root), case)


@scenario(
    "policy-key-is-fifo",
    "pass a FIFO as --policy-key",
    3,
    message="not a PEM public key",
)
def test_policy_key_fifo(case: Scenario, hp: Pipeline) -> None:
    fifo = hp.root / "owner.fifo"
    os.mkfifo(fifo)
    args = verify_args(hp)
    args[args.index("--policy-key") + 1] = fifo
    expect(run_limited(args, cwd=hp.root), case)


@scenario(
    "baseline-is-fifo",
    "pass a FIFO as --baseline",
    1,
    ["baseline"],
    "baseline unreadable",
)
def test_baseline_fifo(case: Scenario, hp: Pipeline) -> None:
    fifo = hp.root / "baseline.fifo"
    os.mkfifo(fifo)
    expect(verify_limited(hp, "--baseline", fifo), case)


# ------------------------------------------------------------ the current-run marker
@scenario(
    "current-run-is-dev-zero-at-verify",
    "point current-run at /dev/zero in a single-run store; verify without --run-id",
    0,
)
def test_current_run_dev_zero_verify(case: Scenario, hp: Pipeline) -> None:
    marker = hp.store_path / "current-run"
    marker.unlink(missing_ok=True)
    marker.symlink_to("/dev/zero")
    expect(verify_limited(hp, run_id=""), case)


@scenario(
    "current-run-is-dev-zero-at-sign",
    "point current-run at /dev/zero; the next stage runs `sign` without a run id",
    2,
    message="the limit for the current-run marker",
)
def test_current_run_dev_zero_sign(case: Scenario, hp: Pipeline) -> None:
    marker = hp.store_path / "current-run"
    marker.unlink(missing_ok=True)
    marker.symlink_to("/dev/zero")
    key = hp.keys["data-engineer"].key_path
    args = ["sign", "--stage", "ingest", "--key", key, "--product", "data/raw.csv"]
    args += ["--store", hp.store_path, "--json"]
    expect(run_limited(args, cwd=hp.ws), case)


@scenario(
    "current-run-garbage-at-sign",
    "write '../../etc' into current-run; the next stage runs `sign` without a run id",
    2,
    message="is not valid",
)
def test_current_run_garbage_sign(case: Scenario, hp: Pipeline) -> None:
    (hp.store_path / "current-run").write_text("../../etc\n")
    key = hp.keys["data-engineer"].key_path
    args = ["sign", "--stage", "ingest", "--key", key, "--product", "data/raw.csv"]
    args += ["--store", hp.store_path, "--json"]
    expect(run_limited(args, cwd=hp.ws), case)


@scenario(
    "sharded-digest-with-one-byte-shards",
    "the package functionary attests dist/model (2 MB of honest weights) under the digest "
    "scheme sha256-sharded-1: the verifier re-hashes it as 2 million one-byte shards",
    1,
    ["artifact-mismatch"],
    "cannot be re-hashed as attested",
)
def test_one_byte_shards(case: Scenario, hp: Pipeline) -> None:
    hp.bundle_path("package").unlink()
    (hp.ws / "dist/model/weights-large.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    hp.sign("package", build=False)

    def one_byte_shards(statement: dict[str, Any]) -> None:
        statement["subject"][0]["digest"] = {"sha256-sharded-1": "0" * 64}

    resign(hp, "package", hp.keys["release-engineer"].signer, one_byte_shards)
    expect(verify_limited(hp, memory=512 * 1024**2), case)
