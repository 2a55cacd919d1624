"""DSSE v1: the PAE bytes, signing and verifying with every key type, the JSON envelope."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.dsse import (
    INTOTO_PAYLOAD_TYPE,
    Envelope,
    EnvelopeSignature,
    b64decode_strict,
    pae,
)
from mlspec_attest.signing.keys import KeyType

from .support import KeyPair


# ------------------------------------------------------------------ PAE
def test_pae_spec_example() -> None:
    # The worked example of the DSSE v1 protocol document.
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_in_toto_type_and_empty_payload() -> None:
    assert pae(INTOTO_PAYLOAD_TYPE, b"") == b"DSSEv1 28 application/vnd.in-toto+json 0 "


def test_pae_lengths_are_byte_lengths() -> None:
    # LEN is the number of bytes (UTF-8), not of characters.
    assert pae("ü", "é".encode()) == b"DSSEv1 2 \xc3\xbc 2 \xc3\xa9"


@given(st.text(max_size=40), st.binary(max_size=200))
def test_pae_structure(payload_type: str, payload: bytes) -> None:
    t = payload_type.encode()
    expected = b"DSSEv1 " + str(len(t)).encode() + b" " + t + b" "
    expected += str(len(payload)).encode() + b" " + payload
    assert pae(payload_type, payload) == expected


# ---------------------------------------------------------- sign / verify
@pytest.mark.parametrize("key_type", list(KeyType))
def test_sign_and_verify_each_key_type(
    key_of_type: dict[KeyType, KeyPair], key_type: KeyType
) -> None:
    pair = key_of_type[key_type]
    envelope = Envelope.sign(b'{"a":1}', INTOTO_PAYLOAD_TYPE, [pair.signer])
    assert envelope.verified_by(pair.public)
    [sig] = envelope.signatures
    assert sig.keyid == pair.keyid
    # the signature really is over PAE(type, payload), checked with the raw key
    assert pair.public.verify(sig.sig, pae(INTOTO_PAYLOAD_TYPE, b'{"a":1}'))
    assert not pair.public.verify(sig.sig, b'{"a":1}')


@pytest.mark.parametrize("key_type", list(KeyType))
def test_tampered_payload_fails(key_of_type: dict[KeyType, KeyPair], key_type: KeyType) -> None:
    pair = key_of_type[key_type]
    envelope = Envelope.sign(b'{"a":1}', INTOTO_PAYLOAD_TYPE, [pair.signer])
    forged = Envelope(b'{"a":2}', envelope.payload_type, envelope.signatures)
    assert not forged.verified_by(pair.public)


def test_tampered_payload_type_fails(keys: dict[str, KeyPair]) -> None:
    envelope = Envelope.sign(b"{}", INTOTO_PAYLOAD_TYPE, [keys["owner"].signer])
    forged = Envelope(envelope.payload, "application/json", envelope.signatures)
    assert not forged.verified_by(keys["owner"].public)


def test_wrong_key_fails(keys: dict[str, KeyPair]) -> None:
    envelope = Envelope.sign(b"{}", INTOTO_PAYLOAD_TYPE, [keys["owner"].signer])
    assert not envelope.verified_by(keys["intruder"].public)
    assert not envelope.verified_by(keys["ml-reviewer"].public)


def test_keyid_is_only_a_hint(keys: dict[str, KeyPair]) -> None:
    envelope = Envelope.sign(b"{}", INTOTO_PAYLOAD_TYPE, [keys["owner"].signer])
    lying = Envelope(
        envelope.payload,
        envelope.payload_type,
        (EnvelopeSignature(envelope.signatures[0].sig, keys["intruder"].keyid),),
    )
    assert lying.verified_by(keys["owner"].public)
    assert not lying.verified_by(keys["intruder"].public)


def test_multiple_signers(keys: dict[str, KeyPair]) -> None:
    envelope = Envelope.sign(
        b"{}", INTOTO_PAYLOAD_TYPE, [keys["owner"].signer, keys["ml-reviewer"].signer]
    )
    assert len(envelope.signatures) == 2
    assert envelope.verified_by(keys["owner"].public)
    assert envelope.verified_by(keys["ml-reviewer"].public)


def test_no_keyid_hint(keys: dict[str, KeyPair]) -> None:
    envelope = Envelope.sign(b"{}", INTOTO_PAYLOAD_TYPE, [keys["owner"].signer], keyid_hint=False)
    assert envelope.signatures[0].keyid == ""


def test_ed25519_signatures_are_deterministic(keys: dict[str, KeyPair]) -> None:
    one = Envelope.sign(b"{}", INTOTO_PAYLOAD_TYPE, [keys["owner"].signer])
    two = Envelope.sign(b"{}", INTOTO_PAYLOAD_TYPE, [keys["owner"].signer])
    assert one == two


# ----------------------------------------------------------------- JSON
def test_envelope_json_round_trip(keys: dict[str, KeyPair]) -> None:
    envelope = Envelope.sign(b'{"x":"y"}', INTOTO_PAYLOAD_TYPE, [keys["owner"].signer])
    doc = envelope.to_json()
    assert set(doc) == {"payload", "payloadType", "signatures"}
    assert base64.b64decode(doc["payload"]) == b'{"x":"y"}'
    assert doc["payloadType"] == INTOTO_PAYLOAD_TYPE
    assert doc["signatures"] == [
        {"sig": base64.b64encode(envelope.signatures[0].sig).decode(), "keyid": keys["owner"].keyid}
    ]
    again = Envelope.from_json(doc)
    assert again == envelope
    assert again.verified_by(keys["owner"].public)


def test_url_safe_base64_is_accepted(keys: dict[str, KeyPair]) -> None:
    payload = b"\xfb\xff\xfe" * 10  # encodes with '+' and '/' in standard base64
    envelope = Envelope.sign(payload, INTOTO_PAYLOAD_TYPE, [keys["owner"].signer])
    doc = envelope.to_json()
    doc["payload"] = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    assert "+" in base64.b64encode(payload).decode() or "/" in base64.b64encode(payload).decode()
    assert Envelope.from_json(doc).payload == payload


SIG = [{"sig": "AA=="}]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param([], "expected a JSON object", id="not-an-object"),
        pytest.param({"payload": "e30=", "payloadType": "t"}, "no signatures", id="no-signatures"),
        pytest.param(
            {"payload": "e30=", "payloadType": "t", "signatures": []},
            "no signatures",
            id="empty-signatures",
        ),
        pytest.param({"payload": "e30=", "signatures": SIG}, "missing payloadType", id="no-type"),
        pytest.param(
            {"payload": "e30=", "payloadType": "", "signatures": SIG},
            "missing payloadType",
            id="empty-type",
        ),
        pytest.param(
            {"payload": 5, "payloadType": "t", "signatures": SIG}, "base64", id="payload-not-str"
        ),
        pytest.param(
            {"payload": "!!!", "payloadType": "t", "signatures": SIG},
            "not valid base64",
            id="payload-only-invalid-chars",
        ),
        pytest.param(
            {"payload": "e30=!!", "payloadType": "t", "signatures": SIG},
            "not valid base64",
            id="payload-trailing-garbage",
        ),
        pytest.param(
            {"payload": "e3 0=", "payloadType": "t", "signatures": SIG},
            "not valid base64",
            id="payload-embedded-space",
        ),
        pytest.param(
            {"payload": "e30=", "payloadType": "t", "signatures": ["AA=="]},
            "not an object",
            id="signature-not-object",
        ),
        pytest.param(
            {"payload": "e30=", "payloadType": "t", "signatures": [{"sig": "AA==", "keyid": 3}]},
            "keyid",
            id="keyid-not-str",
        ),
        pytest.param(
            {"payload": "e30=", "payloadType": "t", "signatures": [{}]}, "base64", id="no-sig"
        ),
        pytest.param(
            {"payload": "e30=", "payloadType": "t", "signatures": SIG, "extra": 1},
            "unknown field",
            id="unknown-field",
        ),
    ],
)
def test_malformed_envelopes_are_refused(doc: object, message: str) -> None:
    with pytest.raises(MalformedDocumentError, match=message):
        Envelope.from_json(doc)


def test_b64decode_strict() -> None:
    assert b64decode_strict("aGk=", "x") == b"hi"
    assert b64decode_strict("aGk", "x") == b"hi"  # unpadded (URL-safe form)
    with pytest.raises(MalformedDocumentError, match="x: expected a base64 string"):
        b64decode_strict(None, "x")


# ------------------------------------------------------- bounds and reasons, to the byte
# Mutation testing (docs/testing.md) showed the size bound and the messages unpinned.


@pytest.mark.parametrize(
    ("value", "max_bytes", "decoded"),
    [
        ("AAAA", 3, b"\0\0\0"),  # 4 characters: the most that 3 bytes may take
        ("AAAAAA==", 5, b"\0\0\0\0"),  # 8 characters: the most that 5 bytes may take
        ("AAAAAA==", 4, b"\0\0\0\0"),
    ],
)
def test_size_bound_admits_up_to_its_limit(value: str, max_bytes: int, decoded: bytes) -> None:
    assert b64decode_strict(value, "x", max_bytes=max_bytes) == decoded


@pytest.mark.parametrize(("value", "max_bytes"), [("AAAAA", 3), ("AAAAAA==", 3), ("A" * 12, 5)])
def test_size_bound_refuses_before_decoding(value: str, max_bytes: int) -> None:
    with pytest.raises(MalformedDocumentError) as info:
        b64decode_strict(value, "x", max_bytes=max_bytes)
    assert info.value.message == f"x: larger than {max_bytes} bytes once decoded"


def test_envelope_payload_bound() -> None:
    limit = 32 * 1024 * 1024
    doc = {"payloadType": "t", "payload": "A" * ((limit + 2) // 3 * 4 + 4), "signatures": [{"sig": "AA=="}]}  # fmt: skip
    with pytest.raises(MalformedDocumentError) as info:
        Envelope.from_json(doc)
    assert info.value.message == "DSSE envelope: payload: larger than 32 MiB once decoded"


def test_envelope_signature_count_bound() -> None:
    sigs = [{"sig": base64.b64encode(bytes([i])).decode()} for i in range(64)]
    doc = {"payloadType": "t", "payload": "", "signatures": sigs}
    assert len(Envelope.from_json(doc).signatures) == 64
    with pytest.raises(MalformedDocumentError) as info:
        Envelope.from_json({**doc, "signatures": [*sigs, {"sig": "AA=="}]})
    assert info.value.message == "DSSE envelope: 65 signatures, more than the 64 allowed"


def test_envelope_signature_fields() -> None:
    doc = {"payloadType": "t", "payload": "", "signatures": [{"sig": "AA=="}]}
    assert Envelope.from_json(doc).signatures[0].keyid == ""
    with pytest.raises(MalformedDocumentError) as info:
        Envelope.from_json({**doc, "signatures": [{"sig": "AA=="}, {"sig": "%%"}]}, what="e")
    assert info.value.message == "e: sig 1: not valid base64"
    # URL-safe alphabet, but no valid length: refused by the URL-safe decoder too
    with pytest.raises(MalformedDocumentError) as info:
        b64decode_strict("AAAAA", "u")
    assert info.value.message == "u: not valid base64"
    with pytest.raises(MalformedDocumentError) as info:
        Envelope.from_json([])
    assert info.value.message == "DSSE envelope: expected a JSON object"
