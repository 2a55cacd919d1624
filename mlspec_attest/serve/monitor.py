"""The monitor stage's evidence: a window of the verified inference log against the pipeline.

:func:`monitor_window` reads only what it can trust and says what it measured:

1. the log is audited (:func:`~mlspec_attest.log.audit.verify_log`) and refused unless
   ``ok``; the records are then read again and their Merkle root must equal the audited
   one, so a record swapped between the audit and the read is refused too;
2. only records served under the given verification summary count (the pipeline
   binding), the last ``window`` of them;
3. the training data is read once, hashed while it is read, and must equal the
   summary's ``train-data`` subject when it has one (the attested statistics are
   those of the bytes actually compared with);
4. per feature, PSI and the KS test of the logged inputs against the training column
   (:mod:`mlspec_attest.evidence.drift`), when inputs were logged; traffic, errors,
   latency and the prediction distribution from every record; and with labels
   (request id -> true value) the live error.

What the client chose (the request target, its body, its ``X-Request-Id``) never decides
what is left out. A served request's rows are read by the body's own protocol
(:func:`request_rows`), never by its logged path; a served request whose logged input
is not rows of the features, a label whose request id the log holds more than once and
a label naming a served request that is not one prediction are counted
(``drift.undecodable``, ``live.labels_ambiguous``, ``live.labels_unpairable``) and fail
closed: the metrics they would bias are withheld and ``omitted`` says why, so a policy
bound on any of them fails as on any missing metric (docs/serving.md, "Monitoring").

The result is a metrics document (docs/metrics.md): sign it as the ``monitor`` stage
(``sign --stage monitor --metrics FILE``) and the policy's requirements can bound it,
e.g. ``stages.monitor.metrics["drift.psi_max"] < 0.25`` or
``stages.monitor.metrics["live.mae"] <= 1.2 * stages.test.metrics["mae"]``.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from msgspec import Struct, field

from mlspec_attest.errors import BadInputError, MlspecError, VerificationError
from mlspec_attest.evidence.drift import DEFAULT_BINS, feature_drift
from mlspec_attest.formats.cells import TabularReader
from mlspec_attest.formats.signer import PublicKeyVerifier
from mlspec_attest.formats.vsa import VerificationSummary
from mlspec_attest.log.audit import verify_log
from mlspec_attest.log.merkle import CompactRange, leaf_hash
from mlspec_attest.log.record import InferenceRecord, record_from_map
from mlspec_attest.log.scan import RecordScanner
from mlspec_attest.serve.tensors import decode_v1, decode_v2, parse_body

MONITOR_SCHEMA = "https://mlspec-attest.dev/metrics/v1"
TRAIN_ROLE = "train-data"
PSI_SHIFT = 0.25
"""PSI above which a feature counts as shifted (``drift.features_shifted``)."""
DRIFT_METRICS = ("drift.psi_max", "drift.ks_pvalue_min", "drift.features_shifted", "drift.rows")
"""The drift metrics withheld when a served request's input cannot be measured."""
LIVE_METRICS = ("live.labelled", "live.mae", "live.rmse")
"""The live metrics withheld when a label cannot be paired with one prediction."""


class MonitorDeniedError(VerificationError):
    """The log or the training data cannot be trusted for monitoring."""


class Measured(Struct):
    """One part of the metrics document: metrics, slices, and why a metric is withheld."""

    metrics: dict[str, float] = field(default_factory=dict)
    slices: dict[str, Any] = field(default_factory=dict)
    omitted: dict[str, str] = field(default_factory=dict)


class MonitorRequest(Struct, frozen=True):
    """What to monitor and against what."""

    log_dir: Path
    log_key: PublicKeyVerifier
    summary: VerificationSummary
    summary_digest: str
    train_data: Path
    features: tuple[str, ...]
    window: int | None = None
    labels: Mapping[str, float] = field(default_factory=dict)
    bins: int = DEFAULT_BINS


def verified_records(log_dir: Path, key: PublicKeyVerifier) -> list[InferenceRecord]:
    """The signed records of an ``ok`` log, read again and bound to the audited root.

    Records after the last checkpoint (a crash's unsigned tail, or records someone
    appended without the server's key) are not evidence: they are left out."""
    audit = verify_log(log_dir, key)
    if not audit.ok:
        first = audit.problems[0].to_json() if audit.problems else {}
        raise MonitorDeniedError(
            f"the inference log in {log_dir} is {audit.result}: "
            + (audit.problem or str(first.get("message", "see `log verify`"))),
            remedy="run `log verify` on it; monitor only a log that verifies",
        )
    records: list[InferenceRecord] = []
    tree = CompactRange()
    for item in RecordScanner(log_dir / "records.cbor"):
        if len(records) == audit.records:
            break
        if item.problem is not None:
            raise MonitorDeniedError(f"{log_dir}: record {len(records)} changed after the audit")
        tree.append(leaf_hash(item.raw))
        records.append(record_from_map(item.value))
    if len(records) != audit.records or tree.root() != audit.root:
        raise MonitorDeniedError(f"{log_dir}: the records changed while they were read")
    return records[: audit.signed]


def training_columns(
    path: Path, features: Sequence[str], summary: VerificationSummary
) -> dict[str, list[float]]:
    """The training values of each feature, from bytes equal to the summary's train-data."""
    columns: dict[str, list[float]] = {f: [] for f in features}
    with TabularReader(path) as reader:
        missing = [f for f in features if reader.columns and f not in reader.columns]
        if missing:
            raise BadInputError(f"{path}: no column(s) {', '.join(missing)}")
        for row in reader:
            for name in features:
                value = _number(row.get(name))
                if value is not None:
                    columns[name].append(value)
        digest = reader.sha256
    attested = summary.subject(TRAIN_ROLE)
    if attested is not None and attested.digest.get("sha256") != digest:
        raise MonitorDeniedError(
            f"{path} is not the training data the summary names",
            remedy=f"pass the {TRAIN_ROLE} the pipeline verified "
            f"(sha256 {attested.digest.get('sha256', '?')[:16]}…)",
        )
    return columns


def _number(cell: object) -> float | None:
    if cell is None:
        return None
    if isinstance(cell, int | float):  # bool too: True is 1.0
        return float(cell) if math.isfinite(cell) else None
    try:
        value = float(str(cell))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def served(record: InferenceRecord) -> bool:
    """Whether the server answered the request with a success (2xx): a prediction was served."""
    return 200 <= record.status < 300


def request_rows(document: object, features: Sequence[str]) -> list[list[Any]]:
    """The rows of a parsed request body, the protocol told by the body itself.

    A v1 body is exactly ``{"instances": ...}``; a v2 body needs ``inputs`` and may not
    hold ``instances``: no body is both, so the decoder that accepts it is the one the
    server used, whatever the logged request target looked like (a query string, an
    escaped ``%3A``, a route of the application's own)."""
    if isinstance(document, dict) and "instances" in document:
        return decode_v1(document, features)
    return decode_v2(document, features).rows


def logged_rows(record: InferenceRecord, features: Sequence[str]) -> list[list[float]] | None:
    """The feature rows of one logged request; None when its input was not logged.

    A logged input that is not rows of ``features`` raises
    :class:`~mlspec_attest.errors.BadInputError` (for a request the server refused, 400,
    that is expected; for a served one it is a finding, :func:`drift_metrics`)."""
    if record.input is None:
        return None
    rows = request_rows(parse_body(record.input), features)
    return [[float(v) for v in row] for row in rows]


def monitor_window(request: MonitorRequest) -> dict[str, Any]:
    """The metrics document of the window (module docstring)."""
    every = verified_records(request.log_dir, request.log_key)
    records = [r for r in every if r.vsa_digest == request.summary_digest]
    if request.window is not None:
        records = records[-request.window :]
    if not records:
        raise BadInputError(
            f"{request.log_dir}: no request served under summary {request.summary_digest[:16]}…"
        )
    drift = drift_metrics(records, request)
    live = label_metrics(records, request.labels, every)
    document: dict[str, Any] = {
        "schemaVersion": MONITOR_SCHEMA,
        "metrics": {**traffic_metrics(records), **drift.metrics, **live.metrics},
        "slices": drift.slices,
    }
    if drift.omitted or live.omitted:
        document["omitted"] = {**drift.omitted, **live.omitted}
    return document


def drift_metrics(records: Sequence[InferenceRecord], request: MonitorRequest) -> Measured:
    """Drift of the served requests' logged inputs against the training columns.

    Fails closed: when a served request's logged input is not rows of the features, the
    drift metrics are withheld (``omitted`` says why) and ``drift.undecodable`` counts
    such requests, so a policy bound on any drift metric cannot pass."""
    live: list[list[float]] = []
    logged = undecodable = 0
    for record in records:
        if not served(record) or record.input is None:
            continue
        logged += 1
        try:
            live += logged_rows(record, request.features) or []
        except MlspecError:
            undecodable += 1
    if not logged:
        return Measured()
    part = Measured(metrics={"drift.undecodable": float(undecodable)})
    if undecodable:
        reason = (
            f"withheld: {undecodable} served request(s) of the window logged an input that "
            f"is not rows of the {len(request.features)} feature(s) measured; drift over the "
            "other requests would leave theirs out"
        )
        part.omitted = dict.fromkeys(DRIFT_METRICS, reason)
        return part
    train = training_columns(request.train_data, request.features, request.summary)
    drift = {
        name: feature_drift(train[name], [row[i] for row in live], request.bins)
        for i, name in enumerate(request.features)
    }
    part.slices["feature"] = {
        name: {"count": d.live_count, "metrics": d.metrics()} for name, d in drift.items()
    }
    part.metrics["drift.psi_max"] = round(max(d.psi for d in drift.values()), 6)
    part.metrics["drift.ks_pvalue_min"] = round(min(d.ks_pvalue for d in drift.values()), 6)
    part.metrics["drift.features_shifted"] = float(sum(d.psi > PSI_SHIFT for d in drift.values()))
    part.metrics["drift.rows"] = float(len(live))
    return part


def traffic_metrics(records: Sequence[InferenceRecord]) -> dict[str, float]:
    """Requests, errors, latency and the prediction distribution of the window."""
    latencies = sorted(r.latency_us for r in records)
    predictions = [v for r in records if served(r) for v in _values(r.output)]
    errors = sum(r.status >= 500 for r in records)
    out = {
        "window.requests": float(len(records)),
        "window.errors": float(errors),
        "window.error_rate": errors / len(records),
        "latency.p50_us": float(_percentile(latencies, 0.50)),
        "latency.p95_us": float(_percentile(latencies, 0.95)),
    }
    if predictions:
        out["prediction.mean"] = round(statistics.fmean(predictions), 6)
        out["prediction.std"] = round(statistics.pstdev(predictions), 6)
    return out


def label_metrics(
    records: Sequence[InferenceRecord],
    labels: Mapping[str, float],
    log: Sequence[InferenceRecord] | None = None,
) -> Measured:
    """Live error of the window's served requests whose true value has arrived.

    A label pairs with the one record of its request id. Request ids are the client's
    to choose: an id on more than one record of the verified ``log`` (default: the
    window) is ambiguous, and a served record whose output is not exactly one prediction
    cannot be paired. Either makes the live error one the client could steer (replay its
    best request under a labelled id, or hide its worst in a batch), so it fails closed:
    ``live.labels_ambiguous`` and ``live.labels_unpairable`` count them and the live
    metrics are withheld (``omitted`` says why)."""
    if not labels:
        return Measured()
    uses = Counter(
        r.request_id for r in (records if log is None else log) if r.request_id in labels
    )
    pairs: list[tuple[float, float]] = []
    ambiguous = unpairable = 0
    for rid, record in {r.request_id: r for r in records if r.request_id in labels}.items():
        values = _values(record.output)
        if uses[rid] > 1:
            ambiguous += 1
        elif served(record) and len(values) != 1:
            unpairable += 1
        elif served(record):
            pairs.append((values[0], labels[rid]))
    part = Measured(
        metrics={
            "live.labels_ambiguous": float(ambiguous),
            "live.labels_unpairable": float(unpairable),
        }
    )
    if ambiguous or unpairable:
        reason = (
            f"withheld: of the labels naming a request of the window, {ambiguous} name a "
            f"request id the log holds more than once and {unpairable} a served request "
            "that is not one prediction; the live error without them is the client's to choose"
        )
        part.omitted = dict.fromkeys(LIVE_METRICS, reason)
    elif pairs:
        errors = [p - y for p, y in pairs]
        part.metrics["live.labelled"] = float(len(pairs))
        part.metrics["live.mae"] = round(statistics.fmean(abs(e) for e in errors), 6)
        part.metrics["live.rmse"] = round(math.sqrt(statistics.fmean(e * e for e in errors)), 6)
    return part


def _values(output: Any) -> list[float]:
    """The numeric predictions in a logged output (a number, a list, or a v2/v1 response)."""
    if isinstance(output, dict):
        output = output.get("predictions", output.get("outputs", output.get("data")))
    if isinstance(output, list) and output and isinstance(output[0], dict):
        output = output[0].get("data")
    if isinstance(output, bool):
        return []
    if isinstance(output, int | float):
        return [float(output)] if math.isfinite(output) else []
    if isinstance(output, list):
        return [float(v) for v in output if isinstance(v, int | float) and not isinstance(v, bool)]
    return []


def _percentile(ordered: Sequence[int], p: float) -> int:
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]
