"""What a verified Sigstore bundle proved: the signer, the payload, the verified signing times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from msgspec import Struct

from mlspec_attest.signing.sigstore.identity import CertificateIdentity, SigstoreIdentity


class SignedTime(Struct, frozen=True):
    """One verified source of signing time."""

    source: str  # "transparency-log" or "timestamp-authority"
    time: datetime

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "time": self.time.astimezone(UTC).isoformat()}


class VerifiedBundle(Struct, frozen=True):
    """What a successful :func:`verify_bundle` proved."""

    method: str  # "sigstore" (certificate) or "key"
    payload_type: str | None = None
    payload: bytes | None = None
    identity: CertificateIdentity | None = None
    matched: tuple[SigstoreIdentity, ...] = ()
    keyid: str | None = None
    times: tuple[SignedTime, ...] = ()
    log_entries: int = 0
    notes: tuple[str, ...] = ()

    @property
    def signer_id(self) -> str:
        if self.identity is not None:
            return self.identity.signer_id
        return self.keyid or ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method}
        if self.identity is not None:
            out["signer"] = self.identity.to_json()
            out["matchedRules"] = [m.to_json() for m in self.matched]
        if self.keyid is not None:
            out["signer"] = {"keyid": self.keyid}
        out["content"] = "dsse" if self.payload is not None else "message-signature"
        if self.payload_type is not None:
            out["payloadType"] = self.payload_type
        out["transparencyLogEntries"] = self.log_entries
        out["signedTimes"] = [t.to_json() for t in self.times]
        if self.notes:
            out["notes"] = list(self.notes)
        return out
