"""``trace``: from one served request back to the pipeline that was verified for it.

The log is audited (it must be ``ok``), the request's record is proven included under
the latest signed checkpoint (and the proof checked as a third party would), and the
record names the model digest and the verification summary it was served under. With
an attestation store, the summary stored as ``summaries/<digest>.sigstore.json`` is
read (bounded, strict JSON) and shown: run id, policy digest, input attestations. It
is bound to the record by its digest (the sha256 of its DSSE payload, the name the
gate gave it), which the signed log covers; a stored file whose payload has another
digest is not that summary. A summary that is not in the store is said so, and does
not fail the trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from msgspec import Struct, field

from mlspec_attest.errors import BadInputError, MlspecError, VerificationError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.jsonio import loads_strict
from mlspec_attest.formats.limits import MAX_BUNDLE_BYTES, read_limited
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.formats.vsa import VSA_PREDICATE_TYPE, VerificationSummary, summary_digest
from mlspec_attest.log.audit import UNREADABLE, LogAudit, verify_log
from mlspec_attest.log.proof import AnyKey, InclusionProof, inclusion_proof, verify_inclusion
from mlspec_attest.store.ledger import AttestationStore

TRACE_SCHEMA = "https://mlspec-attest.dev/log-trace/v1"


class SummaryView(Struct, frozen=True):
    """What a stored verification summary says, as far as it could be read."""

    path: Path
    found: bool
    matches: bool = False  # its payload digest is the record's vsa digest
    problem: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "found": self.found,
            "matchesRecord": self.matches,
            "problem": self.problem,
            **self.fields,
        }


class Trace(Struct, frozen=True):
    """A proven record and what it was served under."""

    audit: LogAudit
    proof: InclusionProof
    summary: SummaryView | None

    @property
    def passed(self) -> bool:
        return self.summary is None or not self.summary.found or self.summary.matches

    def to_json(self) -> dict[str, Any]:
        r = self.proof.record
        return {
            "schemaVersion": TRACE_SCHEMA,
            "result": "PASSED" if self.passed else "FAILED",
            "requestId": r.request_id,
            "seq": r.seq,
            "log": {"directory": str(self.audit.directory), "result": self.audit.result},
            "included": {
                "treeSize": self.proof.checkpoint.size,
                "root": self.proof.checkpoint.root.hex(),
            },
            "model": {"name": r.model, "version": r.model_version, "digest": r.model_digest},
            "vsaDigest": r.vsa_digest,
            "record": r.to_json(),
            "summary": self.summary.to_json() if self.summary else None,
        }


def trace_request(
    directory: Path,
    request_id: str,
    public_key: AnyKey,
    *,
    store: Path | None = None,
    seq: int | None = None,
    key_name: str | None = None,
    origin: str | None = None,
) -> Trace:
    """Trace ``request_id`` in the log at ``directory``; raises VerificationError if the
    log does not verify or the record is not proven included."""
    audit = verify_log(directory, public_key, key_name=key_name, origin=origin)
    if audit.result == UNREADABLE:
        raise BadInputError(audit.problem or f"cannot read the log in {directory}")
    if not audit.ok:
        first = "; ".join(f.describe() for f in audit.problems[:3])
        raise VerificationError(
            f"the inference log in {directory} does not verify: {first}",
            remedy="audit it (log verify) before trusting anything it says",
        )
    proof = inclusion_proof(
        directory,
        request_id,
        seq=seq,
        public_key=public_key,
        key_name=audit.key_name,
        origin=audit.origin,
    )
    verify_inclusion(proof.to_json(), public_key, key_name=audit.key_name, origin=audit.origin)
    summary = read_summary(store, proof.record.vsa_digest) if store is not None else None
    return Trace(audit, proof, summary)


def read_summary(store: Path, digest: str) -> SummaryView:
    """The summary stored under ``digest`` in ``store``, read boundedly by the one
    reader of the format; what is wrong with it is said, not raised."""
    path = AttestationStore(Path(store)).summary_file(digest)
    if not path.is_file():
        return SummaryView(path, False, problem=f"no verification summary is stored as {path}")
    try:
        data = read_limited(path, MAX_BUNDLE_BYTES, what=str(path), kind="a Sigstore bundle")
        bundle = Bundle.from_json(
            loads_strict(data, what=str(path), max_bytes=MAX_BUNDLE_BYTES), what=str(path)
        )
        payload = bundle.envelope.payload
        if summary_digest(payload) != digest:
            problem = (
                f"{path} holds a summary whose payload digest is "
                f"{summary_digest(payload)}, not the record's {digest}"
            )
            return SummaryView(path, True, False, problem)
        summary = VerificationSummary.from_payload(payload, what=f"{path}: payload")
    except MlspecError as exc:
        return SummaryView(path, True, False, exc.message)
    return SummaryView(path, True, True, None, _fields(summary))


def _fields(summary: VerificationSummary) -> dict[str, Any]:
    """The summary's fields a reader of a trace wants."""
    return {
        "predicateType": VSA_PREDICATE_TYPE,
        "runId": summary.run_id,
        "verificationResult": summary.result.value,
        "timeVerified": format_rfc3339(summary.time_verified),
        "resourceUri": summary.resource_uri,
        "policy": {"uri": summary.policy_uri, "sha256": summary.policy_digest},
        "inputAttestations": [
            {"name": i.stage, "uri": i.uri, "sha256": i.sha256} for i in summary.inputs
        ],
        "subjects": [{"name": s.name, "sha256": s.digest.get("sha256")} for s in summary.subjects],
    }
