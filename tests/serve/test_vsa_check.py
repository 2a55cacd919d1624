"""check_summary: every refusal of a signed verification summary, with its reasons.

Real keys and real signatures (the path ``verify --vsa-out`` signs with); the clock is
the only fake (``expect.now``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest

from mlspec_attest.errors import (
    BackendError,
    ExitCode,
    GateDeniedError,
    MalformedDocumentError,
    UsageError,
)
from mlspec_attest.formats.bundle import Bundle, sign_to_bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.statement import ResourceDescriptor
from mlspec_attest.formats.vsa import Level, Result
from mlspec_attest.serve.vsa_check import (
    MAX_CLOCK_SKEW,
    CheckedSummary,
    GateExpectations,
    VerifierTrust,
    check_summary,
)
from mlspec_attest.signing.keys import KeyType, generate_key
from mlspec_attest.signing.sigstore.identity import SigstoreIdentity

from .test_gate_support import (
    NOW,
    POLICY_DIGEST,
    RESOURCE_URI,
    RUN_ID,
    expectations,
    make_model_dir,
    signed,
    stranger,
    subject_digest,
    summary_for,
    tamper_payload,
    trust,
    verifier,
)

TRUST = trust()
EXPECT = expectations()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model_dir(tmp_path / "model")


def denied(
    source: bytes | Path, trust: VerifierTrust = TRUST, expect: GateExpectations = EXPECT
) -> GateDeniedError:
    with pytest.raises(GateDeniedError) as info:
        check_summary(source, trust, expect)
    assert info.value.exit_code == ExitCode.DENIED
    return info.value


def checks(error: GateDeniedError) -> list[str]:
    return [r.check.value for r in error.reasons]  # type: ignore[attr-defined]


def test_a_passed_summary_by_a_trusted_verifier_is_accepted(model: Path, tmp_path: Path) -> None:
    bundle = signed(summary_for(model))
    path = tmp_path / "vsa.sigstore.json"
    path.write_bytes(bundle)
    for source in (bundle, path):
        checked = check_summary(source, TRUST, EXPECT)
        assert isinstance(checked, CheckedSummary)
        payload = Bundle.from_json(json.loads(bundle)).envelope.payload
        assert checked.digest == hashlib.sha256(payload).hexdigest()
        assert checked.signer == verifier().public_key.keyid
        assert checked.subject.digest == subject_digest(model)
        assert checked.model_digest == subject_digest(model)["sha256"]
        assert checked.age == timedelta(hours=1)
        assert checked.summary.run_id == RUN_ID
        assert checked.summary.policy_digest == POLICY_DIGEST


def test_expectations_left_out_are_not_checked(model: Path) -> None:
    old = summary_for(
        model, resource_uri="https://elsewhere.example", time_verified=NOW - timedelta(days=400)
    )
    checked = check_summary(signed(old), TRUST, GateExpectations(now=NOW))
    assert checked.summary.resource_uri == "https://elsewhere.example"


def test_policy_digest_may_be_given_with_its_algorithm(model: Path) -> None:
    expect = GateExpectations(policy_digest=f"sha256:{POLICY_DIGEST.upper()}", now=NOW)
    assert (
        check_summary(signed(summary_for(model)), TRUST, expect).summary.policy_digest
        == POLICY_DIGEST
    )
    with pytest.raises(UsageError, match="is not a sha256"):
        check_summary(signed(summary_for(model)), TRUST, GateExpectations(policy_digest="abc"))


def test_a_failed_summary_is_refused(model: Path) -> None:
    failed = summary_for(
        model,
        result=Result.FAILED,
        levels=(Level.FAILED.value,),
        details={"runId": RUN_ID, "failures": [{}, {}]},
    )
    error = denied(signed(failed))
    assert checks(error) == ["verification-result"]
    reason = error.reasons[0]  # type: ignore[attr-defined]
    assert reason.message.startswith("summary says FAILED (2 failures)")
    assert (reason.expected, reason.found) == ("PASSED", "FAILED")
    assert "summary says FAILED" in error.message


def test_a_summary_signed_by_an_untrusted_key_is_refused(model: Path) -> None:
    error = denied(signed(summary_for(model), stranger()))
    assert checks(error) == ["signature"]
    reason = error.reasons[0]  # type: ignore[attr-defined]
    assert "not a trusted verifier" in reason.message
    assert reason.expected == verifier().public_key.keyid[:16]
    assert reason.found == f"key {stranger().public_key.keyid[:16]}"


def test_a_key_hint_naming_the_trusted_key_does_not_make_a_signature(model: Path) -> None:
    doc = json.loads(signed(summary_for(model), stranger()))
    doc["verificationMaterial"]["publicKey"]["hint"] = verifier().public_key.keyid
    error = denied(json.dumps(doc).encode())
    assert checks(error) == ["signature"]
    assert "does not verify" in error.reasons[0].message  # type: ignore[attr-defined]


def test_several_trusted_keys_the_hint_picks_one(model: Path) -> None:
    trust = VerifierTrust(keys=(stranger().public_key, verifier().public_key))
    assert (
        check_summary(signed(summary_for(model)), trust, EXPECT).signer
        == verifier().public_key.keyid
    )


def test_a_tampered_payload_fails_the_signature_and_says_what_else_is_wrong(model: Path) -> None:
    def swap(payload: dict) -> None:  # type: ignore[type-arg]
        payload["predicate"]["verificationResult"] = "FAILED"

    error = denied(tamper_payload(signed(summary_for(model)), swap))
    assert checks(error) == ["signature", "verification-result"]
    assert "does not verify" in error.reasons[0].message  # type: ignore[attr-defined]


def test_a_tampered_payload_that_no_longer_parses_is_still_a_denial(model: Path) -> None:
    doc = json.loads(signed(summary_for(model)))
    doc["dsseEnvelope"]["payload"] = "bm90IGpzb24="  # "not json"
    error = denied(json.dumps(doc).encode())
    assert checks(error) == ["signature", "statement"]


def test_wrong_policy_digest_and_resource_uri_are_both_reported(model: Path) -> None:
    other = summary_for(
        model, policy_digest="12" * 32, resource_uri="https://staging.example.com/iris"
    )
    error = denied(signed(other))
    assert checks(error) == ["policy-digest", "resource-uri"]
    policy, resource = error.reasons  # type: ignore[attr-defined]
    assert (policy.expected, policy.found) == (POLICY_DIGEST, "12" * 32)
    assert (resource.expected, resource.found) == (RESOURCE_URI, "https://staging.example.com/iris")
    assert "(2 reasons)" in error.message


def test_a_summary_older_than_max_age_is_refused(model: Path) -> None:
    old = summary_for(model, time_verified=NOW - timedelta(days=1, seconds=1))
    error = denied(signed(old))
    assert checks(error) == ["time-verified"]
    assert error.reasons[0].message == "the summary is 1d1s old, older than allowed"  # type: ignore[attr-defined]
    exactly = summary_for(model, time_verified=NOW - timedelta(days=1))
    assert check_summary(signed(exactly), TRUST, EXPECT).age == timedelta(days=1)


def test_a_summary_from_the_future_is_refused_beyond_the_skew(model: Path) -> None:
    ahead = summary_for(model, time_verified=NOW + MAX_CLOCK_SKEW + timedelta(seconds=1))
    error = denied(signed(ahead))
    assert checks(error) == ["time-verified"]
    assert "in the future" in error.reasons[0].message  # type: ignore[attr-defined]
    within = summary_for(model, time_verified=NOW + MAX_CLOCK_SKEW)
    assert check_summary(signed(within), TRUST, EXPECT).age == -MAX_CLOCK_SKEW


def test_a_summary_without_the_model_subject_is_refused(model: Path) -> None:
    error = denied(signed(summary_for(None)))
    assert checks(error) == ["model-subject"]
    assert error.reasons[0].found == "dataset"  # type: ignore[attr-defined]
    other_role = GateExpectations(now=NOW, role="weights")
    assert checks(denied(signed(summary_for(model)), expect=other_role)) == ["model-subject"]


def test_a_model_subject_without_sha256_is_refused(model: Path) -> None:
    blake = summary_for(None, subjects=(ResourceDescriptor("model", {"blake3": "00" * 32}),))
    error = denied(signed(blake))
    assert checks(error) == ["model-subject"]
    assert "no usable sha256" in error.reasons[0].message  # type: ignore[attr-defined]


def test_every_reason_is_collected(model: Path) -> None:
    bad = summary_for(
        None,
        result=Result.FAILED,
        levels=(Level.FAILED.value,),
        policy_digest="12" * 32,
        resource_uri="https://x.example",
        time_verified=NOW - timedelta(days=30),
    )
    error = denied(signed(bad, stranger()))
    assert checks(error) == [
        "signature",
        "verification-result",
        "policy-digest",
        "resource-uri",
        "model-subject",
        "time-verified",
    ]
    assert len(error.problems) == 6 and all(
        p.split(":")[0] in checks(error) for p in error.problems
    )


def test_a_stage_attestation_signed_by_the_verifier_is_not_a_summary(model: Path) -> None:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model", "digest": subject_digest(model)}],
        "predicateType": "https://in-toto.io/attestation/link/v0.3",
        "predicate": {"name": "train"},
    }
    error = denied(signed(json.dumps(statement).encode()))
    assert checks(error) == ["statement"]
    assert error.reasons[0].found == "predicateType 'https://in-toto.io/attestation/link/v0.3'"  # type: ignore[attr-defined]


def test_another_payload_type_is_refused(model: Path) -> None:
    bundle, _ = sign_to_bundle(summary_for(model).to_payload(), "application/json", verifier())
    error = denied(json.dumps(bundle.to_json()).encode())
    assert checks(error) == ["payload-type"]
    assert error.reasons[0].expected == INTOTO_PAYLOAD_TYPE  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("bundle", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}', "no DSSE envelope"),
        (b"[" * 100 + b"]" * 100, "nested deeper than 64"),
        (b"{}", "unsupported bundle mediaType"),
    ],
)
def test_a_malformed_bundle_is_bad_input(bundle: bytes, message: str) -> None:
    with pytest.raises(MalformedDocumentError, match=message) as info:
        check_summary(bundle, TRUST, EXPECT)
    assert info.value.exit_code == ExitCode.BAD_INPUT


def test_an_oversize_bundle_file_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as f:
        f.truncate(48 * 1024 * 1024 + 1)
    with pytest.raises(
        MalformedDocumentError, match="larger than 48 MiB, the limit for a Sigstore bundle"
    ):
        check_summary(big, TRUST, EXPECT)


def test_a_signed_payload_that_is_no_summary_is_bad_input(model: Path) -> None:
    broken = json.loads(summary_for(model).to_payload())
    del broken["predicate"]["verifier"]
    with pytest.raises(MalformedDocumentError, match="verifier: expected an object"):
        check_summary(signed(json.dumps(broken).encode()), TRUST, EXPECT)


def test_no_trust_at_all_is_a_backend_error(model: Path) -> None:
    with pytest.raises(BackendError, match="no verifier is trusted") as info:
        check_summary(signed(summary_for(model)), VerifierTrust(), EXPECT)
    assert info.value.exit_code == ExitCode.BACKEND


def test_a_keyless_summary_needs_a_trust_root(model: Path) -> None:
    doc = json.loads(signed(summary_for(model)))
    doc["verificationMaterial"] = {"certificate": {"rawBytes": "AAAA"}, "tlogEntries": []}
    keyless = json.dumps(doc).encode()
    identity = SigstoreIdentity("https://issuer.example", identity="verifier@example.com")
    with pytest.raises(BackendError, match="no Sigstore trust root") as info:
        check_summary(keyless, VerifierTrust(identities=(identity,)), EXPECT)
    assert "trust_root" in (info.value.remedy or "")
    # Trusting keys only: a certificate is not one of them.
    error = denied(keyless)
    assert checks(error) == ["signature"]
    assert error.reasons[0].found == "a Sigstore certificate"  # type: ignore[attr-defined]


def test_several_trusted_keys_and_no_hint_the_signature_finds_its_key(model: Path) -> None:
    doc = json.loads(signed(summary_for(model)))
    del doc["verificationMaterial"]["publicKey"]["hint"]  # the hint is unsigned and optional
    unhinted = json.dumps(doc).encode()
    trust = VerifierTrust(keys=(stranger().public_key, verifier().public_key))
    assert check_summary(unhinted, trust, EXPECT).signer == verifier().public_key.keyid
    other = VerifierTrust(keys=(stranger().public_key, generate_key(KeyType.ED25519).public_key))
    with pytest.raises(GateDeniedError) as info:
        check_summary(unhinted, other, EXPECT)
    assert checks(info.value) == ["signature"]
    assert "none of the trusted verifiers holds" in info.value.reasons[0].message  # type: ignore[attr-defined]
