"""The package stage's OpenSSF model-signing evidence, checked against the served model.

``sign --oms-signature`` records, on the package stage, which OMS signature was
verified over which model manifest (:data:`EVIDENCE_SCHEMA`); at deploy time
:func:`check_oms_evidence` serializes the model on disk the way the record says and
compares its manifest digest, so the model served is the one whose signature was
checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from msgspec.structs import replace

from mlspec_attest.digest.artifact import sha256_file
from mlspec_attest.digest.serialization import Serialization, serialize_model
from mlspec_attest.errors import BackendError, BadInputError, MalformedDocumentError

EVIDENCE_SCHEMA = "https://mlspec-attest.dev/oms-evidence/v1"


def check_oms_evidence(
    record: Any,
    model_dir: Path,
    *,
    signature_path: Path | None = None,
    workers: int | None = None,
) -> list[str]:
    """Problems found checking the served ``model_dir`` against an :func:`oms_evidence` record.

    The model is serialized as the record says and its canonical manifest
    digest compared; with ``signature_path`` the signature file must also be the
    one recorded. An empty list means the served model is the verified one.
    """
    if not isinstance(record, dict) or record.get("schemaVersion") != EVIDENCE_SCHEMA:
        return [f"omsSignature: not an OMS evidence record ({EVIDENCE_SCHEMA})"]
    try:
        serialization = Serialization.from_json(record.get("serialization"))
    except MalformedDocumentError as exc:
        return [f"omsSignature: {exc.message}"]
    ignored = record.get("ignorePaths", [])
    manifest_digest = record.get("manifestDigest")
    want = manifest_digest.get("sha256") if isinstance(manifest_digest, dict) else None
    count = record.get("resources")
    if (
        not isinstance(ignored, list)
        or not all(isinstance(p, str) for p in ignored)
        or not isinstance(want, str)
        or not isinstance(count, int)
    ):
        return ["omsSignature: record lacks ignorePaths, manifestDigest.sha256 or resources"]
    problems = [] if signature_path is None else _signature_problems(record, signature_path)
    if not model_dir.exists():
        return [*problems, f"omsSignature: model {model_dir} not found"]
    try:
        model = serialize_model(
            model_dir,
            replace(serialization, ignore_paths=frozenset()),
            extra_ignore=ignored,
            workers=workers,
        )
    except (BadInputError, BackendError) as exc:
        return [*problems, f"omsSignature: {exc.message}"]
    problems += [f"omsSignature: {r.message}" for r in model.refused]
    found = model.root
    if found != want or len(model.resources) != count:
        problems.append(
            f"omsSignature: served model {model_dir} differs from the signed model: manifest "
            f"sha256:{want} ({count} resources) expected, sha256:{found} "
            f"({len(model.resources)} resources) found; run `mlspec-attest model verify` "
            "for the files that differ"
        )
    return problems


def _signature_problems(record: dict[str, Any], signature_path: Path) -> list[str]:
    """The signature file must be the one verified at package time."""
    recorded = record.get("signature")
    want_sig = recorded.get("sha256") if isinstance(recorded, dict) else None
    if not signature_path.is_file():
        return [f"omsSignature: signature file {signature_path} is missing"]
    if sha256_file(signature_path)[0] != want_sig:
        return [f"omsSignature: {signature_path} is not the signature verified at package time"]
    return []
