"""Data validation: the validate stage's record passed, against the named schema version,
of the very dataset the stage read; nothing deprecated was trained on."""

from __future__ import annotations

from typing import Any

from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.schemas import schema_errors
from mlspec_attest.policy.model import DataValidationRule, Policy
from mlspec_attest.verify.accepted import AcceptedAttestation
from mlspec_attest.verify.checks.digests import short
from mlspec_attest.verify.checks.records import Chosen
from mlspec_attest.verify.report import Check, VerificationReport


def check_data_validation(policy: Policy, chosen: Chosen, report: VerificationReport) -> None:
    rule = policy.data_validation
    if rule is None:
        return
    att = chosen.get(rule.stage)
    if att is None:
        # A section naming a stage is a demand: nothing validated is no pass (an
        # optional stage left out included; a required one is also `stage-missing`).
        report.fail(
            Check.DATA_VALIDATION,
            rule.stage,
            "no verified validation stage: data validation cannot be checked",
            expected=f"an accepted attestation of {rule.stage!r} carrying details.validation",
            found="none",
            remedy=f"run and sign the {rule.stage!r} stage the policy's dataValidation names "
            "(or fix its failures above)",
        )
        return
    record = att.statement.metadata.details.get("validation")
    if not isinstance(record, dict):
        report.fail(
            Check.DATA_VALIDATION,
            rule.stage,
            "the validation attestation carries no validation record",
            expected="details.validation (from `mlspec-attest validate`)",
            found="none",
            remedy=f"sign the validate stage with {named('detail', name='validation', path='REPORT.json')}",
        )
        return
    if not validation_record_usable(record, att, rule.stage, report):
        return
    check_validation_result(rule, record, report)
    if rule.forbid_deprecated:
        check_deprecated(rule, record, chosen, report)


def check_validation_result(
    rule: DataValidationRule, record: dict[str, Any], report: VerificationReport
) -> None:
    """Passed, against the schema and version the policy names."""
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
    if rule.schema_digest is not None and schema.get("sha256") != rule.schema_digest:
        report.fail(
            Check.DATA_VALIDATION,
            rule.stage,
            "validated against another schema than the policy pins",
            expected=f"schema sha256:{rule.schema_digest}",
            found=f"sha256:{schema.get('sha256')}",
            remedy="validate against the reviewed schema the policy pins",
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


def check_deprecated(
    rule: DataValidationRule, record: dict[str, Any], chosen: Chosen, report: VerificationReport
) -> None:
    """The schema is not deprecated, and the train stage read no deprecated dataset."""
    schema: dict[str, Any] = record["schema"]
    name, version = schema.get("name"), schema.get("version")
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
                    found=f"{m.name} ({short(m.digest)})",
                    remedy="retrain on current data",
                )


def validation_record_usable(
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
            expected=f"a record written by `{named('validation_record')}` (validation/v1)",
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
                ", ".join(f"{n} ({short({'sha256': d})})" for d, n in materials.items() if d)
                or "none"
            ),
            found=f"validated dataset sha256:{validated[:16]}…",
            remedy=f"validate the exact file the stage reads and name it with {named('material')}",
        )
        return False
    return True
