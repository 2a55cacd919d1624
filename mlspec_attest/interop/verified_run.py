"""What a bill of materials says about a run, read from the attestations ``verify`` counted.

:func:`verified_run` verifies a run with the library's own verifier and, when it passes,
returns a :class:`RunFacts`: the model, the datasets, the stages (the pipeline's
formulation), the performance metrics per slice of the evaluation and test stages, and
every attestation by the sha256 of its DSSE payload. Nothing is read from a stage the
verifier did not accept, and nothing is hashed again here: the digests are the ones the
signed statements carry (deploy artifacts are re-hashed by the verifier when given).

The CycloneDX (:mod:`~mlspec_attest.interop.cyclonedx`) and SPDX 3
(:mod:`~mlspec_attest.interop.spdx3`) writers translate these facts; docs/exports.md maps
each field to the attestation it comes from.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from msgspec import Struct, field
from msgspec.structs import replace

from mlspec_attest.formats.fsutil import atomic_write
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.signer import PublicKeyVerifier
from mlspec_attest.formats.stages import StageKind
from mlspec_attest.formats.statement import ResourceDescriptor
from mlspec_attest.policy.model import StagePolicy
from mlspec_attest.policy.signed import SignedPolicy
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.accepted import AcceptedAttestation, StageEvidence
from mlspec_attest.verify.pipeline import PipelineVerifier
from mlspec_attest.verify.report import VerificationReport

MODEL_ROLE = "model"
#: Roles that name a dataset (docs/stages.md's typical roles), besides every split.
DATASET_ROLES = frozenset({"raw", "features", "train", "validation", "holdback"})
#: Stage kinds whose metrics describe the model's performance (the model card's).
PERFORMANCE_KINDS = (StageKind.EVALUATE.value, StageKind.TEST.value)
#: materialRows formats that are not a table (a model, a report): not a dataset.
_NOT_TABULAR = frozenset({"none"})


class AttestationRef(Struct, frozen=True):
    """One accepted attestation: where it is in the store, its payload digest, its signer."""

    stage: str
    uri: str
    payload_sha256: str
    signer: str


class Artifact(Struct, frozen=True):
    """A file or directory the pipeline attested, with the digests it was signed with."""

    name: str
    digest: dict[str, str]
    size: int | None = None


class Dataset(Struct):
    """A dataset some stage read or wrote: roles it played, stages that used it, its rows."""

    artifact: Artifact
    roles: set[str] = field(default_factory=set)
    stages: set[str] = field(default_factory=set)
    rows: int | None = None


class Metric(Struct, frozen=True):
    """One performance metric of one stage, overall (``slice`` None) or of one slice."""

    stage: str
    name: str
    value: float
    slice: tuple[str, str] | None = None
    count: int | None = None
    interval: tuple[float, float] | None = None


class Stage(Struct, frozen=True):
    """One stage of the run as the verifier accepted it."""

    name: str
    kind: str
    after: tuple[str, ...]
    started_on: str
    finished_on: str
    materials: tuple[Artifact, ...]
    products: tuple[Artifact, ...]
    parameters: dict[str, Any]
    signers: tuple[str, ...]
    attestations: tuple[AttestationRef, ...]


class RunFacts(Struct, frozen=True):
    """Everything an exported bill of materials says, all from accepted attestations."""

    run_id: str
    policy_name: str
    policy_digest: str
    verified_at: str
    model: Artifact | None
    model_stage: str | None
    datasets: tuple[Dataset, ...]
    stages: tuple[Stage, ...]
    metrics: tuple[Metric, ...]

    @property
    def attestations(self) -> tuple[AttestationRef, ...]:
        return tuple(a for s in self.stages for a in s.attestations)

    def parameters_of(self, kind: str) -> dict[str, Any]:
        """The parameters of every stage of ``kind`` (the training hyperparameters)."""
        out: dict[str, Any] = {}
        for stage in self.stages:
            if stage.kind == kind:
                out.update(stage.parameters)
        return out


class _CapturingVerifier(PipelineVerifier):
    """The pipeline verifier, keeping each stage's agreeing attestations as it selects them
    (one verification: the export reads exactly what the verdict counted)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.evidence: dict[str, StageEvidence] = {}

    def select(
        self, stage: StagePolicy, accepted: list[AcceptedAttestation]
    ) -> StageEvidence | None:
        picked = super().select(stage, accepted)
        if picked is not None:
            self.evidence[stage.name] = picked
        return picked


def verified_run(
    signed: SignedPolicy,
    owner_keys: Sequence[PublicKeyVerifier],
    store: AttestationStore,
    *,
    run_id: str | None = None,
    artifacts: Mapping[str, Path] | None = None,
    now: datetime | None = None,
) -> tuple[VerificationReport, RunFacts | None]:
    """Verify one run; its facts when it passed (None for a denial, never an exception).

    Without ``artifacts`` the policy's deploy section is left out, as ``export intoto``
    does: the document describes the attested chain, and deploy bytes are checked at
    deploy time (a note in the report says so).
    """
    checked = signed
    if not artifacts and signed.policy.deploy:
        checked = replace(signed, policy=replace(signed.policy, deploy={}))
    verifier = _CapturingVerifier(
        checked, list(owner_keys), store, run_id=run_id, artifacts=artifacts, now=now
    )
    report = verifier.run()
    if checked is not signed:
        report.notes.append(
            f"export: deploy artifacts were not re-hashed (no {named('artifacts')} given)"
        )
    if not report.passed or report.run_id is None:
        return report, None
    return report, _facts(signed, verifier.evidence, report)


def _facts(
    signed: SignedPolicy, evidence: Mapping[str, StageEvidence], report: VerificationReport
) -> RunFacts:
    assert report.run_id is not None
    stages = tuple(
        _stage(p, evidence[p.name], report.run_id)
        for p in signed.policy.stages
        if p.name in evidence
    )
    chosen = {name: ev.representative for name, ev in evidence.items()}
    model, model_stage = _model(signed, chosen)
    return RunFacts(
        run_id=report.run_id,
        policy_name=report.policy_name,
        policy_digest=report.policy_digest,
        verified_at=report.verified_at,
        model=model,
        model_stage=model_stage,
        datasets=_datasets(chosen, model),
        stages=stages,
        metrics=tuple(m for s in stages for m in _metrics(s, chosen[s.name])),
    )


def _artifact(d: ResourceDescriptor) -> Artifact:
    size = d.annotations.get("mlspec.size")
    return Artifact(d.name, dict(d.digest), size if isinstance(size, int) else None)


def _stage(policy: StagePolicy, ev: StageEvidence, run_id: str) -> Stage:
    st = ev.representative.statement
    refs = tuple(
        AttestationRef(
            policy.name,
            f"runs/{run_id}/{a.source.name}",
            a.payload_digest.removeprefix("sha256:"),
            a.functionary.name,
        )
        for a in ev.attestations
    )
    return Stage(
        name=policy.name,
        kind=st.metadata.kind,
        after=tuple(policy.after),
        started_on=min(a.statement.metadata.started_on for a in ev.attestations),
        finished_on=max(a.statement.metadata.finished_on for a in ev.attestations),
        materials=tuple(_artifact(m) for m in st.materials),
        products=tuple(_artifact(p) for p in st.products),
        parameters=dict(st.metadata.parameters),
        signers=tuple(sorted({a.functionary.name for a in ev.attestations})),
        attestations=refs,
    )


def _model(
    signed: SignedPolicy, chosen: Mapping[str, AcceptedAttestation]
) -> tuple[Artifact | None, str | None]:
    """The model: the policy's deploy artifact ``model`` if it declares one, else the
    product in role ``model`` of the last stage (policy order) that produced one."""
    deploy = signed.policy.deploy.get(MODEL_ROLE)
    if deploy is not None and deploy.stage in chosen:
        for p in chosen[deploy.stage].statement.products:
            if p.name == deploy.product:
                return _artifact(p), deploy.stage
    found: tuple[Artifact | None, str | None] = (None, None)
    for stage in signed.policy.stages:
        att = chosen.get(stage.name)
        if att is None:
            continue
        name = att.statement.metadata.roles.get(MODEL_ROLE)
        product = next((p for p in att.statement.products if p.name == name), None)
        if product is not None:
            found = (_artifact(product), stage.name)
    return found


def _datasets(
    chosen: Mapping[str, AcceptedAttestation], model: Artifact | None
) -> tuple[Dataset, ...]:
    """Artifacts in a dataset role, every split, and every material read as a table."""
    found: dict[tuple[str, str], Dataset] = {}

    def add(d: ResourceDescriptor, stage: str, role: str | None, rows: Any = None) -> None:
        art = _artifact(d)
        if model is not None and art.name == model.name and art.digest == model.digest:
            return
        entry = found.setdefault((art.name, art.digest.get("sha256", "")), Dataset(art))
        entry.stages.add(stage)
        if role:
            entry.roles.add(role)
        if isinstance(rows, int) and entry.rows is None:
            entry.rows = rows

    for stage, att in sorted(chosen.items()):
        meta = att.statement.metadata
        by_name = {d.name: d for d in (*att.statement.materials, *att.statement.products)}
        for role, name in meta.roles.items():
            if role in DATASET_ROLES and name in by_name:
                add(by_name[name], stage, role)
        splits = _mapping(_mapping(meta.details.get("leakage")).get("splits"))
        for role, split in splits.items():
            artifact = _mapping(split).get("artifact")
            if isinstance(artifact, str) and artifact in by_name:
                add(by_name[artifact], stage, str(role), _mapping(split).get("rows"))
        read = _mapping(_mapping(meta.details.get("materialRows")).get("materials"))
        for name, rows in read.items():
            fmt = _mapping(rows).get("format")
            if isinstance(fmt, str) and fmt not in _NOT_TABULAR and name in by_name:
                add(by_name[name], stage, None, _mapping(rows).get("rows"))
    return tuple(sorted(found.values(), key=lambda d: d.artifact.name))


def _metrics(stage: Stage, att: AcceptedAttestation) -> list[Metric]:
    if stage.kind not in PERFORMANCE_KINDS:
        return []
    meta = att.statement.metadata
    out = [Metric(stage.name, k, float(v)) for k, v in sorted(meta.metrics.items())]
    for family, members in sorted(_mapping(meta.slices).items()):
        for key, entry in sorted(_mapping(members).items()):
            e = _mapping(entry)
            count = e.get("count")
            intervals = _mapping(e.get("confidenceIntervals"))
            for name, value in sorted(_mapping(e.get("metrics")).items()):
                if isinstance(value, int | float) and not isinstance(value, bool):
                    out.append(
                        Metric(
                            stage.name,
                            str(name),
                            float(value),
                            (str(family), str(key)),
                            count if isinstance(count, int) else None,
                            _interval(intervals.get(name)),
                        )
                    )
    return out


def _interval(doc: Any) -> tuple[float, float] | None:
    low, high = _mapping(doc).get("low"), _mapping(doc).get("high")
    if isinstance(low, int | float) and isinstance(high, int | float):
        return float(low), float(high)
    return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class VerifiedExport(Struct, frozen=True):
    """A document written from a verified run; ``document`` is None when it was denied."""

    report: VerificationReport
    document: dict[str, Any] | None = None
    path: Path | None = None

    @property
    def exported(self) -> bool:
        return self.document is not None


def export_verified(
    document_of: Callable[[RunFacts], dict[str, Any]],
    signed: SignedPolicy,
    owner_keys: Sequence[PublicKeyVerifier],
    store: AttestationStore,
    *,
    out: Path | None = None,
    run_id: str | None = None,
    artifacts: Mapping[str, Path] | None = None,
    now: datetime | None = None,
) -> VerifiedExport:
    """Verify one run and, if it passes, return (and write to ``out``) ``document_of`` its
    facts. Never raises for a denial: the result's ``report`` says why nothing was written."""
    report, facts = verified_run(
        signed, owner_keys, store, run_id=run_id, artifacts=artifacts, now=now
    )
    if facts is None:
        return VerifiedExport(report)
    document = document_of(facts)
    if out is not None:
        atomic_write(out, json.dumps(document, indent=2).encode() + b"\n")
    return VerifiedExport(report, document, out)
