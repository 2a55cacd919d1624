"""Stage 5 - data validation (CLI, `mlspec-attest sign ... -- python s05_validate.py --work`).

Checks ``data/features/diabetes.csv`` against a versioned schema (columns in
order, value ranges, allowed categories, no missing values, unique row ids,
minimum row count) and writes ``reports/validation.json``. If any check fails
the wrapped command exits 1 and ``mlspec-attest sign`` attests nothing, so the
pipeline cannot go on to train on bad data.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from common import FloatArray, cli_sign, columns, read_csv, work_mode, wrapped_self, write_json

FEATURES = Path("data/features/diabetes.csv")
REPORT = Path("reports/validation.json")

SCHEMA: dict[str, Any] = {
    "name": "diabetes-features",
    "version": 3,
    "min_rows": 400,
    "columns": {
        "row_id": {"type": "int", "min": 0, "unique": True},
        "age": {"type": "int", "min": 18, "max": 90},
        "age_band": {"type": "int", "min": 1, "max": 9},
        "sex": {"type": "int", "allowed": [1, 2]},
        "bmi": {"type": "float", "min": 15.0, "max": 50.0},
        "bp": {"type": "float", "min": 50.0, "max": 150.0},
        "tc": {"type": "float", "min": 90.0, "max": 320.0},
        "ldl": {"type": "float", "min": 40.0, "max": 250.0},
        "hdl": {"type": "float", "min": 20.0, "max": 100.0},
        "tch": {"type": "float", "min": 1.0, "max": 10.0},
        "ltg": {"type": "float", "min": 3.0, "max": 7.0},
        "glu": {"type": "float", "min": 55.0, "max": 130.0},
        "target": {"type": "float", "min": 25.0, "max": 346.0},
    },
}
SCHEMA_DIGEST = hashlib.sha256(json.dumps(SCHEMA, sort_keys=True).encode()).hexdigest()


def check(header: list[str], data: FloatArray) -> list[dict[str, Any]]:
    spec = SCHEMA["columns"]
    results: list[dict[str, Any]] = []

    def add(name: str, ok: bool, detail: str) -> None:
        results.append({"check": name, "passed": bool(ok), "detail": detail})

    add("columns", header == list(spec), f"expected {list(spec)}, found {header}")
    add("min_rows", data.shape[0] >= SCHEMA["min_rows"], f"{data.shape[0]} rows")
    add("no_missing", not np.isnan(data).any(), f"{int(np.isnan(data).sum())} missing values")
    cols = columns(header, data)
    for name, rule in spec.items():
        if name not in cols:
            continue
        v = cols[name]
        if rule["type"] == "int":
            add(f"{name}.type", bool(np.all(v == np.round(v))), "integer values")
        if "min" in rule or "max" in rule:
            lo, hi = rule.get("min", -np.inf), rule.get("max", np.inf)
            bad = int(((v < lo) | (v > hi)).sum())
            add(f"{name}.range", bad == 0, f"{bad} values outside [{lo}, {hi}]")
        if "allowed" in rule:
            extra = sorted(set(v.tolist()) - set(rule["allowed"]))
            add(f"{name}.allowed", not extra, f"unexpected values {extra}")
        if rule.get("unique"):
            add(
                f"{name}.unique",
                len(np.unique(v)) == len(v),
                f"{len(v) - len(np.unique(v))} duplicates",
            )
    return results


def work() -> None:
    header, data = read_csv(FEATURES)
    results = check(header, data)
    failed = [r for r in results if not r["passed"]]
    write_json(
        REPORT,
        {
            "schema": SCHEMA,
            "schema_sha256": SCHEMA_DIGEST,
            "rows": int(data.shape[0]),
            "checks": results,
            "passed": not failed,
        },
    )
    if failed:
        for r in failed:
            print(f"validation failed: {r['check']}: {r['detail']}", file=sys.stderr)
        raise SystemExit(1)


def main() -> None:
    if work_mode():
        work()
        return
    cli_sign(
        "validate",
        "data-scientist",
        materials=[str(FEATURES)],
        products=[str(REPORT)],
        roles={"features": str(FEATURES)},
        params={
            "schema": SCHEMA["name"],
            "schema_version": SCHEMA["version"],
            "schema_sha256": SCHEMA_DIGEST,
            "on_failure": "exit 1 (stage not attested)",
        },
        command=wrapped_self(__file__),
    )
    report = json.loads(REPORT.read_text())
    passed = sum(r["passed"] for r in report["checks"])
    print(
        f"schema {SCHEMA['name']} v{SCHEMA['version']}: {passed}/{len(report['checks'])} checks "
        f"passed on {report['rows']} rows -> {REPORT}"
    )


if __name__ == "__main__":
    main()
