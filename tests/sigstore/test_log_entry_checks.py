"""Each check on a key bundle's transparency-log entry, one at a time, with its reason.

The loopback Rekor (instance.py) logs whatever body it is given and signs it for real
(inclusion proof, checkpoint, signed entry timestamp), so an entry that records
another verifier, another payload or another signature is a genuinely logged entry:
only the body check can refuse it. Times come from the log; ``now`` is the one fake,
the verifier's clock, to place an entry in the verifier's future.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from mlspec_attest.errors import MalformedDocumentError, SigstoreVerificationError
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, pae
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key
from mlspec_attest.signing.sigstore.result import VerifiedBundle
from mlspec_attest.signing.sigstore.trust_root import TrustRoot
from mlspec_attest.signing.sigstore.verify import verify_bundle

from ..support import asset
from .instance import SigstoreInstance
from .test_key_transparency import BUNDLE_V03, b64, log, statement

ARTIFACT = b"weights v1"
TLOG = "bundle: transparency-log verification failed: "
INCONSISTENT = "the log entry is inconsistent with the bundle (another signature, key or artifact)"
DIGEST = hashlib.sha256(ARTIFACT).hexdigest()


@pytest.fixture(scope="module")
def signer() -> LocalKeySigner:
    return generate_key(KeyType.ECDSA_P256)


@pytest.fixture(scope="module")
def other() -> LocalKeySigner:
    return generate_key(KeyType.ECDSA_P256)


@pytest.fixture(scope="module")
def trust(sigstore_instance: SigstoreInstance) -> TrustRoot:
    return TrustRoot.from_json(sigstore_instance.trust_config, source="loopback")


def pem(key: LocalKeySigner) -> str:
    return b64(key.public_key.pem().encode())


def envelope_of(key: LocalKeySigner, payload: bytes) -> tuple[dict[str, Any], bytes]:
    sig = key.sign(pae(INTOTO_PAYLOAD_TYPE, payload))
    env = {"payload": b64(payload), "payloadType": INTOTO_PAYLOAD_TYPE, "signatures": [{"sig": b64(sig)}]}  # fmt: skip
    return env, sig


def key_bundle(
    key: LocalKeySigner, entries: list[dict[str, Any]], **content: Any
) -> dict[str, Any]:
    return {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {"publicKey": {"hint": key.public_key.keyid}, "tlogEntries": entries},
        **content,
    }  # fmt: skip


def verify(
    doc: dict[str, Any], key: LocalKeySigner, trust: TrustRoot, now: datetime | None = None
) -> VerifiedBundle:
    return verify_bundle(doc, trust=trust, key=key.public_key, artifact_sha256=DIGEST, now=now)


def denied(
    doc: dict[str, Any], key: LocalKeySigner, trust: TrustRoot, now: datetime | None = None
) -> str:
    with pytest.raises(SigstoreVerificationError) as info:
        verify(doc, key, trust, now)
    assert info.value.exit_code == 1
    if info.value.message.startswith(TLOG):
        assert info.value.remedy == (
            "the bundle is altered, or it was logged by another Sigstore instance than the "
            "trust root (loopback)"
        )
    return info.value.message


# --- intoto 0.0.2 --------------------------------------------------------------------------


def intoto_entry(
    instance: SigstoreInstance,
    key: LocalKeySigner,
    env: dict[str, Any],
    sig: bytes,
    payload: bytes,
    **change: Any,
) -> dict[str, Any]:
    """Log an intoto 0.0.2 body as Rekor persists it; ``change`` alters one field of it."""
    recorded: dict[str, Any] = {
        "payloadType": change.get("payload_type", INTOTO_PAYLOAD_TYPE),
        "payload": b64(env["payload"].encode()),
        "signatures": change.get(
            "signatures", [{"sig": b64(b64(sig).encode()), "publicKey": change.get("verifier", pem(key))}]
        ),
    }  # fmt: skip
    if recorded["payloadType"] is None:
        del recorded["payloadType"]
    content: dict[str, Any] = {
        "envelope": recorded,
        "hash": {"algorithm": "sha256", "value": hashlib.sha256(json.dumps(env).encode()).hexdigest()},
        "payloadHash": change.get(
            "payload_hash", {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}
        ),
    }  # fmt: skip
    if change.get("no_envelope"):
        del content["envelope"]
    body = {"apiVersion": "0.0.2", "kind": "intoto", "spec": {"content": content}}
    return log(instance, body)


def test_intoto_entry_as_logged_verifies(
    sigstore_instance: SigstoreInstance, signer: LocalKeySigner, trust: TrustRoot
) -> None:
    payload = statement(DIGEST)
    env, sig = envelope_of(signer, payload)
    entry = intoto_entry(sigstore_instance, signer, env, sig, payload)
    verified = verify(key_bundle(signer, [entry], dsseEnvelope=env), signer, trust)
    assert verified.log_entries == 1
    assert [t.source for t in verified.times] == ["transparency-log"]
    assert verified.times[0].time == datetime.fromtimestamp(int(entry["integratedTime"]), tz=UTC)
    # a recorded envelope that omits payloadType is what older Rekor clients sent
    entry = intoto_entry(sigstore_instance, signer, env, sig, payload, payload_type=None)
    verify(key_bundle(signer, [entry], dsseEnvelope=env), signer, trust)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("another-verifier", "intoto entry: signed by another verifier"),
        ("payload-hash", "intoto entry: payload hash mismatch"),
        ("payload-hash-algorithm", "intoto entry: payload hash mismatch"),
        ("payload-hash-missing", "intoto entry: payload hash mismatch"),
        ("another-signature", "intoto entry: signature mismatch"),
        ("signature-not-base64", "intoto entry: signature mismatch"),
        ("two-signatures", "intoto entry: signature count mismatch"),
        ("no-signatures", "intoto entry: signature count mismatch"),
        ("payload-type", "intoto entry: payloadType mismatch"),
        ("no-envelope", "intoto entry has no envelope"),
    ],
)
def test_intoto_entry_recording_something_else_is_denied(
    case: str,
    reason: str,
    sigstore_instance: SigstoreInstance,
    signer: LocalKeySigner,
    other: LocalKeySigner,
    trust: TrustRoot,
) -> None:
    payload = statement(DIGEST)
    env, sig = envelope_of(signer, payload)
    _, other_sig = envelope_of(other, payload)
    good = {"sig": b64(b64(sig).encode()), "publicKey": pem(signer)}
    change: dict[str, Any] = {
        "another-verifier": {"verifier": pem(other)},
        "payload-hash": {"payload_hash": {"algorithm": "sha256", "value": hashlib.sha256(b"x").hexdigest()}},
        "payload-hash-algorithm": {"payload_hash": {"algorithm": "sha512", "value": hashlib.sha256(payload).hexdigest()}},
        "payload-hash-missing": {"payload_hash": None},
        "another-signature": {"signatures": [{"sig": b64(b64(other_sig).encode()), "publicKey": pem(signer)}]},
        "signature-not-base64": {"signatures": [{"sig": "%%%", "publicKey": pem(signer)}]},
        "two-signatures": {"signatures": [good, good]},
        "no-signatures": {"signatures": []},
        "payload-type": {"payload_type": "text/plain"},
        "no-envelope": {"no_envelope": True},
    }[case]  # fmt: skip
    entry = intoto_entry(sigstore_instance, signer, env, sig, payload, **change)
    message = denied(key_bundle(signer, [entry], dsseEnvelope=env), signer, trust)
    assert message == TLOG + reason


def test_intoto_entry_for_a_message_signature_is_denied(
    sigstore_instance: SigstoreInstance, signer: LocalKeySigner, trust: TrustRoot
) -> None:
    payload = statement(DIGEST)
    env, sig = envelope_of(signer, payload)
    entry = intoto_entry(sigstore_instance, signer, env, sig, payload)
    digest_sig = _prehashed_signature(signer)
    doc = key_bundle(signer, [entry], messageSignature={"signature": b64(digest_sig)})
    message = denied(doc, signer, trust)
    assert message == TLOG + INCONSISTENT


# --- dsse 0.0.1 ----------------------------------------------------------------------------


def dsse_entry(instance: SigstoreInstance, env: dict[str, Any], verifier: str) -> dict[str, Any]:
    proposed = {"envelope": json.dumps(env), "verifiers": [verifier]}
    body = {"apiVersion": "0.0.1", "kind": "dsse", "spec": {"proposedContent": proposed}}
    return log(instance, body)


def test_dsse_entry_checks(
    sigstore_instance: SigstoreInstance,
    signer: LocalKeySigner,
    other: LocalKeySigner,
    trust: TrustRoot,
) -> None:
    payload = statement(DIGEST)
    env, _ = envelope_of(signer, payload)
    doc = key_bundle(signer, [dsse_entry(sigstore_instance, env, pem(signer))], dsseEnvelope=env)
    assert verify(doc, signer, trust).log_entries == 1
    # a DSSE bundle names its artifact itself: the log entry verifies without one given
    alone = verify_bundle(doc, trust=trust, key=signer.public_key)
    assert (alone.log_entries, alone.payload) == (1, payload)
    inconsistent = TLOG + INCONSISTENT
    # the entry names another verifier
    doc = key_bundle(signer, [dsse_entry(sigstore_instance, env, pem(other))], dsseEnvelope=env)
    assert denied(doc, signer, trust) == inconsistent
    # the entry records the same signature over another payload (payload hash differs)
    swapped = {**env, "payload": b64(statement("ab" * 32))}
    doc = key_bundle(
        signer, [dsse_entry(sigstore_instance, swapped, pem(signer))], dsseEnvelope=env
    )
    assert denied(doc, signer, trust) == inconsistent
    # the entry names a verifier that is no public key at all
    doc = key_bundle(
        signer, [dsse_entry(sigstore_instance, env, b64(b"not a key"))], dsseEnvelope=env
    )
    assert denied(doc, signer, trust) == inconsistent
    # the entry records two signatures
    doubled = {**env, "signatures": env["signatures"] * 2}
    doc = key_bundle(
        signer, [dsse_entry(sigstore_instance, doubled, pem(signer))], dsseEnvelope=env
    )
    assert denied(doc, signer, trust) == inconsistent
    # the entry records another signature
    other_env, _ = envelope_of(other, payload)
    doc = key_bundle(
        signer, [dsse_entry(sigstore_instance, other_env, pem(signer))], dsseEnvelope=env
    )
    assert denied(doc, signer, trust) == inconsistent


def test_dsse_entry_with_another_hash_algorithm_is_denied(
    sigstore_instance: SigstoreInstance, signer: LocalKeySigner, trust: TrustRoot
) -> None:
    payload = statement(DIGEST)
    env, sig = envelope_of(signer, payload)
    body = {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(json.dumps(env).encode()).hexdigest()},
            "payloadHash": {"algorithm": "sha512", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": [{"signature": b64(sig), "verifier": pem(signer)}],
        },
    }  # fmt: skip
    doc = key_bundle(signer, [log(sigstore_instance, body)], dsseEnvelope=env)
    assert denied(doc, signer, trust) == TLOG + INCONSISTENT
    body["spec"]["payloadHash"]["algorithm"] = "sha256"
    doc = key_bundle(signer, [log(sigstore_instance, body)], dsseEnvelope=env)
    assert verify(doc, signer, trust).log_entries == 1


# --- hashedrekord 0.0.1 --------------------------------------------------------------------


def _prehashed_signature(key: LocalKeySigner) -> bytes:
    private = key.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    return private.sign(bytes.fromhex(DIGEST), ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def hashedrekord_entry(
    instance: SigstoreInstance,
    sig: bytes,
    verifier: str,
    *,
    value: str = DIGEST,
    algorithm: str = "sha256",
) -> dict[str, Any]:
    body = {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": algorithm, "value": value}},
            "signature": {"content": b64(sig), "publicKey": {"content": verifier}},
        },
    }
    return log(instance, body)


def message_bundle(key: LocalKeySigner, sig: bytes, entry: dict[str, Any]) -> dict[str, Any]:
    message = {
        "messageDigest": {"algorithm": "SHA2_256", "digest": b64(bytes.fromhex(DIGEST))},
        "signature": b64(sig),
    }
    return key_bundle(key, [entry], messageSignature=message)


@pytest.mark.parametrize(
    "case", ["another-key", "another-hash", "another-algorithm", "another-signature"]
)
def test_hashedrekord_entry_recording_something_else_is_denied(
    case: str,
    sigstore_instance: SigstoreInstance,
    signer: LocalKeySigner,
    other: LocalKeySigner,
    trust: TrustRoot,
) -> None:
    sig = _prehashed_signature(signer)
    kwargs: dict[str, Any] = {
        "another-key": {"verifier": pem(other)},
        "another-hash": {"value": "ab" * 32},
        "another-algorithm": {"algorithm": "sha512"},
        "another-signature": {"sig": _prehashed_signature(other)},
    }[case]
    entry = hashedrekord_entry(
        sigstore_instance,
        kwargs.pop("sig", sig),
        kwargs.pop("verifier", pem(signer)),
        **kwargs,
    )
    message = denied(message_bundle(signer, sig, entry), signer, trust)
    assert message == TLOG + INCONSISTENT


def test_hashedrekord_entry_for_a_dsse_bundle_is_denied(
    sigstore_instance: SigstoreInstance, signer: LocalKeySigner, trust: TrustRoot
) -> None:
    env, sig = envelope_of(signer, statement(DIGEST))
    entry = hashedrekord_entry(sigstore_instance, sig, pem(signer))
    message = denied(key_bundle(signer, [entry], dsseEnvelope=env), signer, trust)
    assert message == TLOG + INCONSISTENT


# --- signed time ---------------------------------------------------------------------------


@pytest.fixture
def logged(
    sigstore_instance: SigstoreInstance, signer: LocalKeySigner
) -> tuple[dict[str, Any], datetime]:
    sig = _prehashed_signature(signer)
    entry = hashedrekord_entry(sigstore_instance, sig, pem(signer))
    integrated = datetime.fromtimestamp(int(entry["integratedTime"]), tz=UTC)
    return message_bundle(signer, sig, entry), integrated


def test_entry_integrated_in_the_future_is_denied(
    logged: tuple[dict[str, Any], datetime], signer: LocalKeySigner, trust: TrustRoot
) -> None:
    doc, integrated = logged
    # five minutes of clock skew are allowed, to the second
    verified = verify(doc, signer, trust, now=integrated - timedelta(minutes=5))
    assert [(t.source, t.time) for t in verified.times] == [("transparency-log", integrated)]
    message = denied(doc, signer, trust, now=integrated - timedelta(minutes=5, seconds=1))
    assert message == TLOG + "the log entry is integrated in the future"
    message = denied(doc, signer, trust, now=integrated - timedelta(days=1))
    assert message == TLOG + "the log entry is integrated in the future"


def test_entry_without_a_promise_has_no_signed_time(
    logged: tuple[dict[str, Any], datetime], signer: LocalKeySigner, trust: TrustRoot
) -> None:
    doc, _ = logged
    del doc["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]
    message = denied(doc, signer, trust)
    assert message == TLOG + "the bundle needs an inclusion promise or a signed timestamp"


def test_v01_bundle_needs_an_inclusion_promise(
    logged: tuple[dict[str, Any], datetime], signer: LocalKeySigner, trust: TrustRoot
) -> None:
    doc, _ = logged
    doc["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1"
    assert verify(doc, signer, trust).log_entries == 1
    del doc["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]
    assert denied(doc, signer, trust) == TLOG + "a v0.1 bundle needs an inclusion promise"


def test_altered_integrated_time_breaks_the_promise(
    logged: tuple[dict[str, Any], datetime], signer: LocalKeySigner, trust: TrustRoot
) -> None:
    doc, integrated = logged
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = str(int(integrated.timestamp()) - 3600)
    assert denied(doc, signer, trust).startswith(TLOG)


def test_entry_of_an_unsupported_kind_is_denied(
    sigstore_instance: SigstoreInstance, signer: LocalKeySigner, trust: TrustRoot
) -> None:
    sig = _prehashed_signature(signer)
    body = {
        "apiVersion": "0.0.1",
        "kind": "rekord",
        "spec": {"data": {"hash": {"algorithm": "sha256", "value": DIGEST}}},
    }
    doc = message_bundle(signer, sig, log(sigstore_instance, body))
    message = denied(doc, signer, trust)
    assert message == TLOG + "integrated time is not supported for rekord/0.0.1 entries"


# --- how many entries and signatures -------------------------------------------------------


def test_exactly_one_log_entry(
    logged: tuple[dict[str, Any], datetime], signer: LocalKeySigner, trust: TrustRoot
) -> None:
    doc, _ = logged
    entries = doc["verificationMaterial"]["tlogEntries"]
    doc["verificationMaterial"]["tlogEntries"] = entries * 2
    with pytest.raises(MalformedDocumentError) as info:
        verify(doc, signer, trust)
    assert info.value.message == (
        "bundle: not a valid Sigstore bundle (expected exactly one log entry, found 2)"
    )
    doc["verificationMaterial"]["tlogEntries"] = []
    message = denied(doc, signer, trust)
    assert message == "bundle: a trust root was given, but the bundle has no transparency-log entry"


@pytest.mark.parametrize("order", ["valid-first", "valid-second"])
def test_key_bundle_with_several_signatures_is_denied(
    order: str, signer: LocalKeySigner, other: LocalKeySigner
) -> None:
    payload = statement(DIGEST)
    env, _ = envelope_of(signer, payload)
    other_env, _ = envelope_of(other, payload)
    sigs = env["signatures"] + other_env["signatures"]
    env["signatures"] = sigs if order == "valid-first" else sigs[::-1]
    doc = key_bundle(signer, [], dsseEnvelope=env)
    with pytest.raises(SigstoreVerificationError) as info:
        verify_bundle(doc, trust=None, key=signer.public_key, artifact_sha256=DIGEST)
    assert info.value.message == "bundle: expected one DSSE signature, found 2"
    # the signer's signature alone: accepted
    env["signatures"] = sigs[:1]
    verified = verify_bundle(doc, trust=None, key=signer.public_key, artifact_sha256=DIGEST)
    assert verified.keyid == signer.public_key.keyid


# --- the intoto body check on its own (as the keyless path calls it) ----------------------------


def _certificate(key: LocalKeySigner) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    private = key.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(private, hashes.SHA256())
    )


def _intoto_raw(
    env: dict[str, Any], sig: bytes, payload: bytes, verifier: str, **spec: Any
) -> bytes:
    content: dict[str, Any] = {
        "envelope": {
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "payload": b64(env["payload"].encode()),
            "signatures": [{"sig": b64(b64(sig).encode()), "publicKey": verifier}],
        },
        "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
    }
    content.update(spec)
    return json.dumps(
        {"apiVersion": "0.0.2", "kind": "intoto", "spec": {"content": content}}
    ).encode()


@pytest.mark.parametrize(
    ("verifier", "reason"),
    [
        ("signer", None),
        ("other", "intoto entry: signed by another verifier"),
        ("not-a-certificate", "intoto entry: signed by another verifier"),
        ("not-base64", "log entry: verifier is not base64"),
    ],
)
def test_intoto_body_names_the_signing_certificate(
    verifier: str, reason: str | None, signer: LocalKeySigner, other: LocalKeySigner
) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding
    from sigstore import errors as sigstore_errors

    from mlspec_attest.signing.sigstore import log_entry

    cert = _certificate(signer)
    pems = {
        "signer": b64(cert.public_bytes(Encoding.PEM)),
        "other": b64(_certificate(other).public_bytes(Encoding.PEM)),
        "not-a-certificate": b64(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        "not-base64": "%%%",
    }
    payload = statement(DIGEST)
    env, sig = envelope_of(signer, payload)
    raw = _intoto_raw(env, sig, payload, pems[verifier])

    def check() -> None:
        log_entry.check_intoto_body(
            raw,
            INTOTO_PAYLOAD_TYPE,
            payload,
            sig,
            lambda pem: log_entry.same_certificate(pem, cert),
        )

    if reason is None:
        check()
        return
    with pytest.raises(sigstore_errors.VerificationError) as info:
        check()
    assert str(info.value) == reason


def test_intoto_body_content_must_be_an_object(signer: LocalKeySigner) -> None:
    from sigstore import errors as sigstore_errors

    from mlspec_attest.signing.sigstore import log_entry

    payload = statement(DIGEST)
    _, sig = envelope_of(signer, payload)
    raw = json.dumps({"apiVersion": "0.0.2", "kind": "intoto", "spec": {"content": "x"}})
    with pytest.raises(sigstore_errors.VerificationError) as info:
        log_entry.check_intoto_body(
            raw.encode(), INTOTO_PAYLOAD_TYPE, payload, sig, lambda pem: True
        )
    assert str(info.value) == "intoto entry has no envelope"


# --- malformed fields of a logged entry: named, never a crash -------------------------------------


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("hashedrekord-signature", "log entry: signature is not base64"),
        ("hashedrekord-signature-junk", "log entry: signature is not base64"),
        ("hashedrekord-signature-number", "log entry: signature is not base64 text"),
        ("hashedrekord-key", "log entry: public key is not base64"),
        ("hashedrekord-signature-not-object", INCONSISTENT),
        ("dsse-signature", "log entry: signature is not base64"),
        ("dsse-verifier", "log entry: verifier is not base64"),
        ("dsse-for-a-message-signature", INCONSISTENT),
    ],
)
def test_malformed_entry_fields_are_named(
    case: str,
    reason: str,
    sigstore_instance: SigstoreInstance,
    signer: LocalKeySigner,
    trust: TrustRoot,
) -> None:
    sig = _prehashed_signature(signer)
    good = b64(sig)
    if case.startswith("hashedrekord"):
        content: Any = {
            "hashedrekord-signature": "%%%",
            "hashedrekord-signature-junk": good[:8] + "!" + good[8:],
            "hashedrekord-signature-number": 12345,
        }.get(case, good)
        key_content = "%%%" if case == "hashedrekord-key" else pem(signer)
        signature: Any = {"content": content, "publicKey": {"content": key_content}}
        if case == "hashedrekord-signature-not-object":
            signature = "x"
        body = {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {"data": {"hash": {"algorithm": "sha256", "value": DIGEST}}, "signature": signature},
        }  # fmt: skip
        doc = message_bundle(signer, sig, log(sigstore_instance, body))
    else:
        payload = statement(DIGEST)
        env, dsse_sig = envelope_of(signer, payload)
        recorded = {
            "dsse-signature": {"signature": "%%%", "verifier": pem(signer)},
            "dsse-verifier": {"signature": b64(dsse_sig), "verifier": "%%%"},
            # the message signature itself, recorded as if it were a DSSE signature
            "dsse-for-a-message-signature": {"signature": good, "verifier": pem(signer)},
        }[case]
        body = {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
                "signatures": [recorded],
            },
        }  # fmt: skip
        entry = log(sigstore_instance, body)
        if case == "dsse-for-a-message-signature":
            doc = message_bundle(signer, sig, entry)
        else:
            doc = key_bundle(signer, [entry], dsseEnvelope=env)
    assert denied(doc, signer, trust) == TLOG + reason


# --- signed timestamps on a key bundle ----------------------------------------------------------

MANY_STAMPS = asset("sigstore/bundles/tsa/bundle.many_timestamp.sigstore")


def _stamps(count: int) -> list[dict[str, str]]:
    """``count`` distinct, well-formed RFC 3161 timestamps (of another signature: none verify)."""
    doc = json.loads(MANY_STAMPS.read_text())
    stamps: list[dict[str, str]] = doc["verificationMaterial"]["timestampVerificationData"][
        "rfc3161Timestamps"
    ]
    assert len(stamps) >= count
    return stamps[:count]


@pytest.mark.parametrize(("count", "reason"), [(32, None), (33, "too many signed timestamps")])
def test_at_most_32_signed_timestamps(
    count: int,
    reason: str | None,
    logged: tuple[dict[str, Any], datetime],
    signer: LocalKeySigner,
    trust: TrustRoot,
) -> None:
    doc, integrated = logged
    doc["verificationMaterial"]["timestampVerificationData"] = {"rfc3161Timestamps": _stamps(count)}
    if reason is None:
        # none of them is this signature's, so only the log's time counts
        assert [(t.source, t.time) for t in verify(doc, signer, trust).times] == [
            ("transparency-log", integrated)
        ]
    else:
        assert denied(doc, signer, trust) == TLOG + reason


def test_duplicate_signed_timestamps_are_denied(
    logged: tuple[dict[str, Any], datetime], signer: LocalKeySigner, trust: TrustRoot
) -> None:
    doc, _ = logged
    doc["verificationMaterial"]["timestampVerificationData"] = {"rfc3161Timestamps": _stamps(1) * 2}
    assert denied(doc, signer, trust) == TLOG + "duplicate signed timestamp"


def test_integrated_time_without_a_promise_is_no_signed_time(
    logged: tuple[dict[str, Any], datetime], signer: LocalKeySigner, trust: TrustRoot
) -> None:
    """A timestamp (that does not verify) lets the bundle past the shape check; the entry's
    integrated time, with no promise signing it, must not count as a signed time."""
    doc, _ = logged
    del doc["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]
    doc["verificationMaterial"]["timestampVerificationData"] = {"rfc3161Timestamps": _stamps(1)}
    assert denied(doc, signer, trust) == TLOG + "no verified source of signing time"


def test_undecodable_signed_timestamp_is_bad_input(
    logged: tuple[dict[str, Any], datetime], signer: LocalKeySigner, trust: TrustRoot
) -> None:
    doc, _ = logged
    doc["verificationMaterial"]["timestampVerificationData"] = {
        "rfc3161Timestamps": [{"signedTimestamp": b64(b"not a timestamp response")}]
    }
    with pytest.raises(MalformedDocumentError) as info:
        verify(doc, signer, trust)
    assert info.value.message.startswith("bundle: not a valid Sigstore bundle (")


# --- the body of an entry, read on its own ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "log entry body is not JSON"),
        (b"[]", "log entry body does not match the entry's kind and version"),
        (b'{"kind": "dsse", "apiVersion": "0.0.2", "spec": {}}', "log entry body does not match the entry's kind and version"),
        (b'{"kind": "intoto", "apiVersion": "0.0.1", "spec": {}}', "log entry body does not match the entry's kind and version"),
        (b'{"kind": "intoto", "apiVersion": "0.0.2"}', "log entry body has no spec"),
        (b'{"kind": "intoto", "apiVersion": "0.0.2", "spec": []}', "log entry body has no spec"),
    ],
)  # fmt: skip
def test_entry_body_shape(raw: bytes, reason: str, signer: LocalKeySigner) -> None:
    from sigstore import errors as sigstore_errors

    from mlspec_attest.signing.sigstore import log_entry

    payload = statement(DIGEST)
    _, sig = envelope_of(signer, payload)
    with pytest.raises(sigstore_errors.VerificationError) as info:
        log_entry.check_intoto_body(raw, INTOTO_PAYLOAD_TYPE, payload, sig, lambda pem: True)
    assert str(info.value) == reason


def test_log_key_expired_since_still_verifies_what_it_logged(
    sigstore_instance: SigstoreInstance,
    logged: tuple[dict[str, Any], datetime],
    signer: LocalKeySigner,
) -> None:
    """A Rekor key's validity may have ended since; entries it signed while valid still verify."""
    import copy
    import time

    doc, integrated = logged
    root = copy.deepcopy(sigstore_instance.trusted_root)
    ended = integrated + timedelta(seconds=1)
    while datetime.now(UTC) <= ended:
        time.sleep(0.2)
    root["tlogs"][0]["publicKey"]["validFor"]["end"] = ended.strftime("%Y-%m-%dT%H:%M:%SZ")
    trust = TrustRoot.from_json(root, source="loopback, log key expired")
    assert verify(doc, signer, trust).log_entries == 1
