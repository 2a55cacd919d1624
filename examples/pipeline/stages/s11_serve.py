"""Stage 11 - serving (Python API, signed by release-engineer). Runs after the deploy gate.

The server never unpickles a file it has not verified. It reads the deploy
gate's JSON report (``mlspec-attest verify --json``), requires PASSED for this
run and this policy, re-hashes ``dist/model`` with
``mlspec_attest.digest.artifact.digest_path`` and compares it with the digest the gate
verified. Each file is then read into memory once and its bytes are checked
against the fresh manifest before use, so a file swapped after hashing is not
loaded either. Only then is the model unpickled; it answers a few canary
requests, and the rollout record goes to ``deploy/serving.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from common import key, policy_digest, policy_path, run_id, write_json

import mlspec_attest
from mlspec_attest.digest.artifact import ArtifactDigest, digest_path

DIST = Path("dist/model")
SERVING = Path("deploy/serving.json")
ENDPOINT = "/v1/models/diabetes-progression:predict"

# Canary traffic: raw patient records as a client would send them.
CANARY_FIELDS = ("age", "sex", "bmi", "bp", "tc", "ldl", "hdl", "tch", "ltg", "glu")
CANARY_ROWS = [
    (59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87),
    (48, 1, 21.6, 87, 183, 103.2, 70, 3, 3.8918, 69),
    (36, 1, 26.2, 90, 170, 108.4, 44, 4, 4.3175, 88),
    (66, 2, 28.0, 112, 214, 130.0, 45, 5, 5.1050, 104),
    (29, 2, 23.5, 78, 160, 96.0, 58, 3, 4.1000, 80),
]
CANARY: list[dict[str, float]] = [
    dict(zip(CANARY_FIELDS, map(float, row), strict=True)) for row in CANARY_ROWS
]


class Refused(Exception):
    """The package is not the verified one: do not load it."""


def verified_digest(gate_report: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The gate's report and the digest it verified for the ``model`` role."""
    report = json.loads(gate_report.read_text())
    if report.get("result") != "PASSED":
        raise Refused(f"deploy gate result is {report.get('result')!r}, not PASSED")
    if report["policy"]["digest"] != policy_digest():
        raise Refused("the gate verified a different policy than the one this server enforces")
    if report["runId"] != run_id():
        raise Refused(f"the gate verified run {report['runId']}, not {run_id()}")
    entry = next((a for a in report["artifacts"] if a["role"] == "model"), None)
    if entry is None or entry["status"] != "ok" or Path(entry["path"]) != DIST:
        raise Refused(f"the gate did not verify {DIST} as the model artifact")
    return report, dict(entry["digest"])


def read_verified(actual: ArtifactDigest, name: str) -> bytes:
    """Read one file of the package; its bytes must match the verified manifest."""
    assert actual.manifest is not None
    expected = next((e.sha256 for e in actual.manifest.entries if e.path == name), None)
    data = (DIST / name).read_bytes()
    if expected is None or hashlib.sha256(data).hexdigest() != expected:
        raise Refused(f"{DIST / name} changed after it was verified")
    return data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gate-report", type=Path, default=Path("gate/deploy-gate.json"))
    args = parser.parse_args()
    try:
        gate, expected = verified_digest(args.gate_report)
        actual = digest_path(DIST)
        if actual.digest_set() != expected:
            raise Refused(
                f"{DIST} re-hashes to sha256 {actual.sha256[:16]}..., the gate verified "
                f"{expected.get('sha256', '?')[:16]}..."
            )
        card = json.loads(read_verified(actual, "model-card.json"))
        model = pickle.loads(read_verified(actual, "model.pkl"))  # verified bytes only
    except Refused as exc:
        print(f"REFUSED to serve: {exc}", file=sys.stderr)
        raise SystemExit(1) from None

    train_data = next(a for a in gate["artifacts"] if a["role"] == "train-data")
    with mlspec_attest.stage("serve", key=key("release-engineer"), policy=policy_path()) as s:
        s.material(DIST, role="model")
        served: list[dict[str, Any]] = []
        for i, request in enumerate(CANARY, 1):
            row = dict(request, age_band=float(request["age"] // 10))
            x = np.array([[row[f] for f in card["features"]]], dtype=np.float64)
            started = time.perf_counter()
            prediction = float(model.predict(x)[0])
            served.append(
                {
                    "request_id": f"canary-{i:03d}",
                    "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "client": f"10.0.0.{10 + i}",
                    "features": request,
                    "prediction": round(prediction, 2),
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                    "status": 200,
                }
            )
        preds = np.array([r["prediction"] for r in served])
        latency = np.array([r["latency_ms"] for r in served])
        write_json(
            SERVING,
            {
                "endpoint": ENDPOINT,
                "status": "live",
                "rollout": {
                    "strategy": "canary then full",
                    "replicas": 2,
                    "canary_requests": len(served),
                },
                "model": {
                    "name": card["name"],
                    "version": card["version"],
                    "path": str(DIST),
                    "digest": actual.digest_set(),
                },
                "pipeline": {
                    "policy": gate["policy"],
                    "run_id": gate["runId"],
                    "gate_verified_at": gate["verifiedAt"],
                    "train_data_sha256": train_data["digest"]["sha256"],
                },
                "baseline": {
                    "holdback_mae": card["test"]["metrics"]["mae"],
                    "train_target_mean": card["training"]["target_mean"],
                    "train_target_std": card["training"]["target_std"],
                },
                "canary": served,
            },
        )
        s.product(SERVING, role="rollout")
        s.params(
            {
                "endpoint": ENDPOINT,
                "strategy": "canary then full",
                "gate_result": gate["result"],
                "gate_verified_at": gate["verifiedAt"],
                "model_sha256": actual.sha256,
            }
        )
        s.metric("canary_requests", len(served))
        s.metric("canary_errors", 0)
        s.metric("canary_latency_p50_ms", round(float(np.median(latency)), 3))
        s.metric("canary_prediction_mean", round(float(preds.mean()), 2))
        s.infra("replicas", 2)
        s.infra("cpus", 1)
        s.infra("memory_gb", 0.5)
        s.infra("accelerator", "none")
    print(
        f"{DIST} re-hashed = gate digest {actual.sha256[:12]}...; model loaded; "
        f"{len(served)} canary predictions ({', '.join(f'{p:.0f}' for p in preds)}) -> {SERVING}"
    )


if __name__ == "__main__":
    main()
