"""What an audit of a log directory can find, and the remedy for each kind."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from msgspec import Struct


class Kind(StrEnum):
    """A finding's kind. :data:`CRASH_KINDS` are what a crash leaves (the log is still
    trustworthy); every other kind is tampering (or a broken disk)."""

    EDITED = "edited"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    TRUNCATED_SIGNED = "truncated-signed"
    UNSIGNED_TAIL = "unsigned-tail"
    TORN_TAIL = "torn-tail"
    BAD_CHECKPOINT = "bad-checkpoint"
    ACCESS_LOG_MISMATCH = "access-log-mismatch"


CRASH_KINDS = frozenset({Kind.UNSIGNED_TAIL, Kind.TORN_TAIL})

REMEDIES: dict[Kind, str] = {
    Kind.EDITED: "treat the named record as forged: restore records.cbor from a backup "
    "and compare, and find who could write to the log directory",
    Kind.DELETED: "records were removed from records.cbor: restore them from a backup; "
    "the log cannot vouch for the missing requests",
    Kind.INSERTED: "a record appears twice or was added: restore records.cbor from a backup",
    Kind.REORDERED: "records were moved: restore records.cbor from a backup",
    Kind.TRUNCATED_SIGNED: "signed records were deleted from the end of records.cbor: "
    "restore them from a backup; the signed checkpoint proves they existed",
    Kind.UNSIGNED_TAIL: "nothing to do after a crash (the writer signs them when it "
    "reopens the log); these records are not yet covered by a signature",
    Kind.TORN_TAIL: "nothing to do: a crash cut the last write short; reopening the "
    "writer truncates the partial record and re-renders the last access.log line",
    Kind.BAD_CHECKPOINT: "the checkpoint is not a valid signature of this log by this key: "
    "check the key and origin, and restore the file from a backup",
    Kind.ACCESS_LOG_MISMATCH: "access.log was edited: regenerate it from records.cbor "
    "(every line is rendered from its record) and find who changed it",
}


class Finding(Struct, frozen=True):
    """One problem: its kind, the record it concerns (seq and request id, when known),
    a message, and what to do."""

    kind: Kind
    message: str
    seq: int | None = None
    request_id: str | None = None
    last_seq: int | None = None  # the end of a range of records, inclusive

    @property
    def remedy(self) -> str:
        return REMEDIES[self.kind]

    @property
    def crash(self) -> bool:
        return self.kind in CRASH_KINDS

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "seq": self.seq,
            "lastSeq": self.last_seq,
            "requestId": self.request_id,
            "message": self.message,
            "remedy": self.remedy,
        }

    def describe(self) -> str:
        where = ""
        if self.seq is not None:
            where = f" seq {self.seq}" + (f"..{self.last_seq}" if self.last_seq is not None else "")
        rid = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.kind.value}{where}{rid}: {self.message}"
