"""The ML-specific verification steps: what an ML pipeline must prove before launch.

Run by :class:`mlspec_attest.verify.pipeline.PipelineVerifier` after the generic in-toto
checks, on the attestations it accepted (one per stage):

* objectives: the signed objectives document, evaluated against the metrics
  attested by the stages its criteria name (optionally against a baseline);
* separation: the hold-back split is consumed by ``test`` and read by no
  transform/train/evaluate stage; test and evaluation used the same model,
  different data, in that order;
* leakage: row overlaps between splits recomputed from the stored digest sets;
* data validation: passed against the named schema version, nothing deprecated;
* requirements: CEL expressions over the stage records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlspec_attest.errors import MlspecError
from mlspec_attest.evidence.rowsets import ContentFinding, HoldbackRows
from mlspec_attest.formats.schemas import schema_errors
from mlspec_attest.policy.celexpr import ExpressionError, compile_expression
from mlspec_attest.policy.model import Policy, parse_rfc3339
from mlspec_attest.policy.objectives import (
    Evidence,
    Objectives,
    as_doubles,
    criterion_kind,
    evaluate_objectives,
    load_objectives_text,
)
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.report import Check, VerificationReport

if TYPE_CHECKING:
    from mlspec_attest.verify.accepted import AcceptedAttestation, Baseline

Chosen = Mapping[str, "AcceptedAttestation"]


def _same_content(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Two DigestSets name the same bytes: some algorithm appears in both, with equal values."""
    common = set(a) & set(b)
    return bool(common) and all(a[k] == b[k] for k in common)


LEAKAGE_REMEDIES = {
    "overlap-exceeds-tolerance": "rows are shared between splits: de-duplicate before splitting "
    "and re-run from split",
    "attested-count-wrong": "the signed overlap counts do not match the stored digest sets; "
    "re-run the split stage",
    "digest-set-missing": "copy the store with its blobs/ folder, or re-run the split stage",
    "digest-set-corrupt": "the stored digest set is damaged; re-run the split stage",
    "split-missing": "sign the split stage with --split ROLE=PATH for every split the policy names",
    "canonicalization-retired": "re-run the split stage, and every stage after it, with this "
    "version of mlspec-attest (mlspec-rows/v2; docs/leakage.md, backward compatibility)",
    "record-malformed": "the signed leakage record is not a leakage/v2 document; re-run the "
    "split stage",
}


def _short(digest: Mapping[str, str] | None) -> str:
    if not digest:
        return "none"
    return "sha256:" + digest.get("sha256", "?")[:16] + "…"


def stage_records(chosen: Chosen) -> dict[str, Any]:
    """The ``stages`` activation for CEL: stage name -> its attested record."""
    out: dict[str, Any] = {}
    for name, att in chosen.items():
        m = att.statement.metadata
        out[name] = {
            "kind": m.kind,
            "metrics": as_doubles(m.metrics),
            "parameters": dict(m.parameters),
            "infrastructure": dict(m.infrastructure),
            "details": dict(m.details),
            "roles": dict(m.roles),
            "slices": {
                family: {
                    value: {**entry, "metrics": as_doubles(entry.get("metrics", {}))}
                    for value, entry in members.items()
                }
                for family, members in m.slices.items()
            },
        }
    return out


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
    record = att.statement.metadata.details.get("objectives")
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str):
        report.fail(
            Check.OBJECTIVES_DOCUMENT,
            stage,
            "the objectives attestation records no objectives document",
            expected="details.objectives with the document's sha256",
            found="none",
            remedy="sign the objectives stage with the objectives YAML as a --product",
        )
        return
    product = next((p for p in att.statement.products if p.name == record.get("artifact")), None)
    if product is None or product.digest.get("sha256") != record["sha256"]:
        report.fail(
            Check.OBJECTIVES_DOCUMENT,
            stage,
            "the objectives record does not match the stage's products",
            expected=f"product {record.get('artifact')} with sha256 {record['sha256'][:16]}…",
            found=_short(product.digest if product else None),
            remedy="re-sign the objectives stage",
        )
        return
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
        return
    try:
        objectives = load_objectives_text(
            blob.decode("utf-8"), what=f"objectives {record['artifact']}"
        )
    except (MlspecError, UnicodeDecodeError) as exc:
        report.fail(
            Check.OBJECTIVES_DOCUMENT,
            stage,
            f"the signed objectives document is invalid: {exc}",
            remedy="fix the objectives document and re-run the pipeline",
        )
        return
    evidence = {
        name: Evidence(
            name, a.statement.metadata.metrics, a.statement.metadata.slices, a.payload_digest
        )
        for name, a in chosen.items()
    }
    metrics = _baseline_for(objectives, baseline, report)
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


def _baseline_for(
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
            remedy=f"pass --baseline with the baseline run's {stage!r} attestation",
        )
    return None if wrong else baseline.metrics


def _role_digest(
    att: AcceptedAttestation, role: str, side: str
) -> tuple[str | None, dict[str, str] | None]:
    name = att.statement.metadata.roles.get(role)
    if name is None:
        return None, None
    items = att.statement.materials if side == "materials" else att.statement.products
    found = next((dict(i.digest) for i in items if i.name == name), None)
    return name, found


def check_separation(policy: Policy, chosen: Chosen, report: VerificationReport) -> None:
    rule = policy.separation
    if rule is None:
        return
    split, evaluate, test = (
        chosen.get(rule.split),
        chosen.get(rule.evaluate),
        chosen.get(rule.test),
    )
    if split is None or test is None or evaluate is None:
        missing = [
            n
            for n, a in ((rule.split, split), (rule.evaluate, evaluate), (rule.test, test))
            if a is None
        ]
        report.fail(
            Check.HOLDBACK_NOT_TESTED,
            rule.test,
            "cannot prove evaluation/test separation",
            expected=f"verified attestations of {rule.split}, {rule.evaluate} and {rule.test}",
            found=f"missing: {', '.join(missing)}",
            remedy="fix the stage failures above",
        )
        return
    hb_name, hb_digest = _role_digest(split, rule.holdback_role, "products")
    if hb_digest is None:
        report.fail(
            Check.HOLDBACK_NOT_TESTED,
            rule.split,
            f"split records no {rule.holdback_role!r} product",
            expected=f"--role {rule.holdback_role}=PATH on a product of {rule.split}",
            found=f"roles {sorted(split.statement.metadata.roles)}",
            remedy=f"sign the split stage with --role {rule.holdback_role}=<hold-back file>",
        )
        return
    t_name, t_digest = _role_digest(test, rule.holdback_role, "materials")
    if t_digest != hb_digest:
        report.fail(
            Check.HOLDBACK_NOT_TESTED,
            rule.test,
            "test did not consume the hold-back split produced by split",
            expected=f"material with role {rule.holdback_role!r} = {hb_name} ({_short(hb_digest)})",
            found=f"{t_name or 'no such role'} ({_short(t_digest)})",
            remedy=f"run {rule.test} on exactly the hold-back file {rule.split} produced, with --role {rule.holdback_role}=…",
        )
    banned = set(rule.not_read_by)
    for name, att in chosen.items():
        if name == rule.test or not (name in banned or att.statement.metadata.kind in banned):
            continue
        for m in att.statement.materials:
            if m.name == hb_name or _same_content(m.digest, hb_digest):
                report.fail(
                    Check.HOLDBACK_READ,
                    name,
                    f"stage read the hold-back data ({m.name})",
                    expected=f"no material equal to {hb_name} ({_short(hb_digest)})",
                    found=f"material {m.name} ({_short(m.digest)})",
                    remedy="hold-back data may only be read by the test stage; re-split and retrain",
                )
    _, test_model = _role_digest(test, rule.model_role, "materials")
    _, eval_model = _role_digest(evaluate, rule.model_role, "materials")
    if test_model is None or eval_model is None or test_model != eval_model:
        report.fail(
            Check.TEST_MODEL,
            rule.test,
            "test and evaluation did not use the same model",
            expected=f"{rule.model_role!r} material of {rule.evaluate}: {_short(eval_model)}",
            found=f"{rule.model_role!r} material of {rule.test}: {_short(test_model)}",
            remedy=f"record the model with --role {rule.model_role}=… in both stages and test the evaluated model",
        )
    t_start = parse_rfc3339(test.statement.metadata.started_on)
    e_end = parse_rfc3339(evaluate.statement.metadata.finished_on)
    if t_start < e_end:
        report.fail(
            Check.TEST_ORDER,
            rule.test,
            f"test started before {rule.evaluate} finished",
            expected=f"start at or after {evaluate.statement.metadata.finished_on}",
            found=f"started {test.statement.metadata.started_on}",
            remedy="run the hold-back test only after evaluation is complete",
        )
    _, eval_data = _role_digest(evaluate, rule.validation_role, "materials")
    if eval_data is not None and t_digest is not None and eval_data == t_digest:
        report.fail(
            Check.TEST_DATA_REUSED,
            rule.test,
            "test used the same data as evaluation",
            expected="hold-back data different from the evaluation data",
            found=f"both {_short(t_digest)}",
            remedy="evaluate on the validation split, test on the hold-back split",
        )


def check_leakage(
    policy: Policy, chosen: Chosen, store: AttestationStore, report: VerificationReport
) -> None:
    """The split stage's leakage proof, then the hold-back content check.

    The content check (:func:`check_holdback_content`) belongs to separation but
    needs the store, which only this check is given.
    """
    check_holdback_content(policy, chosen, store, report)
    rule = policy.leakage
    if rule is None:
        return
    att = chosen.get(rule.stage)
    if att is None:
        return  # the stage failure is already reported
    record = att.statement.metadata.details.get("leakage")
    if not isinstance(record, dict):
        report.fail(
            Check.LEAKAGE,
            rule.stage,
            "the split attestation carries no leakage proof",
            expected="details.leakage with per-split row digest sets",
            found="none",
            remedy="sign the split stage with --split ROLE=PATH for each split",
        )
        return
    _check_leakage_binding(att, record, rule.stage, report)
    from mlspec_attest.evidence.leakage import check_leakage as recompute

    try:
        findings = recompute(
            record,
            store,
            pairs=rule.pairs,
            tolerance=rule.tolerance,
            roles=set(att.statement.metadata.roles),
        )
    except MlspecError as exc:
        report.fail(
            Check.LEAKAGE,
            rule.stage,
            f"leakage proof unreadable: {exc.message}",
            remedy="re-sign the split stage",
        )
        return
    for f in findings:
        report.fail(
            Check.LEAKAGE,
            rule.stage,
            f"{f.message} [{f.kind}]",
            expected=f.expected,
            found=f.found,
            remedy=LEAKAGE_REMEDIES.get(
                f.kind, "re-sign the split stage with mlspec-attest sign --split"
            ),
        )


def _check_leakage_binding(
    att: AcceptedAttestation, record: dict[str, Any], stage: str, report: VerificationReport
) -> None:
    """Every split of the proof is a signed product of the stage, under its role."""
    products = {p.name for p in att.statement.products}
    roles = att.statement.metadata.roles
    splits = record.get("splits")
    for role, split in sorted(splits.items() if isinstance(splits, dict) else []):
        artifact = split.get("artifact") if isinstance(split, dict) else None
        if roles.get(role) != artifact:
            report.fail(
                Check.LEAKAGE,
                stage,
                f"leakage proof for {role!r} covers {artifact!r}, "
                f"but the stage's {role!r} role is {roles.get(role)!r}",
                expected=str(roles.get(role)),
                found=str(artifact),
                remedy="re-sign the split stage",
            )
        if artifact not in products:
            report.fail(
                Check.LEAKAGE,
                stage,
                f"leakage proof for {role!r} names {artifact!r}, not a product",
                expected="each proven split is a product of the split stage",
                found=str(sorted(products)),
                remedy="re-sign the split stage",
            )


def check_holdback_content(
    policy: Policy, chosen: Chosen, store: AttestationStore, report: VerificationReport
) -> None:
    """No stage in ``notReadBy`` read rows of the hold-back split, in any file or format.

    The hold-back split's row digest sets (signed by the split stage) are
    intersected with the row sets of every material of those stages (signed by
    each stage, ``details.materialRows``). Stages the policy orders before the
    split are exempt (they read the data before it was split), and so are
    materials that are the split stage's own products (the leakage proof
    governs those). Evidence that is missing or unusable denies too.
    """
    rule = policy.separation
    split = chosen.get(rule.split) if rule else None
    if rule is None or split is None or rule.holdback_role not in split.statement.metadata.roles:
        return  # the separation check reports these
    stages = _content_stages(policy, chosen)
    if not stages:
        return
    from mlspec_attest.evidence.rowsets import holdback_sets

    metadata = split.statement.metadata
    holdback = holdback_sets(
        metadata.details.get("leakage"),
        store,
        role=rule.holdback_role,
        products={p.name: p.digest for p in split.statement.products},
        roles=metadata.roles,
    )
    if not isinstance(holdback, HoldbackRows):
        _report_content(report, rule.split, holdback)
        return
    # The splits the proof covers (the record is schema-checked by holdback_sets).
    proven = {entry["artifact"] for entry in metadata.details["leakage"]["splits"].values()}
    outputs = [p.digest for p in split.statement.products if p.name in proven]
    for name, att in stages:
        _check_stage_content(name, att, holdback, outputs, store, report)


def _content_stages(policy: Policy, chosen: Chosen) -> list[tuple[str, AcceptedAttestation]]:
    rule = policy.separation
    assert rule is not None
    banned = set(rule.not_read_by)
    upstream = policy.predecessors(rule.split) | {rule.split, rule.test}
    return [
        (name, att)
        for name, att in sorted(chosen.items())
        if (name in banned or att.statement.metadata.kind in banned) and name not in upstream
    ]


def _check_stage_content(
    name: str,
    att: AcceptedAttestation,
    holdback: HoldbackRows,
    outputs: Sequence[Mapping[str, str]],
    store: AttestationStore,
    report: VerificationReport,
) -> None:
    from mlspec_attest.evidence.rowsets import stage_findings

    materials = {m.name: m.digest for m in att.statement.materials}
    exempt = [n for n, d in materials.items() if any(_same_content(d, o) for o in outputs)]
    findings = stage_findings(
        att.statement.metadata.details, materials, holdback, store, exempt=exempt
    )
    for finding in findings:
        _report_content(report, name, finding)


def _report_content(report: VerificationReport, stage: str, finding: ContentFinding) -> None:
    if finding.kind == "rows-read":
        report.fail(
            Check.HOLDBACK_READ,
            stage,
            finding.message,
            expected=finding.expected,
            found=finding.found,
            remedy="hold-back data may only be read by the test stage; re-split, retrain "
            "and re-evaluate without it",
        )
        return
    report.fail(
        Check.HOLDBACK_EVIDENCE,
        stage,
        finding.message,
        expected=finding.expected,
        found=finding.found,
        remedy="re-sign the stage with this version of mlspec-attest, which records the row "
        "digest sets of every split and material (docs/leakage.md)",
    )


def check_data_validation(policy: Policy, chosen: Chosen, report: VerificationReport) -> None:
    rule = policy.data_validation
    if rule is None:
        return
    att = chosen.get(rule.stage)
    if att is None:
        return
    record = att.statement.metadata.details.get("validation")
    if not isinstance(record, dict):
        report.fail(
            Check.DATA_VALIDATION,
            rule.stage,
            "the validation attestation carries no validation record",
            expected="details.validation (from `mlspec-attest validate`)",
            found="none",
            remedy="sign the validate stage with --detail validation=REPORT.json",
        )
        return
    if not _validation_record_usable(record, att, rule.stage, report):
        return
    schema: dict[str, Any] = record["schema"]
    name, version = schema.get("name"), schema.get("version")
    if record["passed"] is not True:
        report.fail(
            Check.DATA_VALIDATION,
            rule.stage,
            "data validation did not pass",
            expected="passed: true",
            found=f"{record.get('violationCount', '?')} violation(s)",
            remedy="fix the data (or the schema, through review) and re-run from validate",
        )
    if rule.schema is not None and name != rule.schema:
        report.fail(
            Check.DATA_VALIDATION,
            rule.stage,
            "validated against a different schema",
            expected=f"schema {rule.schema!r}",
            found=f"schema {name!r}",
            remedy=f"validate against {rule.schema}",
        )
    if rule.version is not None and str(version) != rule.version:
        report.fail(
            Check.DATA_VALIDATION,
            rule.stage,
            "validated against a different schema version",
            expected=f"version {rule.version}",
            found=f"version {version}",
            remedy=f"validate against {rule.schema or name} version {rule.version}",
        )
    if not rule.forbid_deprecated:
        return
    if schema.get("deprecated"):
        report.fail(
            Check.DEPRECATED_DATA,
            rule.stage,
            f"schema {name!r} version {version} is deprecated",
            expected="a current schema version",
            found="deprecated: true",
            remedy="data described only by a deprecated schema must not be trained on; migrate the data",
        )
    deprecated = set(record.get("deprecatedDatasets", [])) | set(
        schema.get("deprecatedDatasets", [])
    )
    train = chosen.get(rule.train_stage) if rule.train_stage else None
    if train is not None and deprecated:
        for m in train.statement.materials:
            if f"sha256:{m.digest.get('sha256')}" in deprecated:
                report.fail(
                    Check.DEPRECATED_DATA,
                    train.statement.name,
                    f"trained on deprecated dataset {m.name}",
                    expected="no material listed in the schema's deprecatedDatasets",
                    found=f"{m.name} ({_short(m.digest)})",
                    remedy="retrain on current data",
                )


def _validation_record_usable(
    record: dict[str, Any], att: AcceptedAttestation, stage: str, report: VerificationReport
) -> bool:
    """The record is well-typed and describes a dataset the stage signed as a material.

    A record that describes other bytes (a clean file beside the one actually
    used) proves nothing about the stage's data, so it is a failure, not a pass.
    """
    problems = schema_errors("validation-v1", record)
    if problems:
        text = "; ".join(f"{'/'.join(map(str, p)) or '(root)'}: {m}" for p, m in problems[:5])
        report.fail(
            Check.DATA_VALIDATION,
            stage,
            f"the validation record is malformed: {text}",
            expected="a record written by `mlspec-attest validate --out` (validation/v1)",
            found=f"{len(problems)} schema violation(s)",
            remedy="re-run `mlspec-attest validate` and sign its output unchanged",
        )
        return False
    validated = record["dataset"]["sha256"]
    materials = {m.digest.get("sha256"): m.name for m in att.statement.materials}
    if validated not in materials:
        report.fail(
            Check.DATA_VALIDATION,
            stage,
            "the validation record describes a dataset this stage did not read",
            expected="the validated dataset's sha256 among the stage's signed materials: "
            + (
                ", ".join(f"{n} ({_short({'sha256': d})})" for d, n in materials.items() if d)
                or "none"
            ),
            found=f"validated dataset sha256:{validated[:16]}…",
            remedy="validate the exact file the stage reads and name it with --material",
        )
        return False
    return True


def check_requirements(policy: Policy, chosen: Chosen, report: VerificationReport) -> None:
    if not policy.requirements:
        return
    activation = {"stages": stage_records(chosen)}
    for req in policy.requirements:
        try:
            ok = compile_expression(req.expr).evaluate(activation)
            message = "" if ok else "expression is false"
        except (ExpressionError, MlspecError) as exc:
            ok, message = False, f"cannot evaluate: {exc}"
        if not ok:
            report.fail(
                Check.REQUIREMENT,
                None,
                f"requirement {req.id!r} not met: {message}",
                expected=req.expr,
                found=message,
                remedy=req.description or "see the policy's requirements",
            )
