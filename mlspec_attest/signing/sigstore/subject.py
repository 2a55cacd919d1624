"""Does a DSSE payload name the artifact? An in-toto Statement v1 subject must carry its sha256."""

from __future__ import annotations

from mlspec_attest.errors import MalformedDocumentError, SigstoreVerificationError
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.jsonio import loads_strict

STATEMENT_TYPES = ("https://in-toto.io/Statement/v1",)


def check_subject(
    payload_type: str, payload: bytes, artifact_sha256: str | None, what: str
) -> None:
    if artifact_sha256 is None:
        return
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise SigstoreVerificationError(
            f"{what}: DSSE payloadType {payload_type!r} is not an in-toto statement; "
            "it cannot name the artifact"
        )
    try:
        statement = loads_strict(payload, what=f"{what}: in-toto statement")
    except MalformedDocumentError as exc:
        raise SigstoreVerificationError(exc.message) from exc
    if not isinstance(statement, dict):
        raise SigstoreVerificationError(f"{what}: the DSSE payload is not an in-toto Statement v1")
    subjects = statement.get("subject")
    if statement.get("_type") not in STATEMENT_TYPES or not isinstance(subjects, list):
        raise SigstoreVerificationError(f"{what}: the DSSE payload is not an in-toto Statement v1")
    for subject in subjects:
        digest = subject.get("digest") if isinstance(subject, dict) else None
        if isinstance(digest, dict) and digest.get("sha256") == artifact_sha256:
            return
    raise SigstoreVerificationError(
        f"{what}: the in-toto statement has no subject with sha256 {artifact_sha256}",
        remedy="this bundle attests another artifact",
    )
