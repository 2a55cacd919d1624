"""Stage 12 - monitoring (Python API, signed by sre).

From the rollout record: liveness, canary error rate and latency, prediction
drift against the training target distribution, alert thresholds relative to
the hold-back MAE, and the rollback target. Written to
``deploy/monitoring.json``, the configuration the monitoring agent loads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import key, policy_path, read_json, write_json

import mlspec_attest

SERVING = Path("deploy/serving.json")
MONITORING = Path("deploy/monitoring.json")
MAE_DEGRADATION = 1.2  # alert when rolling MAE on labelled follow-ups exceeds 1.2x hold-back MAE
DRIFT_Z = 1.0  # alert when the mean prediction moves more than 1 training std from the target mean


def main() -> None:
    with mlspec_attest.stage("monitor", key=key("sre"), policy=policy_path()) as s:
        s.material(SERVING, role="rollout")
        serving = read_json(SERVING)
        canary = serving["canary"]
        base = serving["baseline"]
        preds = np.array([r["prediction"] for r in canary])
        latency = np.array([r["latency_ms"] for r in canary])
        errors = sum(r["status"] != 200 for r in canary)
        drift_z = abs(float(preds.mean()) - base["train_target_mean"]) / base["train_target_std"]
        live = serving["status"] == "live" and errors == 0
        write_json(
            MONITORING,
            {
                "model": serving["model"],
                "liveness": {"endpoint": serving["endpoint"], "probe_every_s": 15, "healthy": live},
                "signals": {
                    "error_rate": errors / len(canary),
                    "latency_p95_ms": round(float(np.percentile(latency, 95)), 3),
                    "prediction_mean": round(float(preds.mean()), 2),
                    "prediction_drift_z": round(drift_z, 3),
                },
                "alerts": [
                    {
                        "signal": "rolling_7d_mae",
                        "when": f"> {MAE_DEGRADATION} x hold-back MAE",
                        "threshold": round(MAE_DEGRADATION * base["holdback_mae"], 2),
                        "action": "page on-call, start rollback",
                    },
                    {
                        "signal": "prediction_drift_z",
                        "when": f"> {DRIFT_Z}",
                        "action": "open ticket",
                    },
                    {"signal": "error_rate", "when": "> 0.01 over 5 min", "action": "rollback"},
                ],
                "rollback": {
                    "target": "diabetes-progression 0.9.3 (previous verified release)",
                    "fallback": f"constant predictor {base['train_target_mean']} (training mean)",
                    "requires": "the target's own passing mlspec-attest verify report",
                },
            },
        )
        s.product(MONITORING, role="monitoring")
        s.params(
            {
                "alert.mae_degradation_factor": MAE_DEGRADATION,
                "alert.drift_z": DRIFT_Z,
                "rollback_target": "diabetes-progression 0.9.3",
            }
        )
        s.metric("healthy", int(live))
        s.metric("canary_error_rate", errors / len(canary))
        s.metric("prediction_drift_z", round(drift_z, 3))
        s.metric("latency_p95_ms", round(float(np.percentile(latency, 95)), 3))
        s.metric("mae_alert_threshold", round(MAE_DEGRADATION * base["holdback_mae"], 2))
    print(
        f"healthy={live}, drift z={drift_z:.2f}, MAE alert above "
        f"{MAE_DEGRADATION * base['holdback_mae']:.1f}, rollback to 0.9.3 -> {MONITORING}"
    )


if __name__ == "__main__":
    main()
