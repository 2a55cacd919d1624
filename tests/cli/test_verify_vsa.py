"""``verify --vsa-out``: the verdict as a signed SLSA verification summary (VSA v1)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mlspec_attest.digest.artifact import digest_path
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.vsa import VSA_PREDICATE_TYPE, Level, VerificationSummary
from mlspec_attest.signing.sigstore.verify import verify_bundle
from mlspec_attest.store.ledger import AttestationStore

from ..support import KeyPair, Pipeline, flip_byte
from .conftest import Cli


def _vsa_args(p: Pipeline, out: Path, key: KeyPair, *extra: str) -> list[str]:
    return [
        *p.cli_verify_args(),
        "--vsa-out",
        str(out),
        "--vsa-key",
        str(key.key_path),
        *extra,
    ]


def _read(path: Path) -> tuple[Bundle, VerificationSummary]:
    bundle = Bundle.from_json(json.loads(path.read_text()))
    return bundle, VerificationSummary.from_payload(bundle.envelope.payload)


def test_passed_summary_is_signed_complete_and_stored(
    cli: Cli, honest: Pipeline, keys: dict[str, KeyPair], tmp_path: Path
) -> None:
    out = tmp_path / "model.vsa.json"
    verifier = keys["release-engineer"]
    result = cli(*_vsa_args(honest, out, verifier, "--resource-uri", "oci://models/d@sha256:1"))
    assert result.code == 0, result.err
    doc = result.json()
    bundle, vsa = _read(out)
    payload_digest = hashlib.sha256(bundle.envelope.payload).hexdigest()
    assert doc["verificationSummary"]["digest"] == f"sha256:{payload_digest}"
    assert doc["verificationSummary"]["result"] == "PASSED"
    # The signature verifies with the verifier's key through the one Sigstore path ...
    verify_bundle(bundle.to_json(), trust=None, key=verifier.public)
    # ... and not with another key.
    with pytest.raises(Exception, match="signature"):
        verify_bundle(bundle.to_json(), trust=None, key=keys["data-engineer"].public)
    statement = json.loads(bundle.envelope.payload)
    assert statement["predicateType"] == VSA_PREDICATE_TYPE
    predicate = statement["predicate"]
    assert predicate["verifier"]["id"].startswith("https://")
    assert predicate["resourceUri"] == "oci://models/d@sha256:1"
    assert predicate["policy"]["digest"] == {"sha256": honest.signed.digest.removeprefix("sha256:")}
    assert predicate["policy"]["uri"] == honest.signed_policy_path.resolve().as_uri()
    assert predicate["verificationResult"] == "PASSED"
    assert predicate["slsaVersion"] == "1.0"
    # The model first, with the digest verify re-hashed; the training data beside it.
    model = next(a for a in doc["artifacts"] if a["role"] == "model")
    assert statement["subject"][0] == {"name": "model", "digest": model["digest"]}
    assert [s["name"] for s in statement["subject"]] == ["model", "train-data"]
    assert predicate["dependencyLevels"] == {"MLSPEC_DEPLOY_DIGESTS_MATCH": 1}
    # Every accepted stage attestation is an input, named by its payload digest.
    stored = AttestationStore(honest.store_path)
    expected_inputs = sorted(
        (s.path.name, (s.payload_digest or "").removeprefix("sha256:"))
        for s in stored.attestations(honest.run_id)
    )
    assert sorted((Path(i.uri).name, i.sha256) for i in vsa.inputs) == expected_inputs
    assert len(vsa.inputs) == 5  # ingest, split, train x2, package
    assert {i.stage for i in vsa.inputs} == {"ingest", "split", "train", "package"}
    # The levels this policy demands: no ML sections in the four-stage test policy.
    assert vsa.levels == (
        Level.SIGNED_CHAIN.value,
        Level.ORDERED.value,
        Level.ARTIFACT_FLOW.value,
        Level.DEPLOY_DIGESTS.value,
    )
    checks = {c["level"]: c["result"] for c in vsa.details["checks"]}
    assert checks[Level.OBJECTIVES_MET.value] == "not-required"
    assert vsa.run_id == honest.run_id
    # Stored in the store under its payload digest, byte-identical to what was written.
    stored_path = stored.summary_path(payload_digest)
    assert stored_path is not None
    assert stored_path.read_bytes() == out.read_bytes()


def test_failed_summary_is_written_and_says_failed(
    cli: Cli, honest: Pipeline, keys: dict[str, KeyPair], tmp_path: Path
) -> None:
    attested = digest_path(honest.ws / "dist/model").digest_set()
    flip_byte(honest.ws / "dist/model/weights.bin")
    out = tmp_path / "failed.vsa.json"
    result = cli(*_vsa_args(honest, out, keys["release-engineer"]))
    assert result.code == 1
    _, vsa = _read(out)
    assert not vsa.passed
    assert vsa.levels == ("FAILED",)
    assert vsa.dependency_levels == {}
    [failure] = vsa.details["failures"]
    assert failure["check"] == "artifact-mismatch"
    checks = {c["level"]: c for c in vsa.details["checks"]}
    assert checks[Level.DEPLOY_DIGESTS.value] == {
        "level": Level.DEPLOY_DIGESTS.value,
        "result": "failed",
        "failures": 1,
    }
    assert checks[Level.SIGNED_CHAIN.value]["result"] == "passed"
    # The subject is the bytes that were presented (and failed), not the attested ones.
    model = vsa.subject("model")
    assert model is not None
    doc = result.json()
    presented = next(a for a in doc["artifacts"] if a["role"] == "model")["digest"]
    assert model.digest == presented
    assert model.digest != attested
    # The default resource URI is the model's file: URI.
    assert vsa.resource_uri == (honest.ws / "dist/model").resolve().as_uri()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--vsa-key", "K"], "--vsa-key goes with --vsa-out"),
        (["--resource-uri", "x:y"], "--resource-uri goes with --vsa-out"),
        (["--vsa-out", "o.json"], "no signing key"),
    ],
)
def test_summary_options_are_checked_before_verifying(
    cli: Cli, honest: Pipeline, extra: list[str], message: str, tmp_path: Path
) -> None:
    result = cli(*honest.cli_verify_args(), *extra)
    assert result.code == 2
    assert message in result.out + result.err
    assert result.clean


def test_summary_needs_a_resource(
    cli: Cli, honest: Pipeline, keys: dict[str, KeyPair], tmp_path: Path
) -> None:
    args = list(honest.cli_verify_args())
    cut = args.index("--artifact")
    args = args[:cut]  # no deploy artifacts: nowhere to say the model is served from
    result = cli(*args, "--vsa-out", tmp_path / "v.json", "--vsa-key", keys["owner"].key_path)
    assert result.code == 2
    assert "--resource-uri" in result.out + result.err
    assert not (tmp_path / "v.json").exists()


def test_inspect_shows_and_bundle_verify_checks_the_summary(
    cli: Cli, honest: Pipeline, keys: dict[str, KeyPair], tmp_path: Path
) -> None:
    out = tmp_path / "model.vsa.json"
    verifier = keys["release-engineer"]
    assert cli(*_vsa_args(honest, out, verifier)).code == 0
    bundle, vsa = _read(out)
    shown = cli("inspect", out)
    assert shown.code == 0
    digest = hashlib.sha256(bundle.envelope.payload).hexdigest()
    assert f"verification summary: PASSED  run {honest.run_id}" in shown.out
    assert f"digest:   sha256:{digest}" in shown.out
    assert "check     MLSPEC_DEPLOY_DIGESTS_MATCH: passed" in shown.out
    as_json = cli("inspect", out, "--json").json()
    assert as_json["type"] == "verification-summary"
    assert as_json["summary"]["verifiedLevels"] == list(vsa.levels)
    model = vsa.subject("model")
    assert model is not None
    root = f"sha256:{model.digest['sha256']}"
    ok = cli("bundle", "verify", out, "--key", verifier.pub_path, "--digest", root)
    assert ok.code == 0, ok.out + ok.err
    wrong_key = cli("bundle", "verify", out, "--key", keys["owner"].pub_path, "--digest", root)
    assert wrong_key.code == 1
    other = cli(
        "bundle", "verify", out, "--key", verifier.pub_path, "--digest", "sha256:" + "0" * 64
    )
    assert other.code == 1
