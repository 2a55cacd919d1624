"""The smallest ML-check modules, whole: requirements, the CEL stage records, digest helpers.

verify/checks/requirements.py, records.py, digests.py and validation.py decide little, but what they decide
reaches every report: the failure record of an unmet requirement or a failed data validation, the ``stages`` variable a
policy's CEL expressions read, and how two DigestSets compare. Each test asserts the whole
value, so a changed field, key or default is noticed (mutation testing, docs/testing.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.evidence.dataschema import validate_dataset
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.policy.model import Functionary
from mlspec_attest.verify.accepted import AcceptedAttestation
from mlspec_attest.verify.checks.digests import same_content, short
from mlspec_attest.verify.checks.records import stage_records
from mlspec_attest.verify.report import Check, Failure

from .mlpipeline import DATA_SCHEMA, MakeML, MLPipeline, csv, only, raw_rows

# --- digests -------------------------------------------------------------------------------


def test_short_shows_the_sha256_prefix_or_none() -> None:
    digest = {"sha256": "0123456789abcdef" + "f" * 48}
    assert short(digest) == "sha256:0123456789abcdef…"
    assert short({"sha512": "00"}) == "sha256:?…"
    assert short({}) == "none"
    assert short(None) == "none"


def test_same_content_needs_a_common_algorithm_with_equal_values() -> None:
    a = {"sha256": "aa"}
    assert same_content(a, {"sha256": "aa", "sha512": "bb"})  # only the common one counts
    assert same_content({"sha256": "aa", "sha512": "bb"}, a)
    assert not same_content(a, {"sha256": "ab"})
    assert not same_content(a, {"sha512": "aa"})  # nothing in common: not the same bytes
    assert not same_content({}, {})


# --- the CEL stage records -----------------------------------------------------------------


def _accepted(p: MLPipeline, stage: str) -> AcceptedAttestation:
    statement = StageStatement.from_payload(p.signed_stages[stage].bundle.envelope.payload)
    owner = Functionary("someone", public_key=p.keys["owner"].public)
    return AcceptedAttestation(statement, owner, Path(f"{stage}.json"))


def test_stage_records_are_the_attested_fields_with_metrics_as_doubles(ml: MLPipeline) -> None:
    ml.run()
    att = _accepted(ml, "test")
    meta = att.statement.metadata
    [record] = stage_records({"test": att}).values()
    assert set(record) == {
        "kind",
        "metrics",
        "parameters",
        "infrastructure",
        "details",
        "roles",
        "slices",
    }
    assert record["kind"] == meta.kind == "test"
    assert record["parameters"] == dict(meta.parameters)
    assert record["infrastructure"] == dict(meta.infrastructure)
    assert record["details"] == dict(meta.details)
    assert record["roles"] == dict(meta.roles)
    assert record["metrics"] == {k: float(v) for k, v in meta.metrics.items()}
    assert all(type(v) is float for v in record["metrics"].values())
    assert meta.slices, "the test stage records slices"
    for family, members in meta.slices.items():
        for value, entry in members.items():
            got = record["slices"][family][value]
            assert got == {**entry, "metrics": {k: float(v) for k, v in entry["metrics"].items()}}
            assert got["metrics"], f"slice {family}={value} keeps its metrics"
            assert all(type(v) is float for v in got["metrics"].values())


def test_stage_records_name_every_stage_given(ml: MLPipeline) -> None:
    ml.run()
    chosen = {name: _accepted(ml, name) for name in ("split", "train")}
    records = stage_records(chosen)
    assert list(records) == ["split", "train"]
    assert records["split"]["kind"] == "split"
    assert records["train"]["kind"] == "train"


# --- requirements --------------------------------------------------------------------------


def test_an_unmet_requirement_is_one_whole_failure(ml: MLPipeline) -> None:
    report = ml.run(split={"parameters": {"shuffle": True}}).verify()
    assert only(report, Check.REQUIREMENT) == [
        Failure(
            Check.REQUIREMENT,
            None,
            "requirement 'split-is-seeded' not met: expression is false; observed: "
            'stages.split.parameters = {"shuffle": true}',
            expected='"seed" in stages.split.parameters',
            found='expression is false; observed: stages.split.parameters = {"shuffle": true}',
            remedy="see the policy's requirements",
        )
    ]


def test_a_requirement_names_its_description_as_the_remedy(make_ml: MakeML) -> None:
    reqs = (
        "  - id: split-is-seeded\n"
        "    expr: '\"seed\" in stages.split.parameters'\n"
        "    description: record the split seed (--param seed=N)\n"
    )
    report = make_ml(requirements=reqs).run(split={"parameters": {"shuffle": True}}).verify()
    [failure] = only(report, Check.REQUIREMENT)
    assert failure.remedy == "record the split seed (--param seed=N)"
    assert failure.found == (
        'expression is false; observed: stages.split.parameters = {"shuffle": true}'
    )


def test_a_requirement_that_cannot_be_evaluated_says_why(make_ml: MakeML) -> None:
    reqs = "  - id: packaged\n    expr: 'stages.train.metrics[\"size\"] < 10.0'\n"
    report = make_ml(requirements=reqs).run().verify()
    [failure] = only(report, Check.REQUIREMENT)
    assert failure.stage is None
    assert failure.message.startswith("requirement 'packaged' not met: cannot evaluate: ")
    assert failure.found == failure.message.removeprefix("requirement 'packaged' not met: ")
    assert failure.expected == 'stages.train.metrics["size"] < 10.0'
    assert failure.remedy == "see the policy's requirements"


@pytest.mark.parametrize("count", [1, 2])
def test_each_unmet_requirement_fails_once(make_ml: MakeML, count: int) -> None:
    reqs = "".join(f"  - id: never-{i}\n    expr: 'false'\n" for i in range(count))
    report = make_ml(requirements=reqs).run().verify()
    assert [f.message for f in only(report, Check.REQUIREMENT)] == [
        f"requirement 'never-{i}' not met: expression is false" for i in range(count)
    ]  # 'false' reads no term: nothing observed to show
    assert [f.found for f in only(report, Check.REQUIREMENT)] == [
        "expression is false" for _ in range(count)
    ]


# --- data validation -----------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_failed_validation_is_one_whole_failure(ml: MLPipeline) -> None:
    report = ml.run(validate={"data_rows": [*raw_rows(), "17,20.0,F,100"]}).verify()
    assert report.failures == [
        Failure(
            Check.DATA_VALIDATION,
            "validate",
            "data validation did not pass",
            expected="passed: true",
            found="1 violation(s)",
            remedy="fix the data (or the schema, through review) and re-run from validate",
        )
    ]


def test_another_schema_version_is_one_whole_failure(make_ml: MakeML) -> None:
    report = make_ml(schema_version="4").run().verify()
    assert report.failures == [
        Failure(
            Check.DATA_VALIDATION,
            "validate",
            "validated against a different schema version",
            expected="version 4",
            found="version 3",
            remedy="validate against diabetes-features version 4",
        )
    ]


def test_another_schema_is_one_whole_failure(ml: MLPipeline) -> None:
    report = ml.run(validate={"schema": {**DATA_SCHEMA, "name": "other-features"}}).verify()
    assert report.failures == [
        Failure(
            Check.DATA_VALIDATION,
            "validate",
            "validated against a different schema",
            expected="schema 'diabetes-features'",
            found="schema 'other-features'",
            remedy="validate against diabetes-features",
        )
    ]


def test_a_deprecated_schema_is_one_whole_failure(ml: MLPipeline) -> None:
    report = ml.run(validate={"schema": {**DATA_SCHEMA, "deprecated": True}}).verify()
    assert report.failures == [
        Failure(
            Check.DEPRECATED_DATA,
            "validate",
            "schema 'diabetes-features' version 3 is deprecated",
            expected="a current schema version",
            found="deprecated: true",
            remedy="data described only by a deprecated schema must not be trained on; "
            "migrate the data",
        )
    ]


def test_a_missing_validation_record_is_one_whole_failure(ml: MLPipeline) -> None:
    report = ml.run(validate={"detail_files": {}}).verify()
    assert only(report, Check.DATA_VALIDATION) == [
        Failure(
            Check.DATA_VALIDATION,
            "validate",
            "the validation attestation carries no validation record",
            expected="details.validation (from `mlspec-attest validate`)",
            found="none",
            remedy="sign the validate stage with details['validation'] = REPORT.json",
        )
    ]


def test_training_on_a_deprecated_dataset_names_the_material(ml: MLPipeline) -> None:
    train_bytes = ("\n".join(["age,bmi,sex,target", *raw_rows()[:18]]) + "\n").encode()
    schema = {**DATA_SCHEMA, "deprecatedDatasets": ["sha256:" + _sha(train_bytes)]}
    report = ml.run(validate={"schema": schema}).verify()
    assert report.failures == [
        Failure(
            Check.DEPRECATED_DATA,
            "train",
            "trained on deprecated dataset data/split/train.csv",
            expected="no material listed in the schema's deprecatedDatasets",
            found=f"data/split/train.csv (sha256:{_sha(train_bytes)[:16]}…)",
            remedy="retrain on current data",
        )
    ]


def test_a_record_of_another_file_names_what_the_stage_read(ml: MLPipeline) -> None:
    clean = csv(ml.ws / "data/clean.csv", raw_rows())
    record = validate_dataset(clean, DATA_SCHEMA).to_json()
    dirty = [*raw_rows(), "17,20.0,F,100"]
    report = ml.run(
        validate={"data_rows": dirty, "inline": True, "details": {"validation": record}}
    ).verify()
    raw = (ml.ws / "data/raw.csv").read_bytes()
    assert report.failures == [
        Failure(
            Check.DATA_VALIDATION,
            "validate",
            "the validation record describes a dataset this stage did not read",
            expected="the validated dataset's sha256 among the stage's signed materials: "
            f"data/raw.csv (sha256:{_sha(raw)[:16]}…)",
            found=f"validated dataset sha256:{_sha(clean.read_bytes())[:16]}…",
            remedy="validate the exact file the stage reads and name it with a material",
        )
    ]


def _valid_record(ml: MLPipeline) -> dict[str, Any]:
    record: dict[str, Any] = validate_dataset(
        csv(ml.ws / "data/raw.csv", raw_rows()), DATA_SCHEMA
    ).to_json()
    return record


MALFORMED_REMEDY = "re-run `mlspec-attest validate` and sign its output unchanged"
MALFORMED_EXPECTED = "a record written by `evidence.dataschema.validate_dataset()` (validation/v1)"


def test_a_malformed_record_lists_each_problem_with_its_path(ml: MLPipeline) -> None:
    record = _valid_record(ml)
    record.pop("dataset")
    record["passed"] = "x"
    report = ml.run(validate={"inline": True, "details": {"validation": record}}).verify()
    assert report.failures == [
        Failure(
            Check.DATA_VALIDATION,
            "validate",
            "the validation record is malformed: (root): 'dataset' is a required property; "
            "passed: 'x' is not of type 'boolean'",
            expected=MALFORMED_EXPECTED,
            found="2 schema violation(s)",
            remedy=MALFORMED_REMEDY,
        )
    ]


def test_a_malformed_record_names_five_problems_and_counts_all(ml: MLPipeline) -> None:
    record = _valid_record(ml)
    for key in ("passed", "violationCount", "violations", "violationsByKind", "schema"):
        record[key] = "x"
    record["violationsTruncated"] = "x"
    record["schemaVersion"] = 1
    report = ml.run(validate={"inline": True, "details": {"validation": record}}).verify()
    [failure] = report.failures
    assert failure.check is Check.DATA_VALIDATION and failure.stage == "validate"
    prefix = "the validation record is malformed: "
    assert failure.message.startswith(prefix)
    assert len(failure.message.removeprefix(prefix).split("; ")) == 5
    assert failure.found == "7 schema violation(s)"
    assert (failure.expected, failure.remedy) == (MALFORMED_EXPECTED, MALFORMED_REMEDY)


def test_a_failing_record_of_another_file_is_only_the_wrong_file(ml: MLPipeline) -> None:
    # The record is not about this stage's data, so what it says (here: failed) is not
    # judged at all: one failure, the wrong file, never a second one from its contents.
    other = validate_dataset(
        csv(ml.ws / "data/other.csv", [*raw_rows(), "17,20.0,F,100"]), DATA_SCHEMA
    ).to_json()
    assert other["passed"] is False
    report = ml.run(validate={"inline": True, "details": {"validation": other}}).verify()
    assert [(f.check, f.message) for f in report.failures] == [
        (
            Check.DATA_VALIDATION,
            "the validation record describes a dataset this stage did not read",
        )
    ]


def test_deprecated_datasets_listed_by_the_record_itself_count_too(ml: MLPipeline) -> None:
    # validation-v1 allows the list at the top of the record as well as in its schema
    # object (where it is optional): either place denies training on a listed dataset.
    train_bytes = ("\n".join(["age,bmi,sex,target", *raw_rows()[:18]]) + "\n").encode()
    record = _valid_record(ml)
    record["schema"].pop("deprecatedDatasets", None)
    record["deprecatedDatasets"] = ["sha256:" + _sha(train_bytes)]
    report = ml.run(validate={"inline": True, "details": {"validation": record}}).verify()
    assert [(f.check, f.stage, f.message) for f in report.failures] == [
        (Check.DEPRECATED_DATA, "train", "trained on deprecated dataset data/split/train.csv")
    ]


def test_a_record_without_any_deprecated_list_passes(ml: MLPipeline) -> None:
    record = _valid_record(ml)
    record["schema"].pop("deprecatedDatasets", None)
    record.pop("deprecatedDatasets", None)
    report = ml.run(validate={"inline": True, "details": {"validation": record}}).verify()
    assert report.failures == []


def test_another_schema_and_version_name_the_policys_schema_in_the_fix(make_ml: MakeML) -> None:
    ml = make_ml(schema_version="4")
    report = ml.run(validate={"schema": {**DATA_SCHEMA, "name": "other-features"}}).verify()
    assert [(f.message, f.remedy) for f in report.failures] == [
        ("validated against a different schema", "validate against diabetes-features"),
        (
            "validated against a different schema version",
            "validate against diabetes-features version 4",
        ),
    ]


def test_a_requirement_that_cannot_be_evaluated_does_not_hide_the_next(make_ml: MakeML) -> None:
    reqs = (
        "  - id: packaged\n    expr: 'stages.train.metrics[\"size\"] < 10.0'\n"
        "  - id: never\n    expr: 'false'\n"
    )
    report = make_ml(requirements=reqs).run().verify()
    assert [f.message.split(":")[0] for f in only(report, Check.REQUIREMENT)] == [
        "requirement 'packaged' not met",
        "requirement 'never' not met",
    ]
