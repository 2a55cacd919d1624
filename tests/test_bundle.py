"""Sigstore bundle v0.3 carrying DSSE: our writer, and bundles made by model-signing."""

from __future__ import annotations

import json

import pytest

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.bundle import BUNDLE_MEDIA_TYPE_V03, Bundle, is_bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.formats.jsonio import canonical, load_file
from mlspec_attest.signing.keys import load_public_key
from mlspec_attest.signing.sigstore.verify import verify_bundle

from .support import KeyPair, asset


@pytest.fixture
def bundle(keys: dict[str, KeyPair]) -> Bundle:
    envelope = Envelope.sign(b'{"k":"v"}', INTOTO_PAYLOAD_TYPE, [keys["owner"].signer])
    return Bundle.for_public_key(envelope, keys["owner"].keyid)


def test_public_key_bundle_layout(bundle: Bundle, keys: dict[str, KeyPair]) -> None:
    doc = bundle.to_json()
    assert (
        doc["mediaType"] == BUNDLE_MEDIA_TYPE_V03 == "application/vnd.dev.sigstore.bundle.v0.3+json"
    )
    assert doc["verificationMaterial"] == {
        "publicKey": {"hint": keys["owner"].keyid},
        "tlogEntries": [],
    }
    assert doc["dsseEnvelope"] == bundle.envelope.to_json()
    assert bundle.key_hint == keys["owner"].keyid
    assert is_bundle(doc)


def test_bundle_json_round_trip(bundle: Bundle, keys: dict[str, KeyPair]) -> None:
    again = Bundle.from_json(json.loads(canonical(bundle.to_json())))
    assert again == bundle
    assert again.envelope.verified_by(keys["owner"].public)


def test_key_hint_absent_for_other_material(bundle: Bundle) -> None:
    other = Bundle(bundle.envelope, {"certificate": {"rawBytes": "AA=="}})
    assert other.key_hint is None
    assert Bundle(bundle.envelope, {"publicKey": {"hint": 5}}).key_hint is None


@pytest.mark.parametrize(
    "media_type",
    [
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
    ],
)
def test_older_media_types_are_read(bundle: Bundle, media_type: str) -> None:
    doc = bundle.to_json()
    doc["mediaType"] = media_type
    assert Bundle.from_json(doc).media_type == media_type


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(mediaType="application/json"), "unsupported bundle mediaType"),
        (lambda d: d.pop("mediaType"), "unsupported bundle mediaType"),
        (lambda d: d.pop("dsseEnvelope"), "no DSSE envelope"),
        (lambda d: d.pop("verificationMaterial"), "missing verificationMaterial"),
        (lambda d: d.update(verificationMaterial=[]), "missing verificationMaterial"),
        (lambda d: d["dsseEnvelope"].update(signatures=[]), "no signatures"),
    ],
)
def test_malformed_bundles_are_refused(bundle: Bundle, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(canonical(bundle.to_json()))
    mutate(doc)
    with pytest.raises(MalformedDocumentError, match=message):
        Bundle.from_json(doc, what="b.json")


def test_not_an_object_is_refused() -> None:
    with pytest.raises(MalformedDocumentError) as info:
        Bundle.from_json([1, 2])
    assert info.value.message == "bundle: expected a JSON object"
    assert not is_bundle([1, 2])
    assert not is_bundle({"payloadType": "x"})


def test_message_signature_bundle_is_refused() -> None:
    # A real Sigstore bundle over a blob (messageSignature): not an attestation.
    doc = load_file(asset("sigstore/bundles/valid-staging/bundle_v3.txt.sigstore"))
    assert is_bundle(doc)
    if "dsseEnvelope" in doc:
        pytest.skip("fixture carries a DSSE envelope")
    with pytest.raises(MalformedDocumentError, match="no DSSE envelope"):
        Bundle.from_json(doc)


def test_keyless_dsse_bundle_is_read() -> None:
    # A real Sigstore staging bundle (certificate + Rekor v2 entry) carrying DSSE.
    doc = load_file(
        asset("sigstore/bundles/valid-staging/a.dsse.staging-rekor-v2.txt.sigstore.json")
    )
    bundle = Bundle.from_json(doc)
    assert bundle.key_hint is None
    assert bundle.envelope.payload_type == INTOTO_PAYLOAD_TYPE
    assert len(bundle.envelope.signatures) == 1
    assert "tlogEntries" in bundle.verification_material


# ------------------------------------------------------- model-signing interop
@pytest.mark.parametrize(
    "version",
    ["v0.3.1-elliptic-key", "v1.0.0-elliptic-key", "v1.0.1-elliptic-key", "v1.1.0-elliptic-key"],
)
def test_model_signing_key_bundles_verify(version: str) -> None:
    fixtures = asset("model-signing/cli-fixtures")
    public = load_public_key(fixtures / "keys/certificate/signing-key-pub.pem")
    bundle = Bundle.from_json(load_file(fixtures / version / "model.sig"))
    assert bundle.envelope.payload_type == INTOTO_PAYLOAD_TYPE
    assert bundle.envelope.verified_by(public)
    tampered = Envelope(
        bundle.envelope.payload.replace(b"signme-1", b"signme-X"),
        bundle.envelope.payload_type,
        bundle.envelope.signatures,
    )
    assert not tampered.verified_by(public)


def test_model_signing_hint_is_our_keyid() -> None:
    fixtures = asset("model-signing/cli-fixtures")
    public = load_public_key(fixtures / "keys/certificate/signing-key-pub.pem")
    bundle = Bundle.from_json(load_file(fixtures / "v1.1.0-elliptic-key/model.sig"))
    assert bundle.key_hint == public.keyid
    assert public.key_details == "PKIX_ECDSA_P384_SHA_384"


def test_model_signing_bundle_does_not_verify_under_another_key(
    keys: dict[str, KeyPair],
) -> None:
    fixtures = asset("model-signing/cli-fixtures")
    bundle = Bundle.from_json(load_file(fixtures / "v1.1.0-elliptic-key/model.sig"))
    assert not bundle.envelope.verified_by(keys["ml-reviewer"].public)  # also P-384


def test_envelope_errors_name_the_bundle(bundle: Bundle) -> None:
    doc = json.loads(canonical(bundle.to_json()))
    doc["dsseEnvelope"]["signatures"] = []
    with pytest.raises(MalformedDocumentError) as info:
        Bundle.from_json(doc, what="b.json")
    assert info.value.message.startswith("b.json: dsseEnvelope: ")


# ------------------------------------------------------- unsigned material of the wrong type
@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("tlogEntries", 5),
        ("tlogEntries", -1),
        ("tlogEntries", 1.5),
        ("tlogEntries", True),
        ("tlogEntries", "entries"),
        ("tlogEntries", [1]),
        ("tlogEntries", {"logIndex": "1"}),
        ("publicKey", []),
        ("publicKey", {"hint": 3}),
        ("timestampVerificationData", "x"),
    ],
)
def test_verification_material_of_the_wrong_type_is_malformed_not_a_crash(
    bundle: Bundle, keys: dict[str, KeyPair], member: str, value: object
) -> None:
    # verificationMaterial is not signed: anyone can change it in any bundle
    doc = bundle.to_json()
    doc["verificationMaterial"][member] = value
    with pytest.raises(MalformedDocumentError, match=f"verificationMaterial.{member}"):
        Bundle.from_json(doc)
    with pytest.raises(MalformedDocumentError, match=f"verificationMaterial.{member}"):
        verify_bundle(doc, trust=None, key=keys["owner"].public)
