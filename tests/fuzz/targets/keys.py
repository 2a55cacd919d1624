"""signing.keys: PEM public keys (SPKI) and private keys (PKCS#8, traditional, encrypted).

Input: a mode byte (0: LocalPublicKey.from_pem, 1: load_public_key from a
file, 2: load_private_key without passphrase, 3: with passphrase ``fuzz``)
and the PEM bytes. Checks: only KeyLoadError (bad input); a loaded key
has a key id and its PEM loads back to the same key; a loaded private key
signs and its public key verifies the signature.
"""

from __future__ import annotations

from mlspec_attest.signing.keys import LocalPublicKey, load_private_key, load_public_key

from ._harness import input_file, main, parse_or_none, split_mode


def check_public(key: LocalPublicKey) -> None:
    assert len(key.keyid) == 64
    assert LocalPublicKey.from_pem(key.pem()).keyid == key.keyid
    assert not key.verify(b"\x00" * 64, b"message")
    key.key_details  # noqa: B018 - must not raise


def TestOneInput(data: bytes) -> None:
    mode, body = split_mode(data, 4)
    if mode == 0:
        key = parse_or_none(LocalPublicKey.from_pem, body)
    elif mode == 1:
        key = parse_or_none(load_public_key, input_file(body, "key.pub"))
    else:
        passphrase = b"fuzz" if mode == 3 else None
        signer = parse_or_none(load_private_key, input_file(body, "key.key"), passphrase=passphrase)
        if signer is None:
            return
        key = signer.public_key
        assert key.verify(signer.sign(b"message"), b"message")
    if key is not None:
        check_public(key)


if __name__ == "__main__":
    main(TestOneInput)
