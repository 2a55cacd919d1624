"""``verify_bundle`` and trust roots: every refusal names what is wrong and what to do.

Real bundles (tests/assets/sigstore), real keys and signatures; asserted word for word,
message and remedy, since these are what a user reads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.errors import (
    BackendError,
    BadInputError,
    MalformedDocumentError,
    SigstoreVerificationError,
    UsageError,
)
from mlspec_attest.formats.bundle import sign_to_bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key
from mlspec_attest.signing.sigstore.identity import IdentityMismatchError, SigstoreIdentity
from mlspec_attest.signing.sigstore.trust_root import TrustRoot
from mlspec_attest.signing.sigstore.verify import sha256_file, verify_bundle

from ..support import asset

ISSUER = "https://issuer.example"
DIGEST = hashlib.sha256(b"weights").hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def message_bundle(key: LocalKeySigner, **message: Any) -> dict[str, Any]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    private = key.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    sig = private.sign(bytes.fromhex(DIGEST), ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    body: dict[str, Any] = {
        "messageDigest": {"algorithm": "SHA2_256", "digest": b64(bytes.fromhex(DIGEST))},
        "signature": b64(sig),
    }
    body.update(message)
    return {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": key.public_key.keyid}},
        "messageSignature": body,
    }


@pytest.fixture(scope="module")
def key() -> LocalKeySigner:
    return generate_key(KeyType.ECDSA_P256)


def refused(exc_type: type[Exception], doc: Any, **kwargs: Any) -> Any:
    with pytest.raises(exc_type) as info:
        verify_bundle(doc, **kwargs)
    return info.value


# --- message signatures ---------------------------------------------------------------------


def test_message_signature_verifies(key: LocalKeySigner) -> None:
    verified = verify_bundle(
        message_bundle(key), trust=None, key=key.public_key, artifact_sha256=DIGEST
    )
    assert verified.to_json() == {
        "method": "key",
        "signer": {"keyid": key.public_key.keyid},
        "content": "message-signature",
        "transparencyLogEntries": 0,
        "signedTimes": [],
    }


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"messageDigest": "x"}, "bundle: messageSignature.messageDigest is not an object"),
        ({"messageDigest": {"algorithm": "SHA2_256", "digest": "AB!C"}}, "bundle: messageDigest is not base64"),
        ({"signature": 7}, "bundle: messageSignature.signature: expected a base64 string"),
    ],
)  # fmt: skip
def test_malformed_message_signature(
    change: dict[str, Any], error: str, key: LocalKeySigner
) -> None:
    err = refused(
        MalformedDocumentError,
        message_bundle(key, **change),
        trust=None,
        key=key.public_key,
        artifact_sha256=DIGEST,
    )
    assert err.message == error


def test_message_signature_that_is_not_an_object(key: LocalKeySigner) -> None:
    doc = message_bundle(key)
    doc["messageSignature"] = "x"
    err = refused(
        MalformedDocumentError, doc, trust=None, key=key.public_key, artifact_sha256=DIGEST
    )
    assert err.message == "bundle: messageSignature is not an object"


@pytest.mark.parametrize(
    "digest",
    [
        {"algorithm": "SHA2_256", "digest": b64(bytes.fromhex("ab" * 32))},
        {"algorithm": "SHA2_512", "digest": b64(bytes.fromhex(DIGEST))},
        {"algorithm": "SHA2_256"},
    ],
)
def test_message_digest_of_another_artifact(digest: dict[str, str], key: LocalKeySigner) -> None:
    err = refused(
        SigstoreVerificationError,
        message_bundle(key, messageDigest=digest),
        trust=None,
        key=key.public_key,
        artifact_sha256=DIGEST,
    )
    assert err.message == "bundle: the bundle's message digest is not the artifact's sha256"
    assert err.remedy == "this bundle signs another artifact"


def test_message_digest_with_junk_in_its_base64_is_refused(key: LocalKeySigner) -> None:
    good = b64(bytes.fromhex(DIGEST))
    digest = {"algorithm": "SHA2_256", "digest": good[:4] + "!" + good[4:]}
    err = refused(
        MalformedDocumentError,
        message_bundle(key, messageDigest=digest),
        trust=None,
        key=key.public_key,
        artifact_sha256=DIGEST,
    )
    assert err.message == "bundle: messageDigest is not base64"


def test_message_signature_needs_the_artifact(key: LocalKeySigner) -> None:
    err = refused(UsageError, message_bundle(key), trust=None, key=key.public_key)
    assert err.message == "bundle: a message signature covers an artifact; pass it"
    assert err.remedy == "artifact FILE or digest sha256:HEX"


def test_message_signature_by_another_key(key: LocalKeySigner) -> None:
    other = generate_key(KeyType.ECDSA_P256)
    err = refused(
        SigstoreVerificationError,
        message_bundle(key),
        trust=None,
        key=other.public_key,
        artifact_sha256=DIGEST,
    )
    assert err.message == (
        f"bundle: the signature does not verify over sha256 {DIGEST} "
        f"under key {other.public_key.keyid[:16]}"
    )
    assert err.remedy == "the artifact or the bundle was altered, or another key signed it"


# --- DSSE bundles signed with a key ------------------------------------------------------------


def statement(digest: str, *, type_: str = "https://in-toto.io/Statement/v1") -> bytes:
    return json.dumps(
        {
            "_type": type_,
            "subject": [{"name": "model.bin", "digest": {"sha256": digest}}],
            "predicateType": "https://in-toto.io/attestation/link/v0.3",
            "predicate": {},
        }
    ).encode()


def dsse_bundle(
    key: LocalKeySigner, payload: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE
) -> Any:
    bundle, _ = sign_to_bundle(payload, payload_type, key)
    return bundle.to_json()


def test_dsse_result_carries_the_payload(key: LocalKeySigner) -> None:
    payload = statement(DIGEST)
    verified = verify_bundle(
        dsse_bundle(key, payload), trust=None, key=key.public_key, artifact_sha256=DIGEST
    )
    assert (verified.payload_type, verified.payload) == (INTOTO_PAYLOAD_TYPE, payload)
    out = verified.to_json()
    assert (out["content"], out["payloadType"]) == ("dsse", INTOTO_PAYLOAD_TYPE)


@pytest.mark.parametrize(
    ("payload", "payload_type", "error"),
    [
        (b"{}", "text/plain", "bundle: DSSE payloadType 'text/plain' is not an in-toto statement; it cannot name the artifact"),
        (b"[]", INTOTO_PAYLOAD_TYPE, "bundle: the DSSE payload is not an in-toto Statement v1"),
        (statement(DIGEST, type_="https://in-toto.io/Statement/v0.1"), INTOTO_PAYLOAD_TYPE, "bundle: the DSSE payload is not an in-toto Statement v1"),
        (b'{"_type": "https://in-toto.io/Statement/v1", "subject": {}}', INTOTO_PAYLOAD_TYPE, "bundle: the DSSE payload is not an in-toto Statement v1"),
        (b'{"_type": "https://in-toto.io/Statement/v1", "subject": ["x", {"digest": "y"}]}', INTOTO_PAYLOAD_TYPE, f"bundle: the in-toto statement has no subject with sha256 {DIGEST}"),
        (statement("ab" * 32), INTOTO_PAYLOAD_TYPE, f"bundle: the in-toto statement has no subject with sha256 {DIGEST}"),
    ],
)  # fmt: skip
def test_statement_must_name_the_artifact(
    payload: bytes, payload_type: str, error: str, key: LocalKeySigner
) -> None:
    err = refused(
        SigstoreVerificationError,
        dsse_bundle(key, payload, payload_type),
        trust=None,
        key=key.public_key,
        artifact_sha256=DIGEST,
    )
    assert err.message == error


def test_dsse_by_another_key(key: LocalKeySigner) -> None:
    other = generate_key(KeyType.ECDSA_P256)
    err = refused(
        SigstoreVerificationError,
        dsse_bundle(key, statement(DIGEST)),
        trust=None,
        key=other.public_key,
        artifact_sha256=DIGEST,
    )
    assert err.message == (
        f"bundle: the DSSE signature does not verify under key {other.public_key.keyid[:16]}"
    )
    assert err.remedy == "the bundle was altered, or another key signed it"


# --- what the bundle is, and what is missing to verify it ------------------------------------


def test_bundle_shape_errors(key: LocalKeySigner) -> None:
    assert refused(MalformedDocumentError, [], trust=None).message == (
        "bundle: a Sigstore bundle must be a JSON object"
    )
    assert refused(MalformedDocumentError, {}, trust=None).message == (
        "bundle: missing verificationMaterial"
    )
    err = refused(MalformedDocumentError, {"verificationMaterial": {"x": 1}}, trust=None)
    assert err.message == "bundle: unsupported bundle mediaType None"
    media_type = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}
    err = refused(MalformedDocumentError, {**media_type, "verificationMaterial": {}}, trust=None)
    assert (
        err.message == "bundle: verificationMaterial names neither a certificate nor a public key"
    )
    err = refused(
        MalformedDocumentError, {**media_type, "verificationMaterial": {"x": 1}}, trust=None
    )
    assert err.message == "bundle: verificationMaterial: unknown field(s) ['x']"
    both = dsse_bundle(key, statement(DIGEST))
    both["messageSignature"] = message_bundle(key)["messageSignature"]
    err = refused(MalformedDocumentError, both, trust=None, key=key.public_key)
    assert err.message == "bundle: a bundle carries exactly one of dsseEnvelope or messageSignature"
    one = dsse_bundle(key, statement(DIGEST))
    err = refused(UsageError, one, trust=None, key=key.public_key, artifact_sha256="ABC")
    assert err.message == "artifact digest 'ABC' is not a hex sha256"


def test_key_bundle_without_a_key(key: LocalKeySigner) -> None:
    err = refused(SigstoreVerificationError, message_bundle(key), trust=None)
    assert err.message == (
        "bundle: signed with a public key (not a Sigstore certificate), and no key was given"
    )
    assert err.remedy == "verify it with key PUBKEY"


CONFORMANCE = asset("sigstore/conformance/bundle-verify")


def _keyless() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (CONFORMANCE / "happy-path-v0.2" / "bundle.sigstore.json").read_text()
    )
    return doc


def test_keyless_bundle_needs_identities_and_a_trust_root(key: LocalKeySigner) -> None:
    err = refused(SigstoreVerificationError, _keyless(), trust=None, key=key.public_key)
    assert (
        err.message == "bundle: signed with a Sigstore certificate, not with the public key given"
    )
    assert err.remedy == "verify keyless bundles with identity/identity_regex and issuer"
    err = refused(UsageError, _keyless(), trust=None)
    assert err.message == "bundle: a keyless bundle needs an identity policy"
    assert err.remedy == "name the signer: identity ID (or identity_regex RE) and issuer URL"
    err = refused(
        BackendError, _keyless(), trust=None, identities=[SigstoreIdentity(ISSUER, identity="x")]
    )
    assert err.message == "bundle: no Sigstore trust root to verify a keyless bundle against"
    assert err.remedy == "pass trusted_root FILE, trust_config FILE or instance NAME"


def test_keyless_message_signature_needs_the_artifact() -> None:
    err = refused(
        UsageError,
        _keyless(),
        trust=TrustRoot.embedded("production"),
        identities=[SigstoreIdentity(ISSUER, identity="x")],
    )
    assert err.message == "bundle: a message signature covers an artifact; pass it"
    assert err.remedy == "artifact FILE or digest sha256:HEX"


def test_identity_mismatch_lists_every_rule() -> None:
    rules = [SigstoreIdentity(ISSUER, identity="a"), SigstoreIdentity(ISSUER, identity_regex="b.*")]
    err = refused(
        IdentityMismatchError,
        _keyless(),
        trust=TrustRoot.embedded("production"),
        identities=rules,
        artifact_sha256=sha256_file(CONFORMANCE / "a.txt"),
    )
    assert err.message.endswith(f"(allowed: a (issuer {ISSUER}); /b.*/ (issuer {ISSUER}))")


# --- trust roots ---------------------------------------------------------------------------------


def test_embedded_trust_roots_say_where_they_come_from() -> None:
    root = TrustRoot.embedded("staging")
    assert root.source == f"instance:staging (embedded in sigstore {version('sigstore')})"
    assert root.describe() == {"source": root.source, "digest": root.digest}
    with pytest.raises(UsageError) as info:
        TrustRoot.embedded("nope")
    assert info.value.message == "unknown Sigstore instance 'nope'"
    assert info.value.remedy == "use production or staging"


def test_embedded_trust_root_without_sigstore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sigstore", None)  # what an absent package looks like
    monkeypatch.setitem(sys.modules, "sigstore._utils", None)
    with pytest.raises(BackendError) as info:
        TrustRoot.embedded("production")
    assert info.value.message == (
        "the embedded production trust root needs sigstore, which is not installed"
    )
    assert info.value.remedy == "pip install 'mlspec-attest'"  # a core dependency


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        ([], "test: a Sigstore trust root must be a JSON object"),
        ({"mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"}, "test: ClientTrustConfig without trustedRoot"),
        ({"mediaType": "x"}, "test: mediaType 'x' is neither a Sigstore TrustedRoot (application/vnd.dev.sigstore.trustedroot+json;version=0.1) nor a ClientTrustConfig"),
    ],
)  # fmt: skip
def test_trust_root_documents(doc: Any, error: str) -> None:
    with pytest.raises(MalformedDocumentError) as info:
        TrustRoot.from_json(doc, source="test")
    assert info.value.message == error


def test_client_trust_config_gives_its_trusted_root() -> None:
    config = json.loads(
        asset("model-signing/trust-config/prod_client_trust_config.json").read_text()
    )
    root = TrustRoot.from_json(config, source="config")
    assert root.to_json() == config["trustedRoot"]
    assert (root.source, root.describe()["source"]) == ("config", "config")


def test_artifact_files(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"weights")
    assert sha256_file(tmp_path / "a") == DIGEST
    with pytest.raises(BadInputError) as info:
        sha256_file(tmp_path / "missing")
    assert info.value.message == f"{tmp_path / 'missing'}: artifact not found"
    with pytest.raises(BadInputError) as info:
        sha256_file(tmp_path)
    assert info.value.message == f"{tmp_path}: is a directory"


# --- signature schemes, times and trust-root files ---------------------------------------------


def test_p384_dsse_signed_with_sha256_verifies() -> None:
    """Sigstore clients sign DSSE with ECDSA-SHA256 whatever the curve."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from mlspec_attest.formats.dsse import pae

    signer = generate_key(KeyType.ECDSA_P384)
    private = signer.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    payload = statement(DIGEST)
    sig = private.sign(pae(INTOTO_PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    doc = dsse_bundle(signer, payload)
    doc["dsseEnvelope"]["signatures"] = [{"sig": b64(sig)}]
    verified = verify_bundle(doc, trust=None, key=signer.public_key, artifact_sha256=DIGEST)
    assert verified.payload == payload


def test_ed25519_never_verifies_a_message_digest() -> None:
    signer = generate_key(KeyType.ED25519)
    doc = message_bundle(generate_key(KeyType.ECDSA_P256))
    doc["messageSignature"]["signature"] = b64(signer.sign(bytes.fromhex(DIGEST)))
    err = refused(
        SigstoreVerificationError, doc, trust=None, key=signer.public_key, artifact_sha256=DIGEST
    )
    assert err.message.startswith(f"bundle: the signature does not verify over sha256 {DIGEST}")


def test_signed_times_are_reported_in_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    from datetime import datetime, timedelta, timezone

    from mlspec_attest.signing.sigstore.result import SignedTime

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
        assert SignedTime("timestamp-authority", when).to_json() == {
            "source": "timestamp-authority",
            "time": "2026-01-02T01:04:05+00:00",
        }
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_trust_root_files(tmp_path: Path) -> None:
    config = asset("model-signing/trust-config/prod_client_trust_config.json")
    assert TrustRoot.from_file(config).source == str(config)
    assert TrustRoot.from_file(config, source="named").source == "named"
    broken = tmp_path / "root.json"
    broken.write_text("{")
    with pytest.raises(MalformedDocumentError) as info:
        TrustRoot.from_file(broken)
    assert info.value.message.startswith(f"trust root {broken}: ")
    unusable = TrustRoot.from_json(
        {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}, source="x"
    )
    with pytest.raises(MalformedDocumentError) as info:
        unusable.sigstore()
    assert info.value.message.startswith("trust root x: not a usable TrustedRoot (")


@pytest.mark.parametrize(
    ("count", "note"), [(1, "1 transparency-log entry"), (2, "2 transparency-log entries")]
)
def test_unchecked_log_entries_are_noted(count: int, note: str, key: LocalKeySigner) -> None:
    doc = message_bundle(key)
    doc["verificationMaterial"]["tlogEntries"] = [{"logIndex": str(i)} for i in range(count)]
    verified = verify_bundle(doc, trust=None, key=key.public_key, artifact_sha256=DIGEST)
    assert verified.notes == (f"{note} not checked (no trust root given)",)
    assert verified.log_entries == 0
    out = verified.to_json()
    assert out["notes"] == [f"{note} not checked (no trust root given)"]
    assert out["transparencyLogEntries"] == 0


def test_keyless_result_names_signer_rules_and_times() -> None:
    beacon = (
        "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
        ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
    )
    rule = SigstoreIdentity("https://token.actions.githubusercontent.com", identity=beacon)
    verified = verify_bundle(
        _keyless(),
        trust=TrustRoot.embedded("production"),
        identities=[rule],
        artifact_sha256=sha256_file(CONFORMANCE / "a.txt"),
    )
    out = verified.to_json()
    assert verified.identity is not None
    assert out["signer"] == verified.identity.to_json()
    assert out["signer"]["identity"] == beacon
    assert out["matchedRules"] == [rule.to_json()]
    assert out["content"] == "message-signature"
    assert out["transparencyLogEntries"] == 1
    assert out["signedTimes"] == [t.to_json() for t in verified.times]
    assert [t["source"] for t in out["signedTimes"]] == ["transparency-log"]
    assert "notes" not in out


def test_statement_that_is_not_json(key: LocalKeySigner) -> None:
    err = refused(
        SigstoreVerificationError,
        dsse_bundle(key, b"not json"),
        trust=None,
        key=key.public_key,
        artifact_sha256=DIGEST,
    )
    assert err.message.startswith("bundle: in-toto statement: ")


def test_statement_of_another_artifact_says_what_to_do(key: LocalKeySigner) -> None:
    err = refused(
        SigstoreVerificationError,
        dsse_bundle(key, statement("ab" * 32)),
        trust=None,
        key=key.public_key,
        artifact_sha256=DIGEST,
    )
    assert err.remedy == "this bundle attests another artifact"


def test_malformed_envelope_is_named(key: LocalKeySigner) -> None:
    doc = dsse_bundle(key, statement(DIGEST))
    del doc["dsseEnvelope"]["payload"]
    err = refused(
        MalformedDocumentError, doc, trust=None, key=key.public_key, artifact_sha256=DIGEST
    )
    assert err.message.startswith("bundle: dsseEnvelope: ")


def test_unlogged_key_bundle_under_a_trust_root(key: LocalKeySigner) -> None:
    err = refused(
        SigstoreVerificationError,
        message_bundle(key),
        trust=TrustRoot.embedded("production"),
        key=key.public_key,
        artifact_sha256=DIGEST,
    )
    assert err.message == (
        "bundle: a trust root was given, but the bundle has no transparency-log entry"
    )
    assert err.remedy == "this key bundle was never logged; verify it with key alone"


def test_keyless_dsse_of_another_artifact() -> None:
    staging = asset("sigstore/bundles/valid-staging")
    doc = json.loads((staging / "a.dsse.staging-rekor-v2.txt.sigstore.json").read_text())
    beacon = (
        "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
        ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
    )
    err = refused(
        SigstoreVerificationError,
        doc,
        trust=TrustRoot.embedded("staging"),
        identities=[
            SigstoreIdentity("https://token.actions.githubusercontent.com", identity=beacon)
        ],
        artifact_sha256="ab" * 32,
    )
    assert err.message == f"bundle: the in-toto statement has no subject with sha256 {'ab' * 32}"
    assert err.remedy == "this bundle attests another artifact"


# --- refreshing a trust root over TUF (the network is the one fake) ----------------------------


def test_refreshed_trust_root_comes_from_the_instance_tuf_repository(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--refresh-trust``: the TUF client is the network edge, replaced by one that returns
    the staging ClientTrustConfig committed in the assets; everything after it is real."""
    from sigstore.models import ClientTrustConfig

    config_text = asset("model-signing/trust-config/staging_client_trust_config.json").read_text()
    fetched = ClientTrustConfig.from_json(config_text)
    calls: list[tuple[str, bool]] = []

    def from_tuf(cls: type, url: str, offline: bool) -> ClientTrustConfig:
        calls.append((url, offline))
        return fetched

    monkeypatch.setattr(ClientTrustConfig, "from_tuf", classmethod(from_tuf))
    root = TrustRoot.refreshed("staging")
    assert calls == [("https://tuf-repo-cdn.sigstage.dev", False)]
    assert root.source == (
        "instance:staging (refreshed over TUF from https://tuf-repo-cdn.sigstage.dev)"
    )
    assert root.to_json() == json.loads(fetched.trusted_root._inner.to_json())
    root.sigstore()  # a usable trusted root


def test_refresh_failure_is_a_backend_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from sigstore import errors as sigstore_errors
    from sigstore.models import ClientTrustConfig

    def from_tuf(cls: type, url: str, offline: bool) -> ClientTrustConfig:
        raise sigstore_errors.Error("no route to the TUF repository")

    monkeypatch.setattr(ClientTrustConfig, "from_tuf", classmethod(from_tuf))
    with pytest.raises(BackendError) as info:
        TrustRoot.refreshed("production")
    assert info.value.message == (
        "cannot refresh the production trust root over TUF: no route to the TUF repository"
    )
    with pytest.raises(UsageError) as usage:
        TrustRoot.refreshed("elsewhere")
    assert usage.value.message == "unknown Sigstore instance 'elsewhere'"


def test_refresh_without_sigstore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sigstore", None)
    with pytest.raises(BackendError) as info:
        TrustRoot.refreshed("production")
    assert info.value.message == (
        "refreshing the production trust root needs sigstore, which is not installed"
    )
