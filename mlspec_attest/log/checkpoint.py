"""C2SP tlog checkpoints (https://c2sp.org/tlog-checkpoint): a log's signed tree head.

The body is three lines (and optional, non-empty extension lines)::

    <origin>
    <tree size, decimal, no leading zeros>
    <base64 of the RFC 6962 root hash>

signed as a C2SP signed note (:mod:`.note`). The log's key name should be its origin
(the spec's recommendation and this package's default).
"""

from __future__ import annotations

import base64
import binascii
import re

from msgspec import Struct

from mlspec_attest.errors import BadInputError, SignatureVerificationError
from mlspec_attest.formats.signer import PublicKeyVerifier, Signer
from mlspec_attest.log.merkle import HASH_SIZE
from mlspec_attest.log.note import NoteKey, check_key_name, note_key, open_note, sign_note
from mlspec_attest.signing.keys import LocalPublicKey

_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
_ORIGIN_PART = re.compile(r"[^A-Za-z0-9._-]+")
MAX_TREE_SIZE = 2**63 - 1


class Checkpoint(Struct, frozen=True):
    """A checkpoint body: origin, tree size, root hash, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        """The note text (every line ending in a newline)."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "".join(f"{line}\n" for line in (*lines, *self.extensions))


def default_origin(model: str, vsa_digest: str) -> str:
    """``mlspec-attest/<model>/<first 16 hex of the VSA digest>`` (characters other than
    letters, digits and ``._-`` in the model name become ``-``)."""
    name = _ORIGIN_PART.sub("-", model).strip("-") or "model"
    return f"mlspec-attest/{name}/{vsa_digest[:16]}"


def check_origin(origin: str) -> str:
    """An origin usable as this log's (and so as its key name): a valid key name."""
    return check_key_name(origin)


def parse_checkpoint(body: str, *, what: str = "checkpoint") -> Checkpoint:
    """Parse a checkpoint body (the note text), exactly as tlog-checkpoint specifies."""
    if not body.endswith("\n"):
        raise BadInputError(f"{what}: the body does not end in a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise BadInputError(f"{what}: needs origin, tree size and root hash lines, none empty")
    origin, size_text, root_text, *extensions = lines
    if not _SIZE.fullmatch(size_text) or int(size_text) > MAX_TREE_SIZE:
        raise BadInputError(
            f"{what}: tree size {size_text[:32]!r} is not a decimal number without leading zeros"
        )
    try:
        root = binascii.a2b_base64(root_text.encode(), strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInputError(f"{what}: root hash is not valid base64") from exc
    if len(root) != HASH_SIZE or base64.b64encode(root).decode() != root_text:
        raise BadInputError(f"{what}: root hash is not the base64 of {HASH_SIZE} bytes")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(body: Checkpoint | str, signer: Signer, key_name: str) -> str:
    """The signed note of checkpoint ``body`` (a :class:`Checkpoint` or its text)."""
    text = body.body() if isinstance(body, Checkpoint) else body
    parse_checkpoint(text)
    return sign_note(text, signer, key_name)


def verify_checkpoint(
    text: bytes | str,
    public_key: PublicKeyVerifier | LocalPublicKey | NoteKey,
    key_name: str,
    origin: str | None,
    *,
    what: str = "checkpoint",
) -> Checkpoint:
    """The checkpoint in signed note ``text``, once signed by ``public_key`` as
    ``key_name`` and (when ``origin`` is given) of that origin.

    Raises :class:`~mlspec_attest.errors.BadInputError` for a note or body that breaks
    the grammar, :class:`~mlspec_attest.errors.SignatureVerificationError` for a
    missing or failing signature or another origin.
    """
    key = public_key if isinstance(public_key, NoteKey) else note_key(public_key, key_name)
    if key.name != key_name:
        raise SignatureVerificationError(f"{what}: the key is named {key.name!r}, not {key_name!r}")
    note = open_note(text, key, what=what)
    checkpoint = parse_checkpoint(note.text, what=what)
    if origin is not None and checkpoint.origin != origin:
        raise SignatureVerificationError(
            f"{what}: origin {checkpoint.origin!r} is not the log's origin {origin!r}",
            remedy="verify with the origin this log was written under, or use the log it names",
        )
    return checkpoint
