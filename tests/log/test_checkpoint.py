"""C2SP checkpoints and signed notes: signing, verification, refusals."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization

from mlspec_attest.errors import BadInputError, KeyLoadError, SignatureVerificationError
from mlspec_attest.formats.limits import MAX_CHECKPOINT_BYTES, MAX_NOTE_SIGNATURES
from mlspec_attest.log.checkpoint import (
    Checkpoint,
    default_origin,
    parse_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
)
from mlspec_attest.log.merkle import EMPTY_ROOT
from mlspec_attest.log.note import (
    ECDSA,
    ED25519,
    note_key,
    parse_note,
    parse_vkey,
    sign_note,
)
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key

ORIGIN = "example.com/inference-log"
ROOT = hashlib.sha256(b"root").digest()


@pytest.fixture(scope="module")
def ed() -> LocalKeySigner:
    return generate_key(KeyType.ED25519)


@pytest.fixture(scope="module")
def p256() -> LocalKeySigner:
    return generate_key(KeyType.ECDSA_P256)


def _body(size: int = 7, root: bytes = ROOT, origin: str = ORIGIN) -> str:
    return Checkpoint(origin, size, root).body()


def test_body_format() -> None:
    assert _body() == f"{ORIGIN}\n7\n{base64.b64encode(ROOT).decode()}\n"
    assert parse_checkpoint(_body()) == Checkpoint(ORIGIN, 7, ROOT)
    assert parse_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT, ("ext",)).body()).extensions == (
        "ext",
    )


def test_ed25519_note_layout_and_key_id(ed: LocalKeySigner) -> None:
    note = sign_checkpoint(_body(), ed, ORIGIN)
    text, sig_line = note.split("\n\n")
    assert text + "\n" == _body()
    assert sig_line.startswith(f"\u2014 {ORIGIN} ") and sig_line.endswith("\n")
    blob = base64.b64decode(sig_line.split(" ")[2])
    raw = ed.private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    expected_id = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()[:4]
    assert blob[:4] == expected_id
    assert len(blob) == 4 + 64
    assert ed.public_key.verify(blob[4:], _body().encode())
    assert verify_checkpoint(note, ed.public_key, ORIGIN, ORIGIN) == Checkpoint(ORIGIN, 7, ROOT)


def test_vkey_round_trip_and_format(ed: LocalKeySigner, p256: LocalKeySigner) -> None:
    key = note_key(ed.public_key, ORIGIN)
    name, key_id, blob = key.vkey().split("+", 2)
    assert (name, key_id) == (ORIGIN, key.key_id.hex())
    assert base64.b64decode(blob)[0] == ED25519
    assert parse_vkey(key.vkey()) == key
    ec_key = note_key(p256.public_key, ORIGIN)
    der = base64.b64decode(ec_key.vkey().split("+", 2)[2])
    assert der[0] == ECDSA
    assert ec_key.key_id == hashlib.sha256(der[1:]).digest()[:4]
    assert parse_vkey(ec_key.vkey()) == ec_key
    with pytest.raises(KeyLoadError, match="does not match"):
        parse_vkey(f"{ORIGIN}+00000000+{blob}")
    with pytest.raises(KeyLoadError):
        parse_vkey("nonsense")


def test_ecdsa_p256_signs_and_verifies(p256: LocalKeySigner) -> None:
    note = sign_checkpoint(_body(), p256, ORIGIN)
    assert verify_checkpoint(note, p256.public_key, ORIGIN, ORIGIN).size == 7


@pytest.mark.parametrize("key_type", [KeyType.ECDSA_P384, KeyType.RSA_3072])
def test_other_key_types_are_refused_clearly(key_type: KeyType) -> None:
    with pytest.raises(KeyLoadError, match="cannot sign C2SP signed notes") as info:
        sign_checkpoint(_body(), generate_key(key_type), ORIGIN)
    assert "ed25519" in (info.value.remedy or "")


def test_wrong_key_is_refused(ed: LocalKeySigner) -> None:
    note = sign_checkpoint(_body(), ed, ORIGIN)
    other = generate_key(KeyType.ED25519)
    with pytest.raises(SignatureVerificationError, match="no signature by key"):
        verify_checkpoint(note, other.public_key, ORIGIN, ORIGIN)


def test_wrong_origin_is_refused(ed: LocalKeySigner) -> None:
    note = sign_checkpoint(_body(origin="other.example/log"), ed, ORIGIN)
    with pytest.raises(SignatureVerificationError, match="not the log's origin"):
        verify_checkpoint(note, ed.public_key, ORIGIN, ORIGIN)


def test_wrong_key_name_is_refused(ed: LocalKeySigner) -> None:
    note = sign_checkpoint(_body(), ed, "other-name")
    with pytest.raises(SignatureVerificationError, match="no signature by key"):
        verify_checkpoint(note, ed.public_key, ORIGIN, ORIGIN)


@pytest.mark.parametrize(
    ("old", "new"), [("\n7\n", "\n8\n"), (ORIGIN, "evil.example/x"), ("=\n", "=\next\n")]
)
def test_altered_body_is_refused(ed: LocalKeySigner, old: str, new: str) -> None:
    note = sign_checkpoint(_body(), ed, ORIGIN)
    altered = note.replace(old, new, 1)
    assert altered != note
    with pytest.raises(SignatureVerificationError, match="does not verify"):
        verify_checkpoint(altered, ed.public_key, ORIGIN, None)


def test_altered_signature_is_refused(ed: LocalKeySigner) -> None:
    note = sign_checkpoint(_body(), ed, ORIGIN)
    text, line = note.split("\n\n")
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[10] ^= 1
    forged = f"{text}\n\n\u2014 {ORIGIN} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(SignatureVerificationError, match="does not verify"):
        verify_checkpoint(forged, ed.public_key, ORIGIN, ORIGIN)


def test_extra_unknown_signature_is_ignored(ed: LocalKeySigner) -> None:
    witness = generate_key(KeyType.ED25519)
    note = sign_checkpoint(_body(), ed, ORIGIN)
    cosigned = sign_note(_body(), witness, "witness.example/w1")
    extra = cosigned.split("\n\n")[1]
    both = note + extra
    assert len(parse_note(both).signatures) == 2
    assert verify_checkpoint(both, ed.public_key, ORIGIN, ORIGIN).size == 7
    # a line with the trusted name but another key ID is another key: ignored too
    same_name = sign_note(_body(), witness, ORIGIN).split("\n\n")[1]
    assert verify_checkpoint(note + same_name, ed.public_key, ORIGIN, ORIGIN).size == 7
    # ... yet alone it does not count
    with pytest.raises(SignatureVerificationError, match="no signature by key"):
        verify_checkpoint(_body() + "\n" + same_name, ed.public_key, ORIGIN, ORIGIN)


MALFORMED = [
    ("no blank line", lambda n: n.replace("\n\n", "\n")),
    ("no signature", lambda n: n.split("\n\n")[0] + "\n\n"),
    ("no final newline", lambda n: n[:-1]),
    ("control character", lambda n: n.replace("\n7\n", "\n7\r\n")),
    ("hyphen for em dash", lambda n: n.replace("\u2014", "-")),
    ("not base64", lambda n: n[:-5] + "!!!!\n"),
    ("short signature", lambda n: n.split("\n\n")[0] + f"\n\n\u2014 {ORIGIN} AAAA\n"),
    ("space in name", lambda n: n.replace(f"\u2014 {ORIGIN}", "\u2014 a b")),
    ("leading zero size", lambda n: n.replace("\n7\n", "\n07\n")),
    ("empty line in body", lambda n: n.replace("\n7\n", "\n7\n\n")),
    ("short root", lambda n: n.replace(base64.b64encode(ROOT).decode(), "AAAA")),
]


@pytest.mark.parametrize(("desc", "edit"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_notes_are_refused(ed: LocalKeySigner, desc: str, edit: object) -> None:
    note = sign_checkpoint(_body(), ed, ORIGIN)
    bad = edit(note)  # type: ignore[operator]
    with pytest.raises((BadInputError, SignatureVerificationError)):
        verify_checkpoint(bad, ed.public_key, ORIGIN, ORIGIN)


def test_invalid_utf8_is_refused(ed: LocalKeySigner) -> None:
    note = sign_checkpoint(_body(), ed, ORIGIN).encode()
    with pytest.raises(BadInputError, match="not valid UTF-8"):
        verify_checkpoint(note.replace(b"\n7\n", b"\n7\xff\n"), ed.public_key, ORIGIN, ORIGIN)


def test_malformed_bodies_are_refused() -> None:
    for body in ["a\n1\n", "a\n-1\n" + base64.b64encode(ROOT).decode() + "\n", "a\n1\nxx\n", ""]:
        with pytest.raises(BadInputError):
            parse_checkpoint(body)
    with pytest.raises(BadInputError, match="tree size"):
        parse_checkpoint(f"a\n{2**63}\n{base64.b64encode(ROOT).decode()}\n")


def test_bounds(ed: LocalKeySigner) -> None:
    note = sign_checkpoint(_body(), ed, ORIGIN)
    line = note.split("\n\n")[1]
    many = note + line * MAX_NOTE_SIGNATURES
    with pytest.raises(BadInputError, match="more than the limit"):
        verify_checkpoint(many, ed.public_key, ORIGIN, ORIGIN)
    huge = "x" * (MAX_CHECKPOINT_BYTES + 1)
    with pytest.raises(BadInputError, match="larger than 1 MiB"):
        verify_checkpoint(huge, ed.public_key, ORIGIN, ORIGIN)


def test_default_origin_is_a_valid_key_name(ed: LocalKeySigner) -> None:
    origin = default_origin("my model+v2", "ab" * 32)
    assert origin == "mlspec-attest/my-model-v2/" + "ab" * 8
    note = sign_checkpoint(_body(origin=origin), ed, origin)
    assert verify_checkpoint(note, ed.public_key, origin, origin).origin == origin
    with pytest.raises(BadInputError, match="not a signed-note key name"):
        sign_checkpoint(_body(), ed, "bad name")
