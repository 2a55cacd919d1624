"""Proofs a third party can check offline: a record's inclusion, two checkpoints' consistency.

An inclusion proof is one JSON document: the record (its exact CBOR, base64, and its
fields), its leaf index, the latest signed checkpoint (the C2SP note, verbatim), and
the RFC 6962 audit path. :func:`verify_inclusion` needs nothing but that document and
the log's public key: the record decodes strictly, its leaf hash and path give the
checkpoint's root, the checkpoint is signed by the key, and the record's seq is its
leaf index. A consistency proof carries the two signed checkpoints and the RFC 6962
consistency path between them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from msgspec import Struct

from mlspec_attest.errors import (
    BadInputError,
    MalformedDocumentError,
    UsageError,
    VerificationError,
)
from mlspec_attest.formats.dsse import b64decode_strict
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.limits import MAX_CHECKPOINT_BYTES, MAX_LOG_RECORD_BYTES, read_limited
from mlspec_attest.formats.signer import PublicKeyVerifier
from mlspec_attest.log import merkle
from mlspec_attest.log.checkpoint import Checkpoint, parse_checkpoint, verify_checkpoint
from mlspec_attest.log.files import LATEST, RECORDS, numbered
from mlspec_attest.log.note import NoteKey, parse_note
from mlspec_attest.log.record import InferenceRecord, RecordError, decode_record
from mlspec_attest.log.scan import RecordScanner, Scanned
from mlspec_attest.signing.keys import LocalPublicKey

INCLUSION_SCHEMA = "https://mlspec-attest.dev/log-inclusion-proof/v1"
CONSISTENCY_SCHEMA = "https://mlspec-attest.dev/log-consistency-proof/v1"
AnyKey = PublicKeyVerifier | LocalPublicKey | NoteKey


class ProofError(VerificationError):
    """A proof that does not hold, or a log that cannot give one."""


class InclusionProof(Struct, frozen=True):
    """One record, where it is in the tree, and the signed tree head it is proven under."""

    record: InferenceRecord
    record_cbor: bytes
    index: int
    checkpoint: Checkpoint
    note: str  # the signed checkpoint, verbatim
    path: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": INCLUSION_SCHEMA,
            "requestId": self.record.request_id,
            "leafIndex": self.index,
            "treeSize": self.checkpoint.size,
            "rootHash": self.checkpoint.root.hex(),
            "leafHash": merkle.leaf_hash(self.record_cbor).hex(),
            "auditPath": [h.hex() for h in self.path],
            "checkpoint": self.note,
            "recordCbor": base64.b64encode(self.record_cbor).decode(),
            "record": self.record.to_json(),
        }


def _read_note(path: Path) -> str:
    data = read_limited(path, MAX_CHECKPOINT_BYTES, what=str(path), kind="a checkpoint")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path}: not valid UTF-8") from exc


def _latest(
    directory: Path, key: AnyKey | None, key_name: str | None, origin: str | None
) -> tuple[str, Checkpoint]:
    """The latest checkpoint's note and body; verified when a key is given."""
    text = _read_note(directory / LATEST)
    return text, _open_checkpoint(text, key, key_name, origin, f"{directory}/{LATEST}")


def _open_checkpoint(
    text: str, key: AnyKey | None, key_name: str | None, origin: str | None, what: str
) -> Checkpoint:
    if key is None:
        return parse_checkpoint(parse_note(text, what=what).text, what=what)
    name = key.name if isinstance(key, NoteKey) else key_name or origin
    if name is None:
        name = parse_checkpoint(parse_note(text, what=what).text, what=what).origin
    return verify_checkpoint(text, key, name, origin, what=what)


def _scan_records(directory: Path) -> Iterator[Scanned]:
    """The items of ``records.cbor``; a file that cannot be read (a directory, a FIFO,
    a device) is bad input, as the audit reports it unreadable."""
    try:
        yield from RecordScanner(directory / RECORDS)
    except OSError as exc:
        raise BadInputError(f"cannot read {directory / RECORDS}: {exc.strerror or exc}") from exc


def _leaves(
    directory: Path, limit: int, request_id: str | None = None
) -> tuple[list[bytes], list[tuple[int, bytes]]]:
    """Leaf hashes of the first ``limit`` records, and the records of ``request_id``."""
    leaves: list[bytes] = []
    matches: list[tuple[int, bytes]] = []
    for position, item in enumerate(_scan_records(directory)):
        if isinstance(item.value, dict) and item.value.get("r") == request_id:
            matches.append((position, item.raw))
        if position < limit:
            leaves.append(merkle.leaf_hash(item.raw))
        elif request_id is None:
            break
    return leaves, matches


def inclusion_proof(
    directory: Path,
    request_id: str,
    *,
    seq: int | None = None,
    public_key: AnyKey | None = None,
    key_name: str | None = None,
    origin: str | None = None,
) -> InclusionProof:
    """The inclusion proof of request ``request_id`` (its one record, or the one at
    ``seq``: an id that names several records is refused without it) under the log's
    latest checkpoint, verified first when ``public_key`` is given."""
    directory = Path(directory)
    note, checkpoint = _latest(directory, public_key, key_name, origin)
    leaves, matches = _leaves(directory, checkpoint.size, request_id)
    if seq is not None:
        matches = [m for m in matches if m[0] == seq]
    elif len(matches) > 1:  # ids are the clients' (X-Request-Id): never pick one silently
        seqs = ", ".join(str(m[0]) for m in matches[:10]) + (", ..." if len(matches) > 10 else "")
        raise UsageError(
            f"request id {request_id!r} names {len(matches)} records (seq {seqs}): clients "
            "choose request ids, so one may repeat another's",
            remedy=f"name the record: {named('log_seq')} N",
        )
    if matches and matches[0][0] >= checkpoint.size:
        raise ProofError(
            f"the record of request {request_id!r} (seq {matches[0][0]}) is after the latest "
            f"checkpoint (size {checkpoint.size}): it is not signed yet",
            remedy="prove it once the writer signs its next checkpoint",
        )
    if not matches:
        raise BadInputError(
            f"no record of request {request_id!r}"
            + (f" at seq {seq}" if seq is not None else "")
            + f" among the {len(leaves)} records the latest checkpoint covers",
            remedy="check the request id; a request logged after the latest checkpoint is "
            "proven once the next checkpoint is signed",
        )
    if len(leaves) < checkpoint.size:
        raise ProofError(
            f"the log holds {len(leaves)} records, fewer than its checkpoint's {checkpoint.size}"
        )
    tree = merkle.MerkleTree(leaves)
    if tree.root(checkpoint.size) != checkpoint.root:
        raise ProofError(
            f"the records of {directory} do not give the root its latest checkpoint signed",
            remedy="audit the log (log verify): it was changed after it was signed",
        )
    index, raw = matches[0]
    record = decode_record(raw, what=f"the record of request {request_id!r}")
    path = tuple(tree.inclusion_proof(index, checkpoint.size))
    return InclusionProof(record, raw, index, checkpoint, note, path)


def _field(doc: dict[str, Any], name: str, kind: type, what: str) -> Any:
    value = doc.get(name)
    if type(value) is not kind:
        raise MalformedDocumentError(f"{what}: {name} is missing or not a {kind.__name__}")
    return value


def _hashes(values: Any, what: str) -> list[bytes]:
    if not isinstance(values, list) or len(values) > 64:
        raise MalformedDocumentError(f"{what}: expected a list of at most 64 hashes")
    try:
        out = [bytes.fromhex(v) for v in values if isinstance(v, str)]
    except ValueError as exc:
        raise MalformedDocumentError(f"{what}: a hash is not hex") from exc
    if len(out) != len(values) or any(len(h) != merkle.HASH_SIZE for h in out):
        raise MalformedDocumentError(f"{what}: every hash must be 64 hex characters")
    return out


def verify_inclusion(
    doc: Any, public_key: AnyKey, *, key_name: str | None = None, origin: str | None = None
) -> InclusionProof:
    """The proof in ``doc`` (an inclusion proof document), once it holds: raises
    MalformedDocumentError for a malformed document, ProofError if it does not hold."""
    what = "inclusion proof"
    if not isinstance(doc, dict) or doc.get("schemaVersion") != INCLUSION_SCHEMA:
        raise MalformedDocumentError(f"{what}: not a {INCLUSION_SCHEMA} document")
    note = _field(doc, "checkpoint", str, what)
    try:
        checkpoint = _open_checkpoint(note, public_key, key_name, origin, f"{what}: checkpoint")
    except (BadInputError, VerificationError) as exc:
        raise ProofError(exc.message, remedy=exc.remedy) from exc
    raw = b64decode_strict(
        doc.get("recordCbor"), f"{what}: recordCbor", max_bytes=MAX_LOG_RECORD_BYTES
    )
    try:
        record = decode_record(raw, what=f"{what}: record")
    except RecordError as exc:
        raise ProofError(exc.message) from exc
    index = _field(doc, "leafIndex", int, what)
    path = _hashes(doc.get("auditPath"), f"{what}: auditPath")
    if record.seq != index or doc.get("record") != record.to_json():
        raise ProofError(f"{what}: the record shown is not the record proven (or not at its seq)")
    if doc.get("requestId") != record.request_id or doc.get("treeSize") != checkpoint.size:
        raise ProofError(f"{what}: requestId or treeSize does not match the record and checkpoint")
    if not merkle.verify_inclusion(
        index, checkpoint.size, merkle.leaf_hash(raw), path, checkpoint.root
    ):
        raise ProofError(f"{what}: the audit path does not lead from the record to the signed root")
    return InclusionProof(record, raw, index, checkpoint, note, tuple(path))


class ConsistencyProof(Struct, frozen=True):
    """Two signed checkpoints of one log, and the path showing the older is a prefix."""

    old: Checkpoint
    new: Checkpoint
    old_note: str
    new_note: str
    path: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": CONSISTENCY_SCHEMA,
            "oldSize": self.old.size,
            "newSize": self.new.size,
            "oldRoot": self.old.root.hex(),
            "newRoot": self.new.root.hex(),
            "oldCheckpoint": self.old_note,
            "newCheckpoint": self.new_note,
            "consistencyPath": [h.hex() for h in self.path],
        }


def consistency_proof(
    directory: Path,
    old_size: int,
    new_size: int | None = None,
    *,
    public_key: AnyKey | None = None,
    key_name: str | None = None,
    origin: str | None = None,
) -> ConsistencyProof:
    """The consistency proof between the signed checkpoints of ``old_size`` and
    ``new_size`` (the latest when None), computed from the records."""
    directory = Path(directory)
    if new_size is None:
        new_note, new = _latest(directory, public_key, key_name, origin)
    else:
        new_note, new = _numbered(directory, new_size, public_key, key_name, origin)
    old_note, old = _numbered(directory, old_size, public_key, key_name, origin)
    if old.size > new.size:
        raise BadInputError(f"the old size {old.size} is larger than the new size {new.size}")
    leaves, _ = _leaves(directory, new.size)
    if len(leaves) < new.size:
        raise ProofError(
            f"the log holds {len(leaves)} records, fewer than the checkpoint's {new.size}"
        )
    tree = merkle.MerkleTree(leaves)
    if tree.root(old.size) != old.root or tree.root(new.size) != new.root:
        raise ProofError(
            f"the records of {directory} do not give the roots the checkpoints signed",
            remedy="audit the log (log verify): it was changed after it was signed",
        )
    path = tuple(tree.consistency_proof(old.size, new.size))
    return ConsistencyProof(old, new, old_note, new_note, path)


def _numbered(
    directory: Path, size: int, key: AnyKey | None, key_name: str | None, origin: str | None
) -> tuple[str, Checkpoint]:
    path = numbered(directory, size)
    text = _read_note(path)
    checkpoint = _open_checkpoint(text, key, key_name, origin, str(path))
    if checkpoint.size != size:
        raise ProofError(f"{path} holds the checkpoint of size {checkpoint.size}")
    return text, checkpoint


def verify_consistency(
    doc: Any, public_key: AnyKey, *, key_name: str | None = None, origin: str | None = None
) -> ConsistencyProof:
    """The proof in ``doc`` (a consistency proof document), once both checkpoints are
    signed by the key, of one origin, and the path shows the older is a prefix."""
    what = "consistency proof"
    if not isinstance(doc, dict) or doc.get("schemaVersion") != CONSISTENCY_SCHEMA:
        raise MalformedDocumentError(f"{what}: not a {CONSISTENCY_SCHEMA} document")
    notes = [_field(doc, name, str, what) for name in ("oldCheckpoint", "newCheckpoint")]
    try:
        old, new = (
            _open_checkpoint(n, public_key, key_name, origin, f"{what}: checkpoint") for n in notes
        )
    except (BadInputError, VerificationError) as exc:
        raise ProofError(exc.message, remedy=exc.remedy) from exc
    path = _hashes(doc.get("consistencyPath"), f"{what}: consistencyPath")
    if old.origin != new.origin:
        raise ProofError(f"{what}: the checkpoints are of two origins")
    if not merkle.verify_consistency(old.size, new.size, path, old.root, new.root):
        raise ProofError(
            f"{what}: checkpoint {old.size} is not a prefix of checkpoint {new.size}: the log "
            "showed two histories"
        )
    return ConsistencyProof(old, new, notes[0], notes[1], tuple(path))
