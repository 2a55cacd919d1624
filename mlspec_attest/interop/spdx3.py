"""Export a verified run as SPDX 3.0.1 (AI and Dataset profiles), through spdx-python-model.

spdx-python-model is the SPDX project's own binding of the SPDX 3 model (generated from
the spec's SHACL); it checks every value's type when it is set and every required
property when the document is written, and writes the JSON-LD. The document
(docs/exports.md maps each field to the attestation it comes from):

* an ``ai_AIPackage`` for the model: its sha256 (``verifiedUsing``), the training
  parameters (``ai_hyperparameter``), every metric of the evaluation and test stages
  overall and per slice (``ai_metric``, keys ``STAGE:NAME`` or ``STAGE:FAMILY=KEY:NAME``);
* a ``dataset_DatasetPackage`` for each dataset, with its sha256;
* relationships: the model ``trainedOn`` its training data and ``testedOn`` its
  validation and hold-back data; ``hasEvidence`` every attestation the verdict counted,
  each a ``software_File`` named by its store path whose hash is the sha256 of its DSSE
  payload (the name a verification summary uses);
* an ``SpdxDocument`` whose root element is the model.
"""

from __future__ import annotations

import io
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
from mlspec_attest.interop.verified_run import (
    Artifact,
    Metric,
    RunFacts,
    VerifiedExport,
    export_verified,
)
from mlspec_attest.policy.signed import SignedPolicy
from mlspec_attest.store.ledger import AttestationStore

__all__ = ["SPDX_VERSION", "Spdx3Export", "export_spdx3", "spdx3_document"]

SPDX_VERSION = "3.0.1"
EXTRA = "sbom"
TRAIN_ROLES = frozenset({"train"})
TEST_ROLES = frozenset({"validation", "holdback"})
_ID_NAMESPACE = uuid.UUID("6a1f3c0e-55b2-4c7d-8e7a-73706478336d")


Spdx3Export = VerifiedExport
"""The outcome of :func:`export_spdx3`."""


def export_spdx3(
    signed: SignedPolicy,
    owner_keys: Sequence[PublicKeyVerifier],
    store: AttestationStore,
    *,
    out: Path | None = None,
    run_id: str | None = None,
    artifacts: Mapping[str, Path] | None = None,
    now: datetime | None = None,
) -> Spdx3Export:
    """Verify one run and, if it passes, return (and write to ``out``) its SPDX 3 document.

    Never raises for a denial: the result's ``report`` says why nothing was written.
    """
    spdx = _spdx()
    return export_verified(
        lambda facts: spdx3_document(facts, spdx=spdx),
        signed,
        owner_keys,
        store,
        out=out,
        run_id=run_id,
        artifacts=artifacts,
        now=now,
    )


def spdx3_document(facts: RunFacts, *, spdx: ModuleType | None = None) -> dict[str, Any]:
    """The SPDX 3.0.1 JSON-LD document of ``facts``, written by spdx-python-model."""
    spdx = spdx or _spdx()
    objects = _Builder(facts, spdx).objects()
    buffer = io.BytesIO()
    try:
        spdx.JSONLDSerializer().write(spdx.SHACLObjectSet(objects), buffer, indent=2)
    except (ValueError, TypeError) as exc:  # a required property missing: our bug
        raise RuntimeError(f"the exported SPDX 3 document is not complete: {exc}") from exc
    document: dict[str, Any] = json.loads(buffer.getvalue())
    return document


def _spdx() -> ModuleType:
    """spdx-python-model's SPDX 3.0.1 bindings, or the error naming the extra."""
    binding: ModuleType = require("spdx_python_model", "the SPDX 3 export").v3_0_1
    return binding


class _Builder:
    """The SPDX objects of one run: every element shares one CreationInfo."""

    def __init__(self, facts: RunFacts, spdx: ModuleType) -> None:
        self.facts = facts
        self.spdx = spdx
        self.agent = spdx.SoftwareAgent(spdxId=self.iri("agent"), name="mlspec-attest")
        self.info = spdx.CreationInfo(
            specVersion=SPDX_VERSION,
            created=parse_rfc3339(facts.verified_at),
            createdBy=[self.agent],
            comment=f"verified by mlspec-attest {__version__}",
        )
        self.agent.creationInfo = self.info
        self.elements: list[Any] = [self.agent]

    def iri(self, name: str) -> str:
        f = self.facts
        return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, f'{f.run_id}|{f.policy_digest}|{name}')}"

    def hash(self, value: str, comment: str | None = None) -> Any:
        h = self.spdx.Hash(algorithm=self.spdx.HashAlgorithm.sha256, hashValue=value)
        if comment:
            h.comment = comment
        return h

    def add(self, element: Any) -> Any:
        element.creationInfo = self.info
        self.elements.append(element)
        return element

    def objects(self) -> list[Any]:
        spdx, facts = self.spdx, self.facts
        model = self.model() if facts.model is not None else None
        datasets = {ds.artifact.name: (ds, self.dataset(ds.artifact)) for ds in facts.datasets}
        evidence = [self.attestation(a) for a in facts.attestations]
        if model is not None:
            self.relate(
                model, "trainedOn", [e for d, e in datasets.values() if d.roles & TRAIN_ROLES]
            )
            self.relate(
                model, "testedOn", [e for d, e in datasets.values() if d.roles & TEST_ROLES]
            )
            self.relate(model, "hasEvidence", evidence)
        document = self.add(
            spdx.SpdxDocument(
                spdxId=self.iri("document"),
                name=f"mlspec-attest run {facts.run_id}",
                comment=f"policy {facts.policy_name} {facts.policy_digest}: PASSED",
                profileConformance=[
                    spdx.ProfileIdentifierType.core,
                    spdx.ProfileIdentifierType.software,
                    spdx.ProfileIdentifierType.ai,
                    spdx.ProfileIdentifierType.dataset,
                ],
            )
        )
        document.rootElement = [model] if model is not None else []
        document.element = [e for e in self.elements if e is not document]
        return self.elements

    def model(self) -> Any:
        spdx, facts = self.spdx, self.facts
        assert facts.model is not None
        pkg = self.add(self.package(spdx.ai_AIPackage, "model", facts.model))
        pkg.software_primaryPurpose = spdx.software_SoftwarePurpose.model
        pkg.ai_hyperparameter = [
            spdx.DictionaryEntry(key=k, value=str(v))
            for k, v in sorted(facts.parameters_of("train").items())
        ]
        pkg.ai_metric = [
            spdx.DictionaryEntry(key=_metric_key(m), value=repr(m.value)) for m in facts.metrics
        ]
        return pkg

    def dataset(self, artifact: Artifact) -> Any:
        spdx = self.spdx
        pkg = self.add(self.package(spdx.dataset_DatasetPackage, f"data:{artifact.name}", artifact))
        pkg.software_primaryPurpose = spdx.software_SoftwarePurpose.data
        pkg.dataset_datasetType = [spdx.dataset_DatasetType.noAssertion]
        return pkg

    def package(self, cls: Any, key: str, artifact: Artifact) -> Any:
        pkg = cls(spdxId=self.iri(key), name=artifact.name)
        pkg.builtTime = parse_rfc3339(self.facts.verified_at)
        pkg.releaseTime = parse_rfc3339(self.facts.verified_at)
        pkg.originatedBy = [self.agent]
        pkg.software_downloadLocation = "NOASSERTION"
        pkg.software_packageVersion = self.facts.run_id
        if "sha256" in artifact.digest:
            pkg.verifiedUsing = [self.hash(artifact.digest["sha256"])]
        return pkg

    def attestation(self, att: Any) -> Any:
        spdx = self.spdx
        comment = "sha256 of the DSSE payload (the signed in-toto statement), not of the file"
        file = self.add(spdx.software_File(spdxId=self.iri(f"attestation:{att.uri}"), name=att.uri))
        file.software_primaryPurpose = spdx.software_SoftwarePurpose.evidence
        file.comment = f"stage {att.stage}: in-toto statement signed by {att.signer}"
        file.verifiedUsing = [self.hash(att.payload_sha256, comment)]
        return file

    def relate(self, source: Any, kind: str, targets: list[Any]) -> None:
        if not targets:
            return
        spdx = self.spdx
        self.add(
            spdx.Relationship(
                spdxId=self.iri(f"rel:{kind}"),
                from_=source,
                relationshipType=getattr(spdx.RelationshipType, kind),
                to=targets,
            )
        )


def _metric_key(m: Metric) -> str:
    if m.slice is None:
        return f"{m.stage}:{m.name}"
    return f"{m.stage}:{m.slice[0]}={m.slice[1]}:{m.name}"
