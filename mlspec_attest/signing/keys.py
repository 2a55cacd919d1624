"""Local key pairs: ed25519, ECDSA P-256/P-384 and RSA-3072 (PSS), via ``cryptography``.

Private keys are PKCS#8 PEM (optionally encrypted), public keys SPKI PEM. The
key id is the hex SHA-256 of the public key's SPKI PEM text as re-serialized by
``cryptography`` — the ``publicKey.hint`` convention of OpenSSF model-signing.
A key file holds one PEM block (:func:`one_pem_block`): never two keys, one of them
silently used.
"""

from __future__ import annotations

import hashlib
import os
import re
from enum import StrEnum
from pathlib import Path

from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from msgspec import Struct

from mlspec_attest.errors import KeyLoadError
from mlspec_attest.formats.fsutil import atomic_write
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.limits import MAX_KEY_BYTES, read_limited
from mlspec_attest.signing import schemes
from mlspec_attest.signing.schemes import (
    MIN_RSA_BITS,
    SupportedPrivateKey,
    SupportedPublicKey,
    Use,
)

__all__ = [
    "MIN_RSA_BITS",
    "KeyType",
    "LocalKeySigner",
    "LocalPublicKey",
    "SupportedPrivateKey",
    "SupportedPublicKey",
    "generate_key",
    "load_private_key",
    "load_public_key",
    "one_pem_block",
    "write_key_pair",
]

# A PEM block's label, to name the blocks found (only plain labels are shown).
_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----")


def one_pem_block(data: bytes, source: str, kind: str) -> bytes:
    """``data``, if it holds at most one PEM block and nothing but whitespace after it.

    A file naming one key must not hold two: parsers take the first block of the type
    they look for, so which key counts would depend on the order in the file (and on
    the parser). Explanatory text *before* the block is allowed, as RFC 7468 section 5.2
    allows it (``openssl x509 -text``, GnuTLS ``certtool --pubkey-info``; model-signing's
    own test keys carry it); nothing may follow the block. No block at all is left to
    the PEM parser to refuse in its words.
    """
    # Counted wherever they stand: PEM parsers find a block anywhere in the text.
    blocks = data.count(b"-----BEGIN")
    remedy = f"pass a file that holds one {kind} and nothing after it"
    if blocks > 1:
        labels = ", ".join(m.group(1).decode() for m in _PEM_LABEL.finditer(data))
        raise KeyLoadError(
            f"{source}: {blocks} PEM blocks ({labels}); expected exactly one {kind}",
            remedy=remedy,
        )
    end = data.find(b"-----END ")
    close = data.find(b"-----", end + len(b"-----END ")) if end >= 0 else -1
    if close >= 0 and data[close + 5 :].strip():
        raise KeyLoadError(
            f"{source}: text after the PEM block; expected exactly one {kind} and nothing after it",
            remedy=remedy,
        )
    return data


class KeyType(StrEnum):
    """Key types ``keygen`` can create."""

    ED25519 = "ed25519"
    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    RSA_3072 = "rsa-3072"


class LocalPublicKey(Struct, frozen=True):
    """A public key that verifies signatures made by :class:`LocalKeySigner`."""

    key: SupportedPublicKey

    @classmethod
    def from_pem(cls, pem: bytes | str, *, source: str = "public key") -> LocalPublicKey:
        data = one_pem_block(
            pem.encode() if isinstance(pem, str) else pem, source, "PEM public key"
        )
        try:
            loaded = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm, InternalError) as exc:
            raise KeyLoadError(
                f"{source}: not a PEM public key (SubjectPublicKeyInfo)",
                remedy="pass the .pub file written by `mlspec-attest keygen`",
            ) from exc
        return cls(schemes.check_public(loaded, source))

    def pem(self) -> str:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    @property
    def keyid(self) -> str:
        return hashlib.sha256(self.pem().encode()).hexdigest()

    @property
    def key_details(self) -> str:
        return schemes.key_details(self.key)

    @property
    def algorithm(self) -> str:
        return schemes.algorithm_name(self.key)

    def verify(self, signature: bytes, data: bytes, use: Use = Use.LOCAL) -> bool:
        """Does ``signature`` verify over ``data`` under the schemes ``use`` accepts?"""
        return schemes.verify(self.key, signature, data, use)


class LocalKeySigner(Struct, frozen=True):
    """Signs with a private key held in memory."""

    private_key: SupportedPrivateKey

    @property
    def public_key(self) -> LocalPublicKey:
        return LocalPublicKey(self.private_key.public_key())

    def sign(self, data: bytes) -> bytes:
        return schemes.sign(self.private_key, data)


def _check_private(key: PrivateKeyTypes, source: str) -> SupportedPrivateKey:
    if isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        schemes.check_public(key.public_key(), source)
        return key
    raise KeyLoadError(f"{source}: unsupported private key type {type(key).__name__}")


def load_private_key(path: Path, *, passphrase: bytes | None = None) -> LocalKeySigner:
    """Load a PEM private key (PKCS#8 or traditional) from ``path``."""
    data = read_limited(path, MAX_KEY_BYTES, what=f"key {path}", kind="a key", error=KeyLoadError)
    one_pem_block(data, str(path), "PEM private key")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as exc:
        if passphrase is None:
            raise KeyLoadError(
                f"{path}: private key is encrypted",
                remedy=f"pass {named('passphrase')}",
            ) from exc
        raise KeyLoadError(f"{path}: private key is not encrypted; omit the passphrase") from exc
    except (ValueError, UnsupportedAlgorithm, InternalError) as exc:
        hint = "wrong passphrase or " if passphrase else ""
        raise KeyLoadError(
            f"{path}: cannot load private key ({hint}not a PEM private key)",
            remedy="pass the .key file written by `mlspec-attest keygen`, not the .pub",
        ) from exc
    return LocalKeySigner(_check_private(key, str(path)))


def private_key_der(signer: LocalKeySigner) -> bytes:
    """The signer's key as unencrypted PKCS#8 DER, to hand it to a process of this program
    (the inference log's writer) over a private pipe; never for a file."""
    return signer.private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def signer_from_der(data: bytes, *, source: str = "private key") -> LocalKeySigner:
    """The signer :func:`private_key_der` gave the bytes of."""
    try:
        key = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyLoadError(f"{source}: not a PKCS#8 DER private key") from exc
    return LocalKeySigner(_check_private(key, source))


def load_public_key(path: Path) -> LocalPublicKey:
    """Load an SPKI PEM public key from ``path``."""
    data = read_limited(
        path, MAX_KEY_BYTES, what=f"public key {path}", kind="a key", error=KeyLoadError
    )
    return LocalPublicKey.from_pem(data, source=str(path))


def generate_key(key_type: KeyType) -> LocalKeySigner:
    """Create a fresh private key of ``key_type``."""
    key: SupportedPrivateKey
    if key_type is KeyType.ED25519:
        key = ed25519.Ed25519PrivateKey.generate()
    elif key_type is KeyType.ECDSA_P256:
        key = ec.generate_private_key(ec.SECP256R1())
    elif key_type is KeyType.ECDSA_P384:
        key = ec.generate_private_key(ec.SECP384R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return LocalKeySigner(key)


def write_key_pair(
    signer: LocalKeySigner, out: Path, *, passphrase: bytes | None = None
) -> tuple[Path, Path]:
    """Write ``OUT.key`` (PKCS#8 PEM, mode 0600) and ``OUT.pub`` (SPKI PEM)."""
    key_path = out.with_name(out.name + ".key")
    pub_path = out.with_name(out.name + ".pub")
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    private_pem = signer.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    atomic_write(key_path, private_pem, mode=0o600)
    atomic_write(pub_path, signer.public_key.pem().encode(), mode=0o644)
    os.chmod(key_path, 0o600)
    return key_path, pub_path
