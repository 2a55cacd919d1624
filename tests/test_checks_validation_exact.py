"""verify/checks/validation.py, exactly: the cases tests/test_verify_checks_small.py leaves out.

A validate stage that read two files, or none, beside the file its record describes (the
expected text lists every signed material, or says none), and a policy that forbids
deprecated data but names no train stage (nothing to look into: no failure, no crash).
Real signed pipelines (tests/mlpipeline.py); mutation testing, docs/testing.md.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mlspec_attest.evidence.dataschema import schema_digest, validate_dataset
from mlspec_attest.verify.report import Check, Failure

from .mlpipeline import DATA_SCHEMA, MLPipeline, csv, raw_rows, write
from .support import KeyPair
from .test_checks_holdback_exact import EditedPolicy


def short_sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16] + "…"


def record_of_another_file(ml: MLPipeline) -> tuple[dict[str, Any], bytes]:
    """A passing validation record of data/clean.csv, which the validate stage never reads."""
    clean = csv(ml.ws / "data/clean.csv", raw_rows()[10:])
    record: dict[str, Any] = validate_dataset(clean, DATA_SCHEMA).to_json()
    return record, clean.read_bytes()


def wrong_file(found: bytes, expected: str) -> Failure:
    return Failure(
        Check.DATA_VALIDATION,
        "validate",
        "the validation record describes a dataset this stage did not read",
        expected=f"the validated dataset's sha256 among the stage's signed materials: {expected}",
        found=f"validated dataset sha256:{short_sha(found)}",
        remedy="validate the exact file the stage reads and name it with a material",
    )


def sign_validate(ml: MLPipeline, materials: list[str], record: dict[str, Any]) -> None:
    write(ml.ws / "reports/validation.json", json.dumps(record))
    ml.sign(
        "validate",
        materials=materials,
        products=["reports/validation.json"],
        details={"validation": record},
    )


def run_after_validate(ml: MLPipeline) -> None:
    for stage in ("split", "train", "evaluate", "test"):
        getattr(ml, f"sign_{stage}")()


def test_a_record_of_another_file_lists_every_material_the_stage_read(ml: MLPipeline) -> None:
    ml.sign_objectives()
    raw = csv(ml.ws / "data/raw.csv", raw_rows()).read_bytes()
    extra = csv(ml.ws / "data/extra.csv", raw_rows()[:5]).read_bytes()
    record, clean = record_of_another_file(ml)
    sign_validate(ml, ["data/raw.csv", "data/extra.csv"], record)
    run_after_validate(ml)
    materials = (
        f"data/raw.csv (sha256:{short_sha(raw)}), data/extra.csv (sha256:{short_sha(extra)})"
    )
    assert ml.verify().failures == [wrong_file(clean, materials)]


def test_a_record_of_a_stage_that_read_nothing_says_none(ml: MLPipeline) -> None:
    ml.sign_objectives()
    csv(ml.ws / "data/raw.csv", raw_rows())  # the split reads it; validate signs no material
    record, clean = record_of_another_file(ml)
    sign_validate(ml, [], record)
    run_after_validate(ml)
    assert ml.verify().failures == [wrong_file(clean, "none")]


def test_deprecated_data_without_a_train_stage_in_the_policy_is_not_looked_for(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """forbidDeprecated without trainStage: the schema is judged, no stage's materials are."""
    ml = EditedPolicy(tmp_path / "p", keys, ("  trainStage: train\n", ""))
    rule = ml.signed.policy.data_validation
    assert rule is not None and rule.forbid_deprecated and rule.train_stage is None
    train_bytes = ("\n".join(["age,bmi,sex,target", *raw_rows()[:18]]) + "\n").encode()
    schema = {
        **DATA_SCHEMA,
        "deprecatedDatasets": ["sha256:" + hashlib.sha256(train_bytes).hexdigest()],
    }
    assert ml.run(validate={"schema": schema}).verify().failures == []


def test_a_pinned_schema_digest_refuses_a_schema_that_only_borrows_the_name(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """A schema's name and version are its own labels: one that checks nothing, under the
    policy's name and version, passed. ``schemaDigest`` pins the reviewed schema itself."""
    pinned = schema_digest(DATA_SCHEMA)
    edit = ("  trainStage: train\n", f"  trainStage: train\n  schemaDigest: sha256:{pinned}\n")
    honest = EditedPolicy(tmp_path / "honest", keys, edit)
    assert honest.signed.policy.data_validation is not None
    assert honest.signed.policy.data_validation.schema_digest == pinned
    assert honest.run().verify().failures == []
    empty = {k: v for k, v in DATA_SCHEMA.items() if k != "columns"} | {
        "columns": [],
        "additionalColumns": True,
    }
    forged = EditedPolicy(tmp_path / "forged", keys, edit).run(validate={"schema": empty})
    [failure] = forged.verify().failures
    assert (failure.check, failure.stage) == (Check.DATA_VALIDATION, "validate")
    assert failure.message == "validated against another schema than the policy pins"
    assert failure.found == f"sha256:{schema_digest(empty)}"
