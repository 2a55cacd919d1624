"""The files of a log directory, and reading its checkpoints.

::

    <dir>/records.cbor              the records, a CBOR sequence (RFC 8742)
    <dir>/access.log                one NCSA line per record, in the same order
    <dir>/checkpoints/<N>.checkpoint the signed checkpoint of the first N records (kept)
    <dir>/checkpoint                the latest signed checkpoint
    <dir>/log.pub                   the log's public key (PEM), for convenience only
    <dir>/log.vkey                  the same key as a signed-note verifier key

``log.pub`` and ``log.vkey`` are written by the writer so that a reader can see which
key signs; an audit never trusts them: the caller names the key.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from msgspec import Struct

from mlspec_attest.errors import BadInputError, SignatureVerificationError
from mlspec_attest.formats.limits import MAX_CHECKPOINT_BYTES, read_limited
from mlspec_attest.log.checkpoint import Checkpoint, verify_checkpoint
from mlspec_attest.log.note import NoteKey

RECORDS = "records.cbor"
ACCESS_LOG = "access.log"
CHECKPOINTS = "checkpoints"
LATEST = "checkpoint"
PUBLIC_KEY = "log.pub"
VKEY = "log.vkey"
_NUMBERED = re.compile(r"(0|[1-9][0-9]{0,18})\.checkpoint")


def numbered(directory: Path, size: int) -> Path:
    return directory / CHECKPOINTS / f"{size}.checkpoint"


class CheckpointFile(Struct, frozen=True):
    """One checkpoint file and what became of it: verified, or why not."""

    path: Path
    name: str  # relative to the log directory
    checkpoint: Checkpoint | None
    problem: str | None = None

    def to_json(self) -> dict[str, object]:
        c = self.checkpoint
        return {
            "file": self.name,
            "verified": c is not None,
            "size": c.size if c else None,
            "root": c.root.hex() if c else None,
            "problem": self.problem,
        }


def checkpoint_paths(directory: Path) -> list[tuple[str, Path]]:
    """Every checkpoint file: ``checkpoints/<N>.checkpoint`` by size, then ``checkpoint``.

    Hidden files (a writer's temporaries) and other names are not checkpoints."""
    found: list[tuple[int, str, Path]] = []
    folder = directory / CHECKPOINTS
    if folder.is_dir():
        for entry in folder.iterdir():
            match = _NUMBERED.fullmatch(entry.name)
            if match:
                found.append((int(match[1]), f"{CHECKPOINTS}/{entry.name}", entry))
    paths = [(name, path) for _, name, path in sorted(found)]
    latest = directory / LATEST
    if latest.exists() or latest.is_symlink():
        paths.append((LATEST, latest))
    return paths


def read_checkpoint(
    directory: Path,
    name: str,
    path: Path,
    key: NoteKey,
    origin: str | None,
    seen: dict[bytes, tuple[Checkpoint | str, str]] | None = None,
) -> CheckpointFile:
    """Read and verify one checkpoint file; a problem is recorded, never raised. ``seen``
    keeps each content's verdict (and the name it was found under), so that many files
    of one content (links to one note) cost one verification."""
    try:
        text = read_limited(path, MAX_CHECKPOINT_BYTES, what=name, kind="a checkpoint")
    except BadInputError as exc:
        return CheckpointFile(path, name, None, exc.message)
    digest = hashlib.sha256(text).digest()
    verdict, first = seen.get(digest, (None, name)) if seen is not None else (None, name)
    if verdict is None:
        try:
            verdict = verify_checkpoint(text, key, key.name, origin, what=name)
        except (BadInputError, SignatureVerificationError) as exc:
            verdict = exc.message
        if seen is not None:
            seen[digest] = (verdict, name)
    if isinstance(verdict, str):
        return CheckpointFile(path, name, None, verdict.replace(first, name, 1))
    checkpoint = verdict
    match = _NUMBERED.fullmatch(path.name)
    if name.startswith(f"{CHECKPOINTS}/") and match and int(match[1]) != checkpoint.size:
        problem = f"{name}: holds the checkpoint of size {checkpoint.size}, not {match[1]}"
        return CheckpointFile(path, name, None, problem)
    return CheckpointFile(path, name, checkpoint)


def peek_origin(directory: Path) -> str | None:
    """The origin line of the latest checkpoint, unverified (to name the key when the
    caller did not): None if there is none to read."""
    path = directory / LATEST
    try:
        text = read_limited(path, MAX_CHECKPOINT_BYTES, what=LATEST, kind="a checkpoint")
    except BadInputError:
        return None
    first = text.split(b"\n", 1)[0]
    try:
        return first.decode("utf-8") or None
    except UnicodeDecodeError:
        return None
