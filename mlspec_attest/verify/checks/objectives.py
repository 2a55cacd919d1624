"""Objectives: the signed launch criteria, evaluated against the attested metrics.

The objectives stage signs the objectives document as a product and records its
digest (``details.objectives``); the document is read from the store by that
digest, and its criteria are evaluated on the metrics of the stages they name —
``change`` criteria against the ``--baseline`` of the stage they compare.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlspec_attest.errors import MlspecError
from mlspec_attest.formats.inputs import named
from mlspec_attest.policy.criteria import Evidence, criterion_kind
from mlspec_attest.policy.model import Policy
from mlspec_attest.policy.objectives import Objectives, evaluate_objectives, load_objectives_text
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.accepted import AcceptedAttestation, Baseline
from mlspec_attest.verify.checks.digests import short
from mlspec_attest.verify.checks.records import Chosen, stage_records
from mlspec_attest.verify.report import Check, VerificationReport


def check_objectives(
    policy: Policy,
    chosen: Chosen,
    store: AttestationStore,
    report: VerificationReport,
    baseline: Baseline | None,
) -> None:
    stage = policy.objectives_stage
    if stage is None:
        return
    att = chosen.get(stage)
    if att is None:
        if policy.objectives_required:
            report.fail(
                Check.OBJECTIVES_DOCUMENT,
                stage,
                "no verified objectives stage: launch criteria cannot be checked",
                expected=f"a valid attestation of {stage!r} carrying the objectives document",
                found="none",
                remedy="fix the failures of the objectives stage above",
            )
        return
    objectives = signed_objectives(stage, att, store, report)
    if objectives is not None:
        evaluate(objectives, chosen, report, baseline)


def signed_objectives(
    stage: str, att: AcceptedAttestation, store: AttestationStore, report: VerificationReport
) -> Objectives | None:
    """The objectives document the stage signed; None (reported) when it cannot be had."""
    record = att.statement.metadata.details.get("objectives")
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str):
        report.fail(
            Check.OBJECTIVES_DOCUMENT,
            stage,
            "the objectives attestation records no objectives document",
            expected="details.objectives with the document's sha256",
            found="none",
            remedy=f"sign the objectives stage with the objectives YAML as {named('product_one')}",
        )
        return None
    product = next((p for p in att.statement.products if p.name == record.get("artifact")), None)
    if product is None or product.digest.get("sha256") != record["sha256"]:
        report.fail(
            Check.OBJECTIVES_DOCUMENT,
            stage,
            "the objectives record does not match the stage's products",
            expected=f"product {record.get('artifact')} with sha256 {record['sha256'][:16]}…",
            found=short(product.digest if product else None),
            remedy="re-sign the objectives stage",
        )
        return None
    blob = store.get_blob(record["sha256"])
    if blob is None:
        report.fail(
            Check.OBJECTIVES_DOCUMENT,
            stage,
            "the signed objectives document is not in the store",
            expected=f"blobs/sha256/{record['sha256']}",
            found="missing or corrupted",
            remedy="copy the store with its blobs/ folder, or re-sign the objectives stage",
        )
        return None
    try:
        return load_objectives_text(blob.decode("utf-8"), what=f"objectives {record['artifact']}")
    except (MlspecError, UnicodeDecodeError) as exc:
        report.fail(
            Check.OBJECTIVES_DOCUMENT,
            stage,
            f"the signed objectives document is invalid: {exc}",
            remedy="fix the objectives document and re-run the pipeline",
        )
        return None


def evaluate(
    objectives: Objectives,
    chosen: Chosen,
    report: VerificationReport,
    baseline: Baseline | None,
) -> None:
    """Every criterion's result goes to the report; each one that does not hold fails."""
    evidence = {
        name: Evidence(
            name, a.statement.metadata.metrics, a.statement.metadata.slices, a.payload_digest
        )
        for name, a in chosen.items()
    }
    metrics = baseline_metrics(objectives, baseline, report)
    for result in evaluate_objectives(
        objectives, evidence, baseline=metrics, stages=stage_records(chosen)
    ):
        report.objectives.append(result)
        if not result.passed:
            report.fail(
                Check.OBJECTIVE,
                result.stage,
                f"launch criterion {result.id!r} ({result.kind}): {result.message}",
                expected=result.threshold or "criterion holds",
                found=", ".join(f"{k}={v:.6g}" for k, v in result.observed.items())
                or result.message,
                remedy="the model does not meet the signed objectives; do not launch "
                "(improve the model, or have the objectives owner sign new objectives)",
            )


def baseline_metrics(
    objectives: Objectives, baseline: Baseline | None, report: VerificationReport
) -> Mapping[str, float] | None:
    """The baseline's metrics, if it is of the stage every ``change`` criterion compares."""
    if baseline is None:
        return None
    wrong = sorted(
        {c["stage"] for c in objectives.criteria if criterion_kind(c) == "change"}
        - {baseline.stage}
    )
    for stage in wrong:
        report.fail(
            Check.BASELINE,
            stage,
            f"the baseline is an attestation of {baseline.stage!r}, but the objectives "
            f"compare {stage!r} with its baseline",
            expected=f"a {stage!r} attestation of the baseline run",
            found=f"{baseline.stage} of run {baseline.run_id}",
            remedy=f"pass {named('baseline')} with the baseline run's {stage!r} attestation",
        )
    return None if wrong else baseline.metrics
