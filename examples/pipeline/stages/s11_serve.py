"""Stage 11 - serving (Python API, signed by release-engineer). Runs after the deploy gate.

The model is served by ``mlspec-attest serve``, which runs the gate first: the signed
verification summary ``gate/model.vsa.json`` must be signed by the verifier key, say
PASSED for this policy, be at most an hour old, and cover exactly the bytes of
``dist/model`` the server then loads (hashed while read; nothing is unpickled before).
Every request is logged before it is answered: an NCSA line and a CBOR record in a
Merkle tree whose checkpoints the server key signs (``deploy/inference-log/``).

The rollout replays the validation and hold-back splits as traffic (Open Inference Protocol v2, one
row per request), reads ``/ok``, ``/varz`` and ``/metrics``, stops the server (SIGTERM:
a last signed checkpoint) and signs the rollout record ``deploy/serving.json``. The
true values of the replayed rows go to ``deploy/labels.csv``: the labels that "arrive
later" for the monitor stage.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any

from common import features_target, key, policy_path, read_csv, write_json
from serving import DIST, LOG_DIR, VSA, Server, infer_v2, request

import mlspec_attest

SERVING = Path("deploy/serving.json")
LABELS = Path("deploy/labels.csv")
TRAFFIC = (Path("data/split/validation.csv"), Path("data/split/holdback.csv"))


def traffic() -> tuple[list[list[float]], list[float]]:
    """The rows of the validation and hold-back splits, and their true values."""
    rows: list[list[float]] = []
    truths: list[float] = []
    for path in TRAFFIC:
        header, data = read_csv(path)
        _, x, y = features_target(header, data)
        rows += x.tolist()
        truths += y.tolist()
    return rows, truths


def replay(url: str) -> list[dict[str, Any]]:
    """Each row as one request; (request id, prediction, true value, status)."""
    rows, truths = traffic()
    served = []
    for i, (row, truth) in enumerate(zip(rows, truths, strict=True)):
        rid = f"req-{i:04d}"
        status, body, headers = infer_v2(url, [row], rid, user=f"clinician-{i % 7}")
        prediction = body["outputs"][0]["data"][0] if status == 200 else None
        served.append(
            {"request_id": rid, "status": status, "prediction": prediction, "label": truth,
             "vsa": headers.get("x-mlspec-vsa", "")}
        )  # fmt: skip
    return served


def metric_samples(text: str, names: tuple[str, ...]) -> dict[str, float]:
    """A few lines of the Prometheus exposition, summed per metric name."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in names:
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def main() -> None:
    server = Server("--train-data", "data/split/train.csv")  # /metrics: live drift per feature
    try:
        served = replay(server.url)
        ok = request(f"{server.url}/ok")
        varz = request(f"{server.url}/varz")[1]
        metrics = request(f"{server.url}/metrics")[1]
    finally:
        code = server.stop()
    if code != 0:
        raise SystemExit(f"the server exited {code}:\n" + "\n".join(server.lines))
    failed = [r for r in served if r["status"] != 200]
    if failed or ok[0] != 200:
        raise SystemExit(f"serving failed: {len(failed)} request(s) refused; /ok {ok[0]} {ok[1]}")
    with LABELS.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["request_id", "label"])
        writer.writerows((r["request_id"], r["label"]) for r in served)
    counters = metric_samples(metrics, ("mlspec_requests_total", "mlspec_log_records_total"))
    drift = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("mlspec_drift_psi{")
    ]
    counters["mlspec_drift_psi_max"] = round(max(drift), 4) if drift else -1.0
    predictions = [float(r["prediction"]) for r in served]
    with mlspec_attest.stage("serve", key=key("release-engineer"), policy=policy_path()) as s:
        s.material(DIST, role="model")
        s.material(VSA, role="verification-summary")
        write_json(
            SERVING,
            {
                "url": server.url,
                "status": "live",
                "model": varz["model"],
                "binding": varz["binding"],
                "ok": ok[1],
                "requests": len(served),
                "metrics": counters,
                "log": {"directory": str(LOG_DIR), "records": len(served)},
                "sample": served[:5],
            },
        )
        s.product(SERVING, role="rollout")
        s.product(LABELS, role="labels")
        s.params({"vsa_digest": varz["binding"]["vsa_digest"], "log_dir": str(LOG_DIR)})
        s.metric("requests", len(served))
        s.metric("errors", len(failed))
        s.metric("prediction_mean", round(statistics.fmean(predictions), 3))
        s.infra("replicas", 1)
        s.infra("accelerator", "none")
    print(
        f"gate PASSED, model served on {server.url}; {len(served)} requests replayed from "
        f"the validation and hold-back splits, each logged -> {LOG_DIR}/"
    )


if __name__ == "__main__":
    main()
