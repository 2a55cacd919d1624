"""A directory's subject is never matched by a file's bytes (review finding F3).

A directory's in-toto subject carries ``sha256`` = the root over its files' digests
(docs/formats.md section 5) and ``manifest-sha256``. A file whose bytes are those raw
digests, concatenated, has the same sha256: ``bundle verify --artifact`` that file used
to pass as the attested model. Real keys, real hashing by the digest engine.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mlspec_attest.digest.artifact import digest_path
from mlspec_attest.errors import SigstoreVerificationError
from mlspec_attest.formats.bundle import sign_to_bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.signing.sigstore.verify import verify_bundle

from ..support import KeyPair
from .conftest import Cli

STATEMENT_V1 = "https://in-toto.io/Statement/v1"


def _model(tmp_path: Path) -> tuple[Path, dict[str, str], bytes]:
    """A model directory, its DigestSet as `sign` records it, and the forged blob."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"layers": 2}')
    (model / "weights.bin").write_bytes(b"\x00\x01" * 64)
    digest = digest_path(model)
    names = sorted(p.name for p in model.iterdir())
    blob = b"".join(hashlib.sha256((model / n).read_bytes()).digest() for n in names)
    return model, digest.digest_set(), blob


def _bundle(pair: KeyPair, subjects: list[dict[str, object]]) -> dict[str, object]:
    statement = {
        "_type": STATEMENT_V1,
        "subject": subjects,
        "predicateType": "https://in-toto.io/attestation/link/v0.3",
        "predicate": {"name": "package"},
    }
    bundle, _ = sign_to_bundle(canonical(statement), INTOTO_PAYLOAD_TYPE, pair.signer)
    return bundle.to_json()


def test_the_forged_blob_has_the_directory_root_as_its_sha256(tmp_path: Path) -> None:
    _, digests, blob = _model(tmp_path)  # the premise of the attack
    assert "manifest-sha256" in digests
    assert hashlib.sha256(blob).hexdigest() == digests["sha256"]


def test_a_file_digest_never_matches_a_directory_subject(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    _, digests, blob = _model(tmp_path)
    pair = keys["release-engineer"]
    doc = _bundle(pair, [{"name": "dist/model", "digest": digests}])
    sha = hashlib.sha256(blob).hexdigest()
    with pytest.raises(SigstoreVerificationError) as info:
        verify_bundle(doc, trust=None, key=pair.public, artifact_sha256=sha)
    assert info.value.message == (
        f"bundle: the in-toto subject with sha256 {sha} is the directory 'dist/model' "
        "(its digest set names a manifest-sha256): that sha256 is the root over its "
        "files' digests, never the digest of one file's bytes"
    )
    assert info.value.exit_code == 1
    # a digest given as such may name the directory
    verified = verify_bundle(
        doc, trust=None, key=pair.public, artifact_sha256=sha, artifact_is_file=False
    )
    assert verified.keyid == pair.keyid


def test_a_directory_annotated_as_one_is_a_directory(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    pair = keys["release-engineer"]
    sha = hashlib.sha256(b"x").hexdigest()
    subject: dict[str, object] = {
        "name": "d",
        "digest": {"sha256": sha},
        "annotations": {"mlspec.kind": "directory"},
    }
    with pytest.raises(SigstoreVerificationError, match="is the directory 'd'"):
        verify_bundle(_bundle(pair, [subject]), trust=None, key=pair.public, artifact_sha256=sha)


def test_a_file_subject_beside_a_directory_still_matches(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    _, digests, blob = _model(tmp_path)
    pair = keys["release-engineer"]
    sha = hashlib.sha256(blob).hexdigest()
    doc = _bundle(
        pair,
        [
            {"name": "dist/model", "digest": digests},
            {"name": "blob.bin", "digest": {"sha256": sha}},
        ],
    )
    assert verify_bundle(doc, trust=None, key=pair.public, artifact_sha256=sha).keyid == pair.keyid


def test_bundle_verify_artifact_refuses_the_blob_and_digest_names_the_directory(
    cli: Cli, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    _, digests, blob = _model(tmp_path)
    pair = keys["release-engineer"]
    path = tmp_path / "package.sigstore.json"
    path.write_bytes(canonical(_bundle(pair, [{"name": "dist/model", "digest": digests}])))
    forged = tmp_path / "blob.bin"
    forged.write_bytes(blob)
    result = cli("bundle", "verify", path, "--key", pair.pub_path, "--artifact", forged, "--json")
    assert result.code == 1, result.out + result.err
    doc = result.json()
    assert doc["result"] == "FAILED"
    assert "is the directory 'dist/model'" in doc["reason"]
    assert "--digest" in doc["remedy"]
    result = cli("bundle", "verify", path, "--key", pair.pub_path, "--digest",
                 "sha256:" + digests["sha256"])  # fmt: skip
    assert result.code == 0, result.out + result.err
