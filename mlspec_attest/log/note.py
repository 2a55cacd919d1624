"""C2SP signed notes (https://c2sp.org/signed-note): text, a blank line, signature lines.

::

    <text, ending in a newline>
    <empty line>
    — <key name> <base64(4-byte key ID || signature)>
    ...

The signed-note specification assigns the signature types; two of them fit the keys
mlspec-attest makes (:mod:`mlspec_attest.signing.keys`):

* ``0x01`` Ed25519 over the note text; key ID = ``SHA-256(name || 0x0A || 0x01 ||
  32-byte public key)[:4]``; verifier key ``<name>+<key ID hex>+<base64(0x01 || key)>``.
* ``0x02`` ECDSA as the transparency-dev witness (and Rekor) sign notes: ASN.1 DER
  ECDSA over SHA-256 of the text; key ID = ``SHA-256(DER SubjectPublicKeyInfo)[:4]``;
  verifier key ``<name>+<key ID hex>+<base64(0x02 || DER SPKI)>``. Only P-256 is
  offered: the type hashes with SHA-256 on every curve, and this package's signature
  scheme registry signs P-384 and P-521 with their own hashes.

Any other key (RSA, ECDSA P-384/P-521) is refused with the remedy to make an Ed25519
key. Verification follows the spec and Go's ``golang.org/x/mod/sumdb/note``: a
bounded note (:data:`~mlspec_attest.formats.limits.MAX_CHECKPOINT_BYTES`, at most
:data:`~mlspec_attest.formats.limits.MAX_NOTE_SIGNATURES` signatures), exactly the
grammar, signatures by unknown keys ignored, a failing signature by the trusted key
rejects the note, and at least one signature by it is required.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from msgspec import Struct

from mlspec_attest.errors import BadInputError, KeyLoadError, SignatureVerificationError
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.limits import (
    MAX_CHECKPOINT_BYTES,
    MAX_KEY_BYTES,
    MAX_NOTE_SIGNATURES,
    read_limited,
    too_large,
)
from mlspec_attest.formats.signer import PublicKeyVerifier, Signer
from mlspec_attest.signing.keys import LocalPublicKey

ED25519 = 0x01
ECDSA = 0x02
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_SPACES = re.compile(r"\s", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class NoteKey(Struct, frozen=True):
    """A public key as signed notes name it: its name, type, key ID and encoding."""

    name: str
    type: int
    encoded: bytes  # the public key as the key ID hashes it (raw Ed25519, or DER SPKI)
    public_key: LocalPublicKey

    @property
    def key_id(self) -> bytes:
        if self.type == ED25519:
            return hashlib.sha256(self.name.encode() + b"\n\x01" + self.encoded).digest()[:4]
        return hashlib.sha256(self.encoded).digest()[:4]

    def vkey(self) -> str:
        """The verifier key text: ``<name>+<key ID hex>+<base64(type || key)>``."""
        blob = base64.b64encode(bytes([self.type]) + self.encoded).decode()
        return f"{self.name}+{self.key_id.hex()}+{blob}"


def check_key_name(name: str) -> str:
    """``name`` if it is a valid key name (non-empty, no Unicode space, no ``+``)."""
    if not isinstance(name, str) or not name or _SPACES.search(name) or "+" in name:
        raise BadInputError(
            f"key name {name!r} is not a signed-note key name (it must be non-empty, "
            "without spaces or '+')",
            remedy="name the log key like a schema-less URL, e.g. example.com/inference-log",
        )
    if _CONTROL.search(name) or "\n" in name:
        raise BadInputError(f"key name {name!r} contains a control character")
    return name


def note_key(public_key: PublicKeyVerifier | LocalPublicKey, name: str) -> NoteKey:
    """The signed-note key of ``public_key`` under ``name``; KeyLoadError for a key type
    signed notes cannot carry here."""
    check_key_name(name)
    local = (
        public_key
        if isinstance(public_key, LocalPublicKey)
        else LocalPublicKey.from_pem(public_key.pem(), source="log signing key")
    )
    key = local.key
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return NoteKey(name, ED25519, raw, local)
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return NoteKey(name, ECDSA, der, local)
    raise KeyLoadError(
        f"a {local.algorithm} key cannot sign C2SP signed notes here: the format's "
        "signature types are Ed25519 (0x01) and ECDSA with SHA-256 (0x02, used for P-256)",
        remedy=f"create an Ed25519 key with `{named('keygen', type='ed25519')}`",
    )


def parse_vkey(text: str) -> NoteKey:
    """A verifier key ``<name>+<key ID hex>+<base64(type || key)>``, its key ID checked."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise KeyLoadError("not a signed-note verifier key (<name>+<8 hex>+<base64>)")
    try:
        blob = base64.b64decode(parts[2], validate=True)
    except binascii.Error as exc:
        raise KeyLoadError("verifier key: the key is not valid base64") from exc
    if len(blob) == 33 and blob[0] == ED25519:
        public = ed25519.Ed25519PublicKey.from_public_bytes(blob[1:])
    elif len(blob) > 1 and blob[0] == ECDSA:
        try:
            loaded = serialization.load_der_public_key(blob[1:])
        except ValueError as exc:
            raise KeyLoadError("verifier key: not a DER public key") from exc
        if not isinstance(loaded, ec.EllipticCurvePublicKey):
            raise KeyLoadError("verifier key: type 0x02 needs an ECDSA key")
        public = loaded  # type: ignore[assignment]
    else:
        raise KeyLoadError("verifier key: an unsupported signature type or key length")
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = note_key(LocalPublicKey.from_pem(pem, source="verifier key"), parts[0])
    if key.key_id.hex() != parts[1] or key.encoded != blob[1:]:
        raise KeyLoadError(f"verifier key: key ID {parts[1]} does not match the key")
    return key


def load_verifier(path: Path) -> LocalPublicKey | NoteKey:
    """A log's public key from ``path``: SPKI PEM, or a signed-note verifier key (the
    ``log.vkey`` form, which also names the key)."""
    data = read_limited(
        path, MAX_KEY_BYTES, what=f"public key {path}", kind="a key", error=KeyLoadError
    )
    if data.lstrip().startswith(b"-----BEGIN"):
        return LocalPublicKey.from_pem(data, source=str(path))
    try:
        return parse_vkey(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise KeyLoadError(f"{path}: neither a PEM public key nor a verifier key") from exc


def sign_note(text: str, signer: Signer, key_name: str) -> str:
    """``text`` signed by ``signer`` as ``key_name``: the whole signed note."""
    _check_text(text)
    key = note_key(signer.public_key, key_name)
    signature = signer.sign(text.encode())
    blob = base64.b64encode(key.key_id + signature).decode()
    note = f"{text}\n{SIGNATURE_PREFIX}{key_name} {blob}\n"
    if len(note.encode()) > MAX_CHECKPOINT_BYTES:
        raise BadInputError(too_large("signed note", MAX_CHECKPOINT_BYTES, "a signed note"))
    return note


def _check_text(text: str) -> None:
    if not text.endswith("\n") or "\n\n" in text or text.startswith("\n"):
        raise BadInputError("note text must be non-empty lines, each ending in a newline")
    if _CONTROL.search(text):
        raise BadInputError("note text must not contain control characters")


class NoteSignature(Struct, frozen=True):
    name: str
    key_id: bytes
    signature: bytes


class Note(Struct, frozen=True):
    """A parsed (not yet verified) signed note."""

    text: str
    signatures: tuple[NoteSignature, ...]


def parse_note(data: bytes | str, *, what: str = "signed note") -> Note:
    """The grammar of a signed note, checked exactly and within its bounds."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_CHECKPOINT_BYTES:
        raise BadInputError(too_large(what, MAX_CHECKPOINT_BYTES, "a signed note"))
    try:
        message = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{what}: not valid UTF-8") from exc
    if _CONTROL.search(message):
        raise BadInputError(f"{what}: contains a control character other than newline")
    split = message.rfind("\n\n")
    if split < 0:
        raise BadInputError(f"{what}: no blank line between the text and the signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block or not block.endswith("\n"):
        raise BadInputError(f"{what}: no signature lines, or the last one has no newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_NOTE_SIGNATURES:
        raise BadInputError(
            f"{what}: {len(lines)} signatures, more than the limit of {MAX_NOTE_SIGNATURES}"
        )
    return Note(text, tuple(_signature(line, what) for line in lines))


def _signature(line: str, what: str) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise BadInputError(f"{what}: a signature line does not start with '\u2014 '")
    name, space, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not space or not name or _SPACES.search(name) or "+" in name:
        raise BadInputError(f"{what}: a signature line has no valid key name")
    try:
        sig = binascii.a2b_base64(blob.encode(), strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInputError(f"{what}: signature by {name!r} is not valid base64") from exc
    if len(sig) < 5:
        raise BadInputError(f"{what}: signature by {name!r} is too short")
    return NoteSignature(name, sig[:4], sig[4:])


def open_note(data: bytes | str, key: NoteKey, *, what: str = "signed note") -> Note:
    """The note, once a signature by ``key`` verifies over its text.

    Signatures by other keys (another name or key ID) are ignored; a signature by
    ``key`` that fails rejects the note; none by ``key``, or more than one, rejects it too.
    """
    note = parse_note(data, what=what)
    text = note.text.encode()
    mine = [s for s in note.signatures if s.name == key.name and s.key_id == key.key_id]
    if not mine:
        raise SignatureVerificationError(
            f"{what}: no signature by key {key.name!r} (key ID {key.key_id.hex()})",
            remedy="verify with the log's public key and key name",
        )
    if len(mine) > 1:  # no signer signs one text twice; each would cost a verification
        raise SignatureVerificationError(
            f"{what}: {len(mine)} signatures by key {key.name!r}: a note has one by each key"
        )
    if not key.public_key.verify(mine[0].signature, text):
        raise SignatureVerificationError(
            f"{what}: the signature by {key.name!r} does not verify (the note was "
            "altered, or signed by another key)"
        )
    return note
