"""Every way of cheating the pipeline must be DENIED, with the check that caught it.

Each case starts from a real pipeline (real keys, real files), tampers with one
thing, and is verified twice: through the library (``verify_pipeline``) and
through the CLI (``mlspec-attest verify --json``, exit code 1).
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from mlspec_attest.cli.main import main
from mlspec_attest.digest.artifact import digest_path
from mlspec_attest.errors import ExitCode
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.verify.report import Check

from .support import STAGES, Pipeline, flip_byte, read_bundle, rewrite_payload


@dataclass(frozen=True)
class Case:
    """``tamper(pipeline, via_cli)`` builds the cheated pipeline; may return a fake ``now``."""

    tamper: Callable[[Pipeline, bool], datetime | None]
    check: Check
    stage: str | None
    #: every check the library reports (the consequences of the one tampering)
    all_checks: frozenset[Check]


def model_byte_flipped(p: Pipeline, via_cli: bool) -> None:
    p.run()
    flip_byte(p.ws / "dist/model/weights.bin", offset=100)


def dataset_changed_after_split(p: Pipeline, via_cli: bool) -> None:
    p.sign("ingest")
    p.sign("split")
    with (p.ws / "data/split/train.csv").open("a") as fh:
        fh.write("99,99.9,999\n")  # a poisoned row slipped in between stages
    p.sign_all_signers("train")
    p.sign("package", via_api=True)


def required_stage_missing(p: Pipeline, via_cli: bool) -> None:
    p.sign("ingest")
    STAGES["split"].build(p.ws)  # the split ran, but no one attested it
    p.sign_all_signers("train")
    p.sign("package", via_api=True)


def signed_by_key_not_allowed(p: Pipeline, via_cli: bool) -> None:
    p.sign("ingest")
    p.sign("split")
    # the data engineer is a functionary, but not one allowed to sign `train`
    p.sign("train", signer="data-engineer")
    p.sign("train", signer="ml-reviewer", build=False)
    p.sign("package", via_api=True)


def signed_by_unknown_key(p: Pipeline, via_cli: bool) -> None:
    p.run()
    p.sign("package", signer="intruder", via_api=True)
    p.bundle_path("package").unlink()


def signature_bytes_altered(p: Pipeline, via_cli: bool) -> None:
    p.run()
    path = p.bundle_path("split")
    doc = read_bundle(path)
    sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[10] ^= 0xFF
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    path.write_bytes(canonical(doc))


def payload_altered_after_signing(p: Pipeline, via_cli: bool) -> None:
    p.run()
    # swap the model: replace the files and make the package attestation claim them
    flip_byte(p.ws / "dist/model/weights.bin", offset=5)
    forged = digest_path(p.ws / "dist/model").digest_set()

    def forge(statement: dict[str, Any]) -> None:
        statement["subject"][0]["digest"] = forged

    rewrite_payload(p.bundle_path("package"), forge)


def policy_altered_after_signing(p: Pipeline, via_cli: bool) -> None:
    p.run()
    doc = json.loads(p.signed_policy_path.read_bytes())
    policy = json.loads(base64.b64decode(doc["payload"]))
    # drop the second reviewer: one ML engineer alone could then sign train
    policy["stages"][2]["threshold"] = 1
    doc["payload"] = base64.b64encode(canonical(policy)).decode()
    p.signed_policy_path.write_bytes(canonical(doc))


def policy_expired(p: Pipeline, via_cli: bool) -> datetime | None:
    p.run()
    if via_cli:
        # the CLI reads the real clock: re-sign the policy with an expiry in the past
        p.write_policy(expires="2001-01-01T00:00:00Z")
        p.sign_policy()
        return None
    return datetime(2100, 1, 1, tzinfo=UTC)


def threshold_met_by_one_key_twice(p: Pipeline, via_cli: bool) -> None:
    p.sign("ingest")
    p.sign("split")
    p.sign("train", signer="ml-engineer")
    original = p.bundle_path("train", "ml-engineer")
    shutil.copy(original, original.with_name("train.copy.sigstore.json"))
    p.sign("package", via_api=True)


def attestation_from_another_run(p: Pipeline, via_cli: bool) -> None:
    p.run()
    p.sign("ingest", run_id="run-b")
    foreign = p.bundle_path("ingest", run_id="run-b")
    shutil.copy(foreign, p.store.run_dir("run-a") / "ingest.from-run-b.sigstore.json")
    p.bundle_path("ingest").unlink()


def artifact_no_stage_produced(p: Pipeline, via_cli: bool) -> None:
    p.sign("ingest")
    p.sign("split")
    (p.ws / "data/extra.csv").write_text("age,bmi,target\n1,2,3\n")
    p.sign("train", signer="ml-engineer", extra_materials=["data/extra.csv"])
    p.sign("train", signer="ml-reviewer", build=False, extra_materials=["data/extra.csv"])
    p.sign("package", via_api=True)


def metrics_edited_in_signed_attestation(p: Pipeline, via_cli: bool) -> None:
    p.sign("ingest")
    p.sign("split")
    p.sign("train", signer="ml-engineer", metrics={"mae": 55.0})
    p.sign("train", signer="ml-reviewer", build=False, metrics={"mae": 55.0})
    p.sign("package", via_api=True)

    def improve(statement: dict[str, Any]) -> None:
        statement["predicate"]["byproducts"]["mlspec"]["metrics"]["mae"] = 5.0

    rewrite_payload(p.bundle_path("train", "ml-engineer"), improve)


CASES: dict[str, Case] = {
    "model-byte-flipped": Case(
        model_byte_flipped,
        Check.ARTIFACT_MISMATCH,
        "package",
        frozenset({Check.ARTIFACT_MISMATCH}),
    ),
    "dataset-changed-after-split": Case(
        dataset_changed_after_split,
        Check.ARTIFACT_RULE,
        "train",
        frozenset({Check.ARTIFACT_RULE, Check.ARTIFACT_MISMATCH}),
    ),
    "required-stage-missing": Case(
        required_stage_missing,
        Check.STAGE_MISSING,
        "split",
        frozenset({Check.STAGE_MISSING, Check.ARTIFACT_RULE, Check.ARTIFACT_MISMATCH}),
    ),
    "signer-not-allowed-for-stage": Case(
        signed_by_key_not_allowed,
        Check.SIGNER_NOT_ALLOWED,
        "train",
        frozenset({Check.SIGNER_NOT_ALLOWED, Check.THRESHOLD}),
    ),
    "signer-unknown-to-policy": Case(
        signed_by_unknown_key,
        Check.SIGNER_NOT_ALLOWED,
        "package",
        frozenset({Check.SIGNER_NOT_ALLOWED, Check.STAGE_MISSING, Check.ARTIFACT_MISMATCH}),
    ),
    "signature-bytes-altered": Case(
        signature_bytes_altered,
        Check.SIGNATURE,
        "split",
        frozenset(
            {Check.SIGNATURE, Check.STAGE_MISSING, Check.ARTIFACT_RULE, Check.ARTIFACT_MISMATCH}
        ),
    ),
    "payload-altered-after-signing": Case(
        payload_altered_after_signing,
        Check.SIGNATURE,
        "package",
        frozenset({Check.SIGNATURE, Check.STAGE_MISSING, Check.ARTIFACT_MISMATCH}),
    ),
    "policy-altered-after-signing": Case(
        policy_altered_after_signing,
        Check.POLICY_SIGNATURE,
        None,
        frozenset({Check.POLICY_SIGNATURE}),
    ),
    "policy-expired": Case(
        policy_expired,
        Check.POLICY_EXPIRED,
        None,
        frozenset({Check.POLICY_EXPIRED}),
    ),
    "threshold-met-by-one-key-twice": Case(
        threshold_met_by_one_key_twice,
        Check.THRESHOLD,
        "train",
        frozenset({Check.THRESHOLD}),
    ),
    "attestation-from-another-run": Case(
        attestation_from_another_run,
        Check.RUN_ID,
        "ingest",
        frozenset({Check.RUN_ID, Check.STAGE_MISSING, Check.ARTIFACT_RULE}),
    ),
    "artifact-no-earlier-stage-produced": Case(
        artifact_no_stage_produced,
        Check.ARTIFACT_RULE,
        "train",
        frozenset({Check.ARTIFACT_RULE}),
    ),
    "metrics-edited-in-signed-attestation": Case(
        metrics_edited_in_signed_attestation,
        Check.SIGNATURE,
        "train",
        frozenset({Check.SIGNATURE, Check.THRESHOLD}),
    ),
}


def test_control_honest_pipeline_passes(honest: Pipeline) -> None:
    report = honest.verify()
    assert report.passed, [f.to_json() for f in report.failures]
    with pytest.raises(SystemExit) as exit_info:
        main(honest.cli_verify_args())
    assert exit_info.value.code == ExitCode.PASSED


@pytest.mark.parametrize("name", list(CASES))
def test_library_denies(name: str, pipeline: Pipeline) -> None:
    case = CASES[name]
    now = case.tamper(pipeline, False)
    report = pipeline.verify(now=now) if now else pipeline.verify()
    assert report.passed is False
    matching = [f for f in report.failures if f.check is case.check]
    assert matching, f"expected {case.check}, got {[f.check.value for f in report.failures]}"
    assert any(f.stage == case.stage for f in matching)
    assert {f.check for f in report.failures} == case.all_checks
    assert all(f.remedy for f in report.failures)


@pytest.mark.parametrize("name", list(CASES))
def test_cli_denies(name: str, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    case.tamper(pipeline, True)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(pipeline.cli_verify_args())
    assert exit_info.value.code == ExitCode.DENIED
    out = capsys.readouterr().out
    doc = json.loads(out)  # exactly one JSON document
    assert doc["result"] == "FAILED"
    assert case.check.value in {f["check"] for f in doc["failures"]}
