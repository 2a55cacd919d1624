"""``verify_log``: is this log directory what its key signed, and if not, what changed?

1. Every checkpoint file is read within its bound and verified (grammar, signature by
   the trusted key under its name, origin); a bad one is a ``bad-checkpoint`` finding.
2. The records the checkpoints cover are verified by the fast pass (:mod:`.fastpath`:
   raw slices hashed, roots compared, prev chain and line digests checked). Records
   after the last checkpoint are read exactly (decoded, checked, rendered against
   ``access.log``). If anything is off, the whole log is read exactly and every
   problem named (:mod:`.exact`, :mod:`.classify`); ``exact=True`` always does that.
3. The result: ``ok`` (at most a crash's traces: an unsigned tail, a torn record or
   line), ``tampered``, or ``unreadable`` (the directory or a file cannot be read).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from msgspec import Struct

from mlspec_attest.errors import BadInputError, KeyLoadError
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.partial_value import PartlyCompared
from mlspec_attest.formats.signer import PublicKeyVerifier
from mlspec_attest.log.checkpoint import Checkpoint
from mlspec_attest.log.classify import classify
from mlspec_attest.log.exact import ExactScan, Start, scan_exact
from mlspec_attest.log.fastpath import fast_prefix
from mlspec_attest.log.files import CheckpointFile, checkpoint_paths, peek_origin, read_checkpoint
from mlspec_attest.log.findings import Finding, Kind
from mlspec_attest.log.merkle import CompactRange
from mlspec_attest.log.note import NoteKey, note_key
from mlspec_attest.signing.keys import LocalPublicKey

SCHEMA = "https://mlspec-attest.dev/log-verification/v1"
OK, TAMPERED, UNREADABLE = "ok", "tampered", "unreadable"


class LogState(Struct, frozen=True):
    """Where the log ends, for a writer that continues it."""

    count: int  # whole records
    records_end: int  # byte offset after them
    torn: int  # bytes of a partial record after them
    lines_complete: int  # records with their complete line in access.log
    lines_end: int  # byte offset after those lines
    tree: CompactRange
    last_leaf: bytes
    unlined_offset: int | None  # where the first record without its line starts, if read exactly


class LogAudit(PartlyCompared, frozen=True):
    """The verdict on a log directory, with every finding."""

    directory: Path
    result: str
    records: int = 0
    signed: int = 0
    root: bytes = b""
    key_name: str | None = None
    origin: str | None = None
    checkpoints: tuple[CheckpointFile, ...] = ()
    findings: tuple[Finding, ...] = ()
    mode: str = "exact"
    problem: str | None = None
    #: What the audit read (for ``log prove`` and ``trace``); not part of the verdict.
    state: LogState | None = None

    _uncompared = frozenset({"state"})

    @property
    def ok(self) -> bool:
        return self.result == OK

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.crash)

    @property
    def problems(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.crash)

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": SCHEMA,
            "directory": str(self.directory),
            "result": self.result,
            "records": self.records,
            "signedSize": self.signed,
            "root": self.root.hex(),
            "keyName": self.key_name,
            "origin": self.origin,
            "mode": self.mode,
            "problem": self.problem,
            "checkpoints": [c.to_json() for c in self.checkpoints],
            "findings": [f.to_json() for f in self.findings],
        }


def verify_log(
    directory: Path,
    public_key: PublicKeyVerifier | LocalPublicKey | NoteKey,
    *,
    key_name: str | None = None,
    origin: str | None = None,
    exact: bool = False,
    known: Sequence[Path] = (),
) -> LogAudit:
    """Audit the log in ``directory`` against ``public_key`` (signing as ``key_name``,
    by default the origin; checkpoints of ``origin``, by default the log's own).

    ``known``: checkpoint files the auditor kept from earlier (a witness's copy, an
    earlier audit's): each is checked as one of the log's own, so a log rolled back
    below one of them (its newer checkpoints removed, its records cut or rewritten) is
    ``truncated-signed`` or ``edited``, not an unsigned tail."""
    directory = Path(directory)
    if not directory.is_dir():
        why = "does not exist" if not directory.exists() else "is not a directory"
        return LogAudit(directory, UNREADABLE, problem=f"log directory {directory} {why}")
    try:
        return _verify(directory, public_key, key_name, origin, exact, tuple(known))
    except OSError as exc:
        problem = f"cannot read the log in {directory}: {exc.strerror or exc}"
        return LogAudit(directory, UNREADABLE, problem=problem)


def log_key(
    directory: Path,
    public_key: PublicKeyVerifier | LocalPublicKey | NoteKey,
    key_name: str | None,
    origin: str | None,
) -> NoteKey:
    """The signed-note key checkpoints must be signed with."""
    if isinstance(public_key, NoteKey):
        if key_name is not None and key_name != public_key.name:
            raise KeyLoadError(f"the verifier key is named {public_key.name!r}, not {key_name!r}")
        return public_key
    name = key_name or origin or peek_origin(directory)
    if name is None:
        raise BadInputError(
            f"cannot tell the name of the key that signs the log in {directory}",
            remedy=f"pass {named('log_key_name')} or {named('log_origin')}",
        )
    return note_key(public_key, name)


def _verify(
    directory: Path,
    public_key: PublicKeyVerifier | LocalPublicKey | NoteKey,
    key_name: str | None,
    origin: str | None,
    exact: bool,
    known: tuple[Path, ...],
) -> LogAudit:
    files = checkpoint_paths(directory) + [(f"known checkpoint {p}", p) for p in known]
    key = log_key(directory, public_key, key_name, origin) if files or key_name else None
    seen: dict[bytes, tuple[Checkpoint | str, str]] = {}  # one verification per content
    read = [read_checkpoint(directory, n, p, key, origin, seen) for n, p in files] if key else []
    read, origin = _same_origin(read, origin)
    verified = [c.checkpoint for c in read if c.checkpoint is not None]
    findings = _checkpoint_findings(read)
    roots = {c.size: c.root for c in verified}
    signed = max(roots, default=0)
    scan, mode, found = _scan(directory, roots, signed, verified, exact)
    findings += found
    if not files and scan.count:
        message = (
            "no checkpoint at all, yet records: the writer signs the checkpoint of size 0 "
            "when it creates a log, so its checkpoints were removed"
        )
        findings.append(Finding(Kind.BAD_CHECKPOINT, message))
    result = TAMPERED if any(not f.crash for f in findings) else OK
    state = LogState(
        scan.count,
        scan.records_end,
        scan.torn,
        scan.lines.complete,
        scan.lines.end,
        scan.tree,
        scan.last_leaf,
        scan.unlined_offset,
    )
    return LogAudit(
        directory,
        result,
        scan.count,
        signed,
        scan.tree.root(),
        key.name if key else key_name,
        origin,
        tuple(read),
        tuple(findings),
        mode,
        state=state,
    )


def _scan(
    directory: Path, roots: dict[int, bytes], signed: int, verified: list[Checkpoint], exact: bool
) -> tuple[ExactScan, str, list[Finding]]:
    """The fast pass and an exact read of the tail, or the exact read of everything."""
    sizes = set(roots)
    start = None if exact else fast_prefix(directory, roots, signed)
    if start is not None:
        scan = scan_exact(directory, sizes, start)
        found = classify(scan, verified)
        if all(f.crash for f in found):
            return scan, "fast", found
    scan = scan_exact(directory, sizes, Start())
    return scan, "exact", classify(scan, verified)


def _same_origin(
    read: list[CheckpointFile], origin: str | None
) -> tuple[list[CheckpointFile], str | None]:
    """Without an expected origin, the log's is that of its latest verified checkpoint;
    a verified checkpoint of another origin is then bad."""
    good = [c for c in read if c.checkpoint is not None]
    if origin is None and good:
        latest = max(good, key=lambda c: (c.checkpoint.size if c.checkpoint else -1, c.name))
        origin = latest.checkpoint.origin if latest.checkpoint else None
    out = []
    for c in read:
        if c.checkpoint is not None and c.checkpoint.origin != origin:
            c = CheckpointFile(
                c.path,
                c.name,
                None,
                f"{c.name}: origin {c.checkpoint.origin!r} is not the log's origin {origin!r}",
            )
        out.append(c)
    return out, origin


def _checkpoint_findings(read: list[CheckpointFile]) -> list[Finding]:
    findings = [Finding(Kind.BAD_CHECKPOINT, c.problem or "") for c in read if c.problem]
    by_size: dict[int, bytes] = {}
    for c in read:
        if c.checkpoint is None:
            continue
        other = by_size.setdefault(c.checkpoint.size, c.checkpoint.root)
        if other != c.checkpoint.root:
            message = (
                f"two checkpoints signed for size {c.checkpoint.size} have different roots "
                f"({c.name}): the log showed two histories"
            )
            findings.append(Finding(Kind.BAD_CHECKPOINT, message, c.checkpoint.size))
    return findings
