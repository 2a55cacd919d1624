"""Stage 13 - per-inference logging (CLI, `mlspec-attest sign ... -- python s13_log.py --work`; sre).

One NCSA combined-log line per inference request, each with a structured
record binding it to the verified pipeline: the signed policy digest, the run
id, the model package digest and the training data digest. Records are hash
chained (each carries the SHA-256 of the previous one), so removing or editing
a record breaks the chain. Written to ``deploy/inference-log.json``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from common import cli_sign, read_json, work_mode, wrapped_self, write_json

SERVING = Path("deploy/serving.json")
LOG = Path("deploy/inference-log.json")


def ncsa(entry: dict[str, Any], endpoint: str, size: int) -> str:
    when = datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    stamp = when.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return (
        f'{entry["client"]} - - [{stamp}] "POST {endpoint} HTTP/1.1" {entry["status"]} {size} '
        f'"-" "mlspec-canary/1.0"'
    )


def work() -> None:
    serving = read_json(SERVING)
    pipeline = serving["pipeline"]
    previous = "0" * 64
    records: list[dict[str, Any]] = []
    for entry in serving["canary"]:
        body = json.dumps({"prediction": entry["prediction"]})
        record = {
            "ncsa": ncsa(entry, serving["endpoint"], len(body)),
            "request_id": entry["request_id"],
            "prediction": entry["prediction"],
            "features_sha256": hashlib.sha256(
                json.dumps(entry["features"], sort_keys=True).encode()
            ).hexdigest(),
            "model": {"version": serving["model"]["version"], "digest": serving["model"]["digest"]},
            "policy_digest": pipeline["policy"]["digest"],
            "run_id": pipeline["run_id"],
            "train_data_sha256": pipeline["train_data_sha256"],
            "prev_sha256": previous,
        }
        previous = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
        record["record_sha256"] = previous
        records.append(record)
    write_json(LOG, {"format": "ncsa-combined + mlspec binding", "records": records})


def main() -> None:
    if work_mode():
        work()
        return
    cli_sign(
        "log",
        "sre",
        materials=[str(SERVING)],
        products=[str(LOG)],
        roles={"rollout": str(SERVING), "log": str(LOG)},
        params={
            "format": "NCSA combined log + JSON binding record",
            "binding": "policy digest, run id, model digest, training data digest",
            "integrity": "sha256 hash chain",
            "retention_days": 365,
        },
        command=wrapped_self(__file__),
    )
    records = read_json(LOG)["records"]
    print(
        f"{len(records)} NCSA records, hash-chained, each bound to policy/run/model/train-data "
        f"digests -> {LOG}"
    )


if __name__ == "__main__":
    main()
