"""Signed notes against other implementations: Go's reference vectors (Ed25519) and
sigstore-python's Rekor checkpoint verifier (ECDSA P-256)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from mlspec_attest.errors import BadInputError, SignatureVerificationError
from mlspec_attest.log.checkpoint import Checkpoint, sign_checkpoint
from mlspec_attest.log.note import open_note, parse_note, parse_vkey, sign_note
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key

# From golang.org/x/mod sumdb/note/note_test.go (commit 02c991387e35f9e4c0a9b7ce137717055f8d716d),
# copied byte-identical. Copyright 2019 The Go Authors; BSD-3-Clause license
# (https://github.com/golang/mod/blob/master/LICENSE).
SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
WANT = """If you think cryptography is the answer to your problem,
then you don't know what your problem is.

— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=
"""


def _peter() -> LocalKeySigner:
    seed = base64.b64decode(SKEY.split("+", 4)[4])[1:]
    return LocalKeySigner(ed25519.Ed25519PrivateKey.from_private_bytes(seed))


def test_go_verifier_key_parses_with_its_key_id() -> None:
    key = parse_vkey(VKEY)
    assert (key.name, key.key_id.hex(), key.vkey()) == ("PeterNeumann", "c74f20a3", VKEY)
    assert parse_vkey(ENOCH_VKEY).key_id.hex() == "af0cfe78"
    for bad in [
        VKEY[:-1],
        VKEY.replace("c74f20a3", "c74f20a4"),
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ]:
        with pytest.raises(Exception):  # noqa: B017  (KeyLoadError or a base64 error, as Go's NewVerifier)
            parse_vkey(bad)


def test_signing_gives_exactly_gos_signed_note() -> None:
    peter = _peter()
    assert sign_note(TEXT, peter, "PeterNeumann") == WANT
    assert parse_vkey(VKEY).public_key.pem() == peter.public_key.pem()


def test_opening_gos_notes() -> None:
    peter, enoch = parse_vkey(VKEY), parse_vkey(ENOCH_VKEY)
    assert open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, peter).text == TEXT
    assert open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, enoch).text == TEXT
    with pytest.raises(BadInputError, match="more than the limit"):
        open_note(TEXT + "\n" + PETER_SIG * 101, peter)
    with pytest.raises(SignatureVerificationError, match="does not verify"):
        open_note(TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], peter)
    bad_messages = [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT
        + "\n"
        + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    ]
    for msg in bad_messages:
        with pytest.raises(BadInputError):
            open_note(msg, peter)
    with pytest.raises(BadInputError, match="UTF-8"):
        parse_note(b"\xff" + (TEXT + "\n" + PETER_SIG).encode())


def test_sigstore_pythons_checkpoint_verifier_accepts_our_p256_checkpoints() -> None:
    from sigstore._internal.rekor.checkpoint import SignedCheckpoint
    from sigstore._internal.trust import Keyring
    from sigstore._utils import KeyID
    from sigstore_models.common import v1 as common_v1

    key = generate_key(KeyType.ECDSA_P256)
    der = key.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    root = hashlib.sha256(b"tree").digest()
    note = sign_checkpoint(Checkpoint("example.com/log", 42, root), key, "example.com/log")
    keyring = Keyring(
        [
            common_v1.PublicKey(
                raw_bytes=base64.b64encode(der),
                key_details=common_v1.PublicKeyDetails.PKIX_ECDSA_P256_SHA_256,
            )
        ]
    )
    signed = SignedCheckpoint.from_text(note)
    signed.signed_note.verify(keyring, KeyID(hashlib.sha256(der).digest()))
    assert (signed.checkpoint.origin, signed.checkpoint.log_size) == ("example.com/log", 42)
    assert signed.checkpoint.log_hash == root.hex()
    forged = SignedCheckpoint.from_text(note.replace("\n42\n", "\n43\n"))
    with pytest.raises(Exception, match="invalid signature"):
        forged.signed_note.verify(keyring, KeyID(hashlib.sha256(der).digest()))
