"""Export a verified run as a CycloneDX 1.6 ML-BOM, through cyclonedx-python-lib.

:func:`export_cyclonedx` verifies the run (:func:`~.verified_run.verified_run`); a
denied run is not exported. The document (docs/exports.md has the field-by-field map):

* ``metadata.component``: the model, a ``machine-learning-model`` component with its
  sha256 (a directory's is the model-signing manifest root) and a ``modelCard``: the
  datasets by reference, every metric of the evaluation and test stages overall and per
  slice (``performanceMetrics``), the training parameters;
* ``components``: each dataset as a ``data`` component with its sha256, roles and rows;
* ``dependencies``: the model depends on its datasets;
* ``formulation``: the run as one workflow of one task per stage (inputs, outputs,
  parameters, order, times, signers);
* ``externalReferences``: every attestation the verdict counted, type ``attestation``,
  named by the sha256 of its DSSE payload (the name a verification summary uses);
* ``metadata.properties``: run id, policy name and digest, result, time verified.

The library builds and serializes the document; the fields it does not model yet come
from :mod:`~.cyclonedx_card`; the result is validated by the library's
``JsonStrictValidator`` for 1.6 before it is returned or written.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from mlspec_attest._version import __version__
from mlspec_attest.errors import require
from mlspec_attest.formats.rfc3339 import parse_rfc3339
from mlspec_attest.formats.signer import PublicKeyVerifier
from mlspec_attest.interop import cyclonedx_card as card
from mlspec_attest.interop.verified_run import (
    Artifact,
    RunFacts,
    VerifiedExport,
    export_verified,
)
from mlspec_attest.policy.signed import SignedPolicy
from mlspec_attest.store.ledger import AttestationStore

__all__ = ["CYCLONEDX_SPEC", "CycloneDXExport", "cyclonedx_document", "export_cyclonedx"]

CYCLONEDX_SPEC = "1.6"
EXTRA = "sbom"
MODEL_REF = "model"
#: Namespace of the BOM's serial number (uuid5 of the run and its attestations), so the
#: same verified run exports the same document.
_SERIAL_NAMESPACE = uuid.UUID("2b0c1a57-7d3e-4b8f-9c61-6d6c7370656d")


CycloneDXExport = VerifiedExport
"""The outcome of :func:`export_cyclonedx`."""


def export_cyclonedx(
    signed: SignedPolicy,
    owner_keys: Sequence[PublicKeyVerifier],
    store: AttestationStore,
    *,
    out: Path | None = None,
    run_id: str | None = None,
    artifacts: Mapping[str, Path] | None = None,
    now: datetime | None = None,
) -> CycloneDXExport:
    """Verify one run and, if it passes, return (and write to ``out``) its ML-BOM.

    Never raises for a denial: the result's ``report`` says why nothing was written.
    """
    lib = _cyclonedx()  # a missing extra is said before any work is done
    return export_verified(
        lambda facts: cyclonedx_document(facts, lib=lib),
        signed,
        owner_keys,
        store,
        out=out,
        run_id=run_id,
        artifacts=artifacts,
        now=now,
    )


def cyclonedx_document(facts: RunFacts, *, lib: ModuleType | None = None) -> dict[str, Any]:
    """The validated CycloneDX 1.6 JSON document of ``facts``."""
    lib = lib or _cyclonedx()
    bom, refs = _bom(facts, lib)
    document: dict[str, Any] = json.loads(lib.output.json.JsonV1Dot6(bom).output_as_string())
    _graft(document, facts, refs)
    _validate(document, lib)
    return document


# ------------------------------------------------------------------ the library's part
def _cyclonedx() -> ModuleType:
    """The ``cyclonedx`` package (cyclonedx-python-lib) with the modules used here loaded,
    or the error naming the extra that installs it."""
    for module in ("model.bom", "model.component", "output.json", "schema", "validation.json"):
        require(f"cyclonedx.{module}", "the CycloneDX export")
    return require("cyclonedx", "the CycloneDX export")


def _bom(facts: RunFacts, lib: ModuleType) -> tuple[Any, dict[str, str]]:
    """The library's Bom of ``facts``, and artifact name -> bom-ref of its component."""
    c = lib.model.component
    refs: dict[str, str] = {}
    data = []
    for i, ds in enumerate(facts.datasets):
        ref = f"dataset-{i + 1}:{ds.artifact.name}"
        refs.setdefault(ds.artifact.name, ref)
        props: list[tuple[str, object]] = [("stage", s) for s in sorted(ds.stages)]
        props += [("role", r) for r in sorted(ds.roles)]
        if ds.rows is not None:
            props.append(("rows", ds.rows))
        data.append(_component(lib, c.ComponentType.DATA, ref, ds.artifact, props))
    model = None
    if facts.model is not None:
        refs.setdefault(facts.model.name, MODEL_REF)
        model_props: list[tuple[str, object]] = (
            [("stage", facts.model_stage)] if facts.model_stage else []
        )
        model = _component(
            lib, c.ComponentType.MACHINE_LEARNING_MODEL, MODEL_REF, facts.model, model_props
        )
    tool = c.Component(type=c.ComponentType.APPLICATION, name="mlspec-attest", version=__version__)
    metadata = lib.model.bom.BomMetaData(
        component=model,
        timestamp=parse_rfc3339(facts.verified_at),
        properties=[_property(lib, k, v) for k, v in _run_properties(facts)],
    )
    metadata.tools.components.add(tool)
    bom = lib.model.bom.Bom(
        components=data,
        metadata=metadata,
        serial_number=_serial(facts),
        external_references=[_attestation_ref(lib, a) for a in facts.attestations],
    )
    if model is not None:
        bom.register_dependency(model, data)
    for component in data:
        bom.register_dependency(component, [])
    return bom, refs


def _component(
    lib: ModuleType, kind: Any, ref: str, artifact: Artifact, props: list[tuple[str, object]]
) -> Any:
    m = lib.model
    hashes = [
        m.HashType(alg=m.HashAlgorithm.SHA_256, content=h["content"])
        for h in card.sha256_hashes(artifact.digest)
    ]
    extra: list[tuple[str, object]] = [
        (f"digest:{alg}", v) for alg, v in sorted(artifact.digest.items()) if alg != "sha256"
    ]
    if artifact.size is not None:
        extra.append(("size", artifact.size))
    return lib.model.component.Component(
        type=kind,
        name=artifact.name,
        bom_ref=ref,
        hashes=hashes,
        properties=[_property(lib, k, v) for k, v in (*props, *extra)],
    )


def _property(lib: ModuleType, name: str, value: object) -> Any:
    p = card.prop(name, value)
    return lib.model.Property(name=p["name"], value=p["value"])


def _run_properties(facts: RunFacts) -> list[tuple[str, object]]:
    return [
        ("run-id", facts.run_id),
        ("policy-name", facts.policy_name),
        ("policy-digest", facts.policy_digest),
        ("verification-result", "PASSED"),
        ("verified-at", facts.verified_at),
    ]


def _attestation_ref(lib: ModuleType, att: Any) -> Any:
    m = lib.model
    return m.ExternalReference(
        type=m.ExternalReferenceType.ATTESTATION,
        url=m.XsUri(card.artifact_url(att.uri)),
        comment=f"stage {att.stage}: in-toto statement signed by {att.signer}",
        hashes=[m.HashType(alg=m.HashAlgorithm.SHA_256, content=att.payload_sha256)],
    )


def _serial(facts: RunFacts) -> uuid.UUID:
    names = ",".join(sorted(a.payload_sha256 for a in facts.attestations))
    return uuid.uuid5(_SERIAL_NAMESPACE, f"{facts.run_id}|{facts.policy_digest}|{names}")


# ------------------------------------------------------------------ the rest, then validation
def _graft(document: dict[str, Any], facts: RunFacts, refs: Mapping[str, str]) -> None:
    """Add what the library does not model (:mod:`~.cyclonedx_card`) at its schema place."""
    by_ref = {ds_ref: ds for ds in facts.datasets if (ds_ref := refs.get(ds.artifact.name))}
    for component in document.get("components", []):
        ds = by_ref.get(component.get("bom-ref"))
        if ds is not None and component.get("type") == "data":
            component["data"] = card.dataset_data(ds)
    model = document.get("metadata", {}).get("component")
    if model is not None:
        dataset_refs = {ref: ref for ref in by_ref}
        model_card = card.model_card(facts, dataset_refs)
        if model_card:
            model["modelCard"] = model_card
    document["formulation"] = card.formulation(facts, refs)


def _validate(document: dict[str, Any], lib: ModuleType) -> None:
    """The library's strict 1.6 validator; a violation is this exporter's bug (exit 70)."""
    validator = lib.validation.json.JsonStrictValidator(lib.schema.SchemaVersion.V1_6)
    errors = validator.validate_str(json.dumps(document), all_errors=True)
    if errors:
        problems = "; ".join(str(e) for e in list(errors)[:5])
        raise RuntimeError(
            f"the exported CycloneDX document is not valid CycloneDX 1.6: {problems}"
        )
