"""Which timestamp authority of a trust root vouches for a signed time, and from when.

The Rekor v2 staging bundle of tests/assets/sigstore/bundles/valid-staging has no
integrated time: its only signed time is an RFC 3161 timestamp, which the staging trust
root's one timestamp authority vouches for. Here the trust root is varied around that
authority (another one listed first, its validity starting at the very instant the
timestamp was made) and the signed times the verifier reports are checked.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rfc3161_client import decode_timestamp_response

from mlspec_attest.errors import SigstoreVerificationError
from mlspec_attest.signing.sigstore.identity import SigstoreIdentity
from mlspec_attest.signing.sigstore.result import VerifiedBundle
from mlspec_attest.signing.sigstore.trust_root import TrustRoot
from mlspec_attest.signing.sigstore.verify import sha256_file, verify_bundle

from ..support import asset

STAGING = asset("sigstore/bundles/valid-staging")
ROOT = asset("sigstore/trust/sigstore-4.5.1-embedded/staging/trusted_root.json")
IDENTITY = SigstoreIdentity("https://github.com/login/oauth", identity="jku@goto.fi")


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((STAGING / "staging-rekor-v2.txt.sigstore.json").read_text())
    return doc


@pytest.fixture(scope="module")
def gen_times(bundle: dict[str, Any]) -> list[datetime]:
    """When each of the bundle's signed timestamps says it was made."""
    out = []
    for stamp in bundle["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]:
        response = decode_timestamp_response(base64.b64decode(stamp["signedTimestamp"]))
        when: datetime = response.tst_info.gen_time
        out.append(when if when.tzinfo else when.replace(tzinfo=UTC))
    return out


def config(**change: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ROOT.read_text())
    authorities = doc["timestampAuthorities"]
    if "before" in change:
        authorities.insert(0, change["before"])
    if "start" in change:
        authorities[-1]["validFor"]["start"] = change["start"]
    return doc


def verify(bundle: dict[str, Any], trust: dict[str, Any]) -> VerifiedBundle:
    return verify_bundle(
        bundle,
        trust=TrustRoot.from_json(trust, source="test"),
        identities=[IDENTITY],
        artifact_sha256=sha256_file(STAGING / "staging-rekor-v2.txt"),
    )


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_timestamp_authority_time_is_reported(
    bundle: dict[str, Any], gen_times: list[datetime]
) -> None:
    verified = verify(bundle, config())
    assert [(t.source, t.time) for t in verified.times] == [
        ("timestamp-authority", t) for t in gen_times
    ]


def _foreign_authority() -> dict[str, Any]:
    """A timestamp authority of someone else: a CA and its TSA certificate, made here."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "other TSA root")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=3650))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    tsa = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "other TSA")]))
        .issuer_name(ca_name)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=3650))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    der = [c.public_bytes(serialization.Encoding.DER) for c in (tsa, ca)]
    return {
        "subject": {"organization": "other", "commonName": "other TSA"},
        "certChain": {"certificates": [{"rawBytes": base64.b64encode(d).decode()} for d in der]},
        "validFor": {"start": "2000-01-01T00:00:00Z"},
    }


def test_an_unrelated_authority_listed_first_does_not_hide_the_right_one(
    bundle: dict[str, Any], gen_times: list[datetime]
) -> None:
    verified = verify(bundle, config(before=_foreign_authority()))
    assert [t.time for t in verified.times if t.source == "timestamp-authority"] == gen_times


def test_an_authority_without_a_chain_listed_first_is_skipped(
    bundle: dict[str, Any], gen_times: list[datetime]
) -> None:
    lone = copy.deepcopy(config()["timestampAuthorities"][0])
    lone["certChain"]["certificates"] = lone["certChain"]["certificates"][:1]
    verified = verify(bundle, config(before=lone))
    assert [t.time for t in verified.times if t.source == "timestamp-authority"] == gen_times


def test_authority_validity_starts_inclusively(
    bundle: dict[str, Any], gen_times: list[datetime]
) -> None:
    first = min(gen_times)
    verified = verify(bundle, config(start=rfc3339(first)))
    assert [t.time for t in verified.times if t.source == "timestamp-authority"] == gen_times
    # a moment later the authority was not yet trusted: no signed time is left
    with pytest.raises(SigstoreVerificationError) as info:
        verify(bundle, config(start=rfc3339(first + timedelta(microseconds=1))))
    assert "not enough sources of verified time" in info.value.message


# --- keyless bundles: what the result says, and times without a promise -------------------------

TSA = asset("sigstore/bundles/tsa")
TSA_SIGNER = SigstoreIdentity(
    "https://accounts.google.com", identity="alexis.challande@trailofbits.com"
)


def _tsa_verify(doc: dict[str, Any], trust: dict[str, Any]) -> VerifiedBundle:
    return verify_bundle(
        doc,
        trust=TrustRoot.from_json(trust, source="tsa-test"),
        identities=[TSA_SIGNER],
        artifact_sha256=sha256_file(TSA / "bundle.txt"),
    )


def test_message_signature_result_has_no_payload() -> None:
    doc = json.loads((STAGING / "bundle.txt.sigstore").read_text())
    verified = verify_bundle(
        doc,
        trust=TrustRoot.from_json(json.loads(ROOT.read_text()), source="staging"),
        identities=[SigstoreIdentity("https://github.com/login/oauth", identity="a@tny.town")],
        artifact_sha256=sha256_file(STAGING / "bundle.txt"),
    )
    assert (verified.payload_type, verified.payload) == (None, None)
    out = verified.to_json()
    assert out["content"] == "message-signature"
    assert "payloadType" not in out
    assert out["method"] == "sigstore"
    assert (verified.log_entries, out["transparencyLogEntries"]) == (1, 1)


def test_keyless_failure_names_the_trust_root() -> None:
    doc = json.loads((STAGING / "bundle.txt.sigstore").read_text())
    with pytest.raises(SigstoreVerificationError) as info:
        verify_bundle(
            doc,
            trust=TrustRoot.from_json(json.loads(ROOT.read_text()), source="staging"),
            identities=[SigstoreIdentity("https://github.com/login/oauth", identity="a@tny.town")],
            artifact_sha256="ab" * 32,
        )
    assert (
        info.value.message == "bundle: Sigstore verification failed: Bundle message digest mismatch"
    )
    assert info.value.remedy == (
        "the bundle is altered, or it comes from another Sigstore instance than the trust root "
        "(staging)"
    )


def test_timestamps_need_an_authority_in_the_trust_root() -> None:
    doc = json.loads((TSA / "bundle.txt.sigstore").read_text())
    trust = json.loads((TSA / "trust_config.json").read_text())
    trust["trustedRoot"]["timestampAuthorities"] = []
    with pytest.raises(SigstoreVerificationError) as info:
        _tsa_verify(doc, trust)
    assert info.value.message == (
        "bundle: Sigstore verification failed: the bundle carries signed timestamps, but the "
        "trust root names no timestamp authority"
    )


def test_keyless_integrated_time_without_a_promise_is_no_signed_time() -> None:
    """Without its promise, an entry's integrated time is not signed: it must not count."""
    doc = json.loads((TSA / "bundle.txt.sigstore").read_text())
    trust = json.loads((TSA / "trust_config.json").read_text())
    assert [t.source for t in _tsa_verify(doc, trust).times] == ["transparency-log"]
    del doc["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]
    with pytest.raises(SigstoreVerificationError) as info:
        _tsa_verify(doc, trust)
    assert "not enough sources of verified time" in info.value.message
