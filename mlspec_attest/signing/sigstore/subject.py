"""Does a DSSE payload name the artifact? An in-toto Statement v1 subject must carry its sha256.

A directory's subject carries a sha256 too, but it is the root over its files' digests
(docs/formats.md, "File and directory digests"), not the digest of any bytes: a file
whose bytes are those digests, concatenated, has the same sha256. So a subject that is a
directory (its digest set names its manifest, ``manifest-sha256``) is never matched by
a file's digest; only a digest given as such (``artifact_is_file=False``) may match it.
"""

from __future__ import annotations

from typing import Any

from mlspec_attest.errors import MalformedDocumentError, SigstoreVerificationError
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.jsonio import loads_strict

STATEMENT_TYPES = ("https://in-toto.io/Statement/v1",)
# The DigestSet key naming a directory's manifest (docs/formats.md section 5).
MANIFEST_DIGEST = "manifest-sha256"


def check_subject(
    payload_type: str,
    payload: bytes,
    artifact_sha256: str | None,
    what: str,
    *,
    artifact_is_file: bool = True,
) -> None:
    """Refuse the payload unless a subject carries ``artifact_sha256``; a directory's
    subject counts only when ``artifact_is_file`` is False (a digest given as such)."""
    if artifact_sha256 is None:
        return
    directories: list[str] = []
    for subject in _subjects(payload_type, payload, what):
        digest = subject.get("digest") if isinstance(subject, dict) else None
        if not isinstance(digest, dict) or digest.get("sha256") != artifact_sha256:
            continue
        if not (artifact_is_file and is_directory(subject)):
            return
        directories.append(str(subject.get("name", "")))
    if directories:
        raise SigstoreVerificationError(
            f"{what}: the in-toto subject with sha256 {artifact_sha256} is the directory "
            f"{directories[0]!r} (its digest set names a {MANIFEST_DIGEST}): that sha256 is the "
            "root over its files' digests, never the digest of one file's bytes",
            remedy="to check a directory, compare both digests `mlspec-attest digest DIR` "
            f"prints with the subject's, then pass its sha256 with {named('digest')}",
        )
    raise SigstoreVerificationError(
        f"{what}: the in-toto statement has no subject with sha256 {artifact_sha256}",
        remedy="this bundle attests another artifact",
    )


def is_directory(subject: dict[str, Any]) -> bool:
    """Does this in-toto subject name a directory (a manifest digest, or our annotation)?"""
    digest = subject.get("digest")
    annotations = subject.get("annotations")
    return (isinstance(digest, dict) and MANIFEST_DIGEST in digest) or (
        isinstance(annotations, dict) and annotations.get("mlspec.kind") == "directory"
    )


def _subjects(payload_type: str, payload: bytes, what: str) -> list[Any]:
    """The subjects of an in-toto Statement v1 payload; refused if it is not one."""
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
    return subjects
