"""Stage 12 - monitoring (Python API, signed by sre).

``mlspec-attest monitor`` measures the served traffic against the verified pipeline: the
inference log must verify (only its signed records count), the summary must be signed by
the verifier key, and the training split must be the one the summary names. Per feature,
PSI and the two-sample KS test of the logged inputs against the training column; traffic,
errors, latency and the prediction distribution; and, with the labels that arrived, the
live MAE. The metrics document (``deploy/monitoring.json``) is what this stage signs, so
the policy's requirements bound it (``monitor-no-drift``, ``monitor-live-mae``).

The rollback target is named by the digest of its verification summary (the policy's
``rollback.summary``; ``mlspec-attest rollback --to`` refuses anything else).
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import key, mlspec_ok, policy_path, read_json
from serving import LOG_DIR, VSA, keys_dir

import mlspec_attest

MONITORING = Path("deploy/monitoring.json")
SERVING = Path("deploy/serving.json")
LABELS = Path("deploy/labels.csv")
TRAIN = Path("data/split/train.csv")


def main() -> None:
    features = read_json(SERVING)["model"]["features"]
    args = [
        "monitor", "--log", str(LOG_DIR), "--log-key", str(keys_dir() / "server.pub"),
        "--vsa", str(VSA), "--verifier-key", str(keys_dir() / "verifier.pub"),
        "--train-data", str(TRAIN), "--labels", str(LABELS), "--out", str(MONITORING),
    ]  # fmt: skip
    for name in features:
        args += ["--feature", name]
    mlspec_ok(*args)
    doc = read_json(MONITORING)
    metrics = doc["metrics"]
    with mlspec_attest.stage("monitor", key=key("sre"), policy=policy_path()) as s:
        s.material(SERVING, role="rollout")
        s.material(LABELS, role="labels")
        s.material(TRAIN, role="train")
        s.material(VSA, role="verification-summary")
        s.material(LOG_DIR, role="log")
        s.product(MONITORING, role="monitoring")
        s.metrics_file(MONITORING)
        s.params({"alert.psi": 0.25, "alert.live_mae_factor": 1.3, "window": "all signed records"})
    shifted = int(metrics.get("drift.features_shifted", 0))
    print(
        f"{int(metrics['window.requests'])} requests: PSI max {metrics['drift.psi_max']:.3f} "
        f"({shifted} feature(s) shifted), live MAE {metrics['live.mae']:.1f} on "
        f"{int(metrics['live.labelled'])} labels -> {MONITORING}",
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
