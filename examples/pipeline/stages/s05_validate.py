"""Stage 5 - data validation (CLI, `mlspec-attest sign ... -- python s05_validate.py --work`).

The data is checked against the versioned data schema ``diabetes-features``
version 3, which the policy requires (``dataValidation``). The wrapped command:

1. ``mlspec-attest schema infer`` on the first 30 rows (``select * from foo
   limit 30``) writes the draft ``schemas/diabetes-features.v3.inferred.yaml``.
   It is compared with the reviewed schema (``examples/pipeline/schemas/``,
   the draft with widened bounds); how the two differ, and how many violations
   the unreviewed draft would have raised, is recorded as ``details.schema_review``.
2. ``mlspec-attest validate`` checks every row against the reviewed schema
   (copied to ``schemas/diabetes-features.v3.yaml`` before signing), writing the
   ``validation/v1`` record ``reports/validation.json``.

If validation fails the command exits 1 and ``mlspec-attest sign`` attests
nothing. Otherwise the record is the product and ``details.validation``
(``--detail``), which ``verify`` checks: passed, schema name and version, not
deprecated.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from common import cli_sign, mlspec, mlspec_ok, read_json, work_mode, wrapped_self, write_json

from mlspec_attest.evidence.dataschema import load_data_schema, schema_digest, validate_dataset

FEATURES = Path("data/features/diabetes.csv")
REPORT = Path("reports/validation.json")
NAME, VERSION = "diabetes-features", "3"
REVIEWED = Path(__file__).resolve().parents[1] / "schemas" / f"{NAME}.v{VERSION}.yaml"
SCHEMA = Path(f"schemas/{NAME}.v{VERSION}.yaml")
DRAFT = Path(f"schemas/{NAME}.v{VERSION}.inferred.yaml")
REVIEW = Path(".records/schema-review.json")
METRICS = Path(".metrics/validate.json")
INFER_ROWS = 30


def review(draft: dict[str, Any], reviewed: dict[str, Any]) -> dict[str, Any]:
    """How the reviewed schema differs from the draft inferred from the first rows."""
    by_name = {c["name"]: c for c in reviewed["columns"]}
    changes: dict[str, dict[str, Any]] = {}
    for column in draft["columns"]:
        final = by_name.get(column["name"])
        if final is None:
            changes[column["name"]] = {"removed": True}
            continue
        diff = {
            field: {"inferred": column.get(field), "reviewed": final.get(field)}
            for field in ("type", "nullable", "min", "max", "enum")
            if column.get(field) != final.get(field, False if field == "nullable" else None)
        }
        if diff:
            changes[column["name"]] = diff
    drafted = [c["name"] for c in draft["columns"]]
    return {
        "inferredFrom": draft["inferredFrom"],
        "sameColumns": drafted == list(by_name),
        "changes": changes,
        "draftViolations": validate_dataset(FEATURES, draft).violation_count,
        "draftSha256": schema_digest(draft),
        "reviewedSha256": schema_digest(reviewed),
    }


def work() -> None:
    mlspec_ok(
        "schema", "infer", str(FEATURES), "--rows", str(INFER_ROWS),
        "--name", NAME, "--version", VERSION, "--out", str(DRAFT),
    )  # fmt: skip
    draft, reviewed = load_data_schema(DRAFT), load_data_schema(SCHEMA)
    record = review(draft, reviewed)
    if not record["sameColumns"]:
        raise SystemExit(f"validate: {FEATURES} columns differ from the reviewed {REVIEWED.name}")
    write_json(REVIEW, record)
    proc = mlspec("validate", str(FEATURES), "--schema", str(SCHEMA), "--out", str(REPORT))
    print(proc.stdout.strip())
    if proc.returncode != 0:
        raise SystemExit(proc.returncode)
    result = read_json(REPORT)
    write_json(
        METRICS,
        {
            "metrics": {
                "rows": result["dataset"]["rows"],
                "columns": len(reviewed["columns"]),
                "violations": result["violationCount"],
                "draft_violations": record["draftViolations"],
                "reviewed_column_changes": len(record["changes"]),
            }
        },
    )


def main() -> None:
    if work_mode():
        work()
        return
    # The reviewed schema enters the work dir before signing, so that it could be
    # recorded as a material. The policy allows validate only the features as a
    # material, so it is recorded by path and digest (parameters, details.validation).
    SCHEMA.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REVIEWED, SCHEMA)
    reviewed = load_data_schema(SCHEMA)
    cli_sign(
        "validate",
        "data-scientist",
        materials=[str(FEATURES)],
        products=[str(REPORT)],
        roles={"features": str(FEATURES)},
        params={
            "schema": reviewed["name"],
            "schema_version": reviewed["version"],
            "schema_path": str(SCHEMA),
            "schema_sha256": schema_digest(reviewed),
            "inferred_from_rows": INFER_ROWS,
            "on_failure": "exit 1 (stage not attested)",
        },
        metrics=METRICS,
        details={"validation": REPORT, "schema_review": REVIEW},
        command=wrapped_self(__file__),
    )
    result, record = read_json(REPORT), read_json(REVIEW)
    print(
        f"schema {result['schema']['name']} v{result['schema']['version']} (reviewed from a "
        f"{INFER_ROWS}-row inference: {len(record['changes'])} columns widened, the raw draft "
        f"would raise {record['draftViolations']} violations): "
        f"{'PASSED' if result['passed'] else 'FAILED'} on {result['dataset']['rows']} rows, "
        f"{result['violationCount']} violations -> {REPORT}"
    )


if __name__ == "__main__":
    main()
