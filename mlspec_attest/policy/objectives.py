"""Codified objectives: the launch criteria a model must meet, evaluated in one place.

The objectives document (YAML, ``kind: Objectives``; schema in
``schemas/objectives-v1.schema.json``) is the signed product of the
``objectives`` stage, so later stages cannot move the goalposts. Each criterion
names the stage whose attested metrics are its evidence. Typed criteria
compile to CEL; ``expr`` criteria are CEL already; :func:`evaluate_objectives`
runs them all through :mod:`mlspec_attest.policy.celexpr`.

Fail closed: a missing metric or slice, too few slices with enough support, a
NaN or infinite value, a missing baseline for a ``change`` criterion: each is a
failed criterion with its own message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlspec_attest.errors import MalformedDocumentError, PolicyError
from mlspec_attest.evidence.metrics_file import load_metrics_file
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.limits import MAX_OBJECTIVES_BYTES
from mlspec_attest.formats.schemas import schema_errors
from mlspec_attest.formats.yamlio import decode_yaml, plain, read_yaml_file
from mlspec_attest.policy.celexpr import (
    ExpressionError,
    compile_expression,
    key,
    literal,
    non_finite_paths,
)
from mlspec_attest.policy.source import parse_yaml

OBJECTIVES_KIND = "Objectives"


def as_doubles(values: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics as floats: CEL never compares an int metric with a double threshold."""
    return {
        k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in values.items()
    }


@dataclass(frozen=True)
class Evidence:
    """The attested metrics of one stage, as criteria see them."""

    stage: str
    metrics: Mapping[str, float]
    slices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    digest: str = ""  # sha256 of the signed statement that carries these metrics

    def metric_values(self) -> dict[str, Any]:
        return as_doubles(self.metrics)

    def slice_metrics(self) -> dict[str, dict[str, Any]]:
        return {
            fam: {val: as_doubles(entry.get("metrics", {})) for val, entry in members.items()}
            for fam, members in self.slices.items()
        }

    def slice_counts(self) -> dict[str, dict[str, int]]:
        return {
            fam: {val: int(entry.get("count", 0)) for val, entry in members.items()}
            for fam, members in self.slices.items()
        }


@dataclass(frozen=True)
class CriterionResult:
    """The outcome of one criterion, for reports."""

    id: str
    kind: str
    stage: str
    passed: bool
    message: str
    expression: str = ""
    threshold: str = ""
    observed: dict[str, float] = field(default_factory=dict)
    evidence: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "stage": self.stage,
            "result": "pass" if self.passed else "fail",
            "message": self.message,
            "expression": self.expression,
            "threshold": self.threshold,
            "observed": self.observed,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Objectives:
    """A validated objectives document."""

    name: str
    version: str
    criteria: tuple[dict[str, Any], ...]
    document: dict[str, Any]

    def stages(self) -> set[str]:
        return {c["stage"] for c in self.criteria}


def criterion_kind(c: Mapping[str, Any]) -> str:
    for kind in ("change", "gap", "eachSlice", "expr"):
        if kind in c:
            return kind
    return "threshold"


def parse_objectives(doc: Any, *, what: str = "objectives", line_of: Any = None) -> Objectives:
    """Validate a plain objectives document; raise PolicyError listing every problem."""
    problems = []
    for path, message in schema_errors("objectives-v1", doc):
        line = line_of(path) if line_of else None
        where = "/".join(map(str, path)) or "(root)"
        problems.append(f"{'line ' + str(line) + ': ' if line else ''}{where}: {message}")
    if not problems:
        ids = [c["id"] for c in doc["criteria"]]

        def at(path: list[str | int], message: str) -> None:
            line = line_of(path) if line_of else None
            where = "/".join(map(str, path))
            problems.append(f"{'line ' + str(line) + ': ' if line else ''}{where}: {message}")

        for i, c in enumerate(doc["criteria"]):
            if ids.count(c["id"]) > 1 and ids.index(c["id"]) != i:
                at(["criteria", i, "id"], f"duplicate criterion id {c['id']!r}")
            if "expr" in c:
                try:
                    compile_expression(c["expr"])
                except MalformedDocumentError as exc:
                    at(["criteria", i, "expr"], exc.message)
            places: list[tuple[list[str | int], Any]] = [
                (["criteria", i], c),
                (["criteria", i, "eachSlice"], c.get("eachSlice", {})),
            ]
            for path, bounds in places:
                if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
                    at(
                        path,
                        f"min {bounds['min']} is above max {bounds['max']}",
                    )
    if problems:
        raise PolicyError(f"{what}: invalid objectives document", problems)
    meta = doc["metadata"]
    return Objectives(meta["name"], str(meta["version"]), tuple(doc["criteria"]), doc)


def load_objectives_text(text: str | bytes, *, what: str) -> Objectives:
    """Parse YAML (or JSON) objectives text with line numbers for problems.

    Strict and bounded like a policy (:mod:`mlspec_attest.formats.yamlio`), up to
    :data:`~mlspec_attest.formats.limits.MAX_OBJECTIVES_BYTES`; bytes must be UTF-8.
    """
    if isinstance(text, bytes):
        text = decode_yaml(text, what=what)
    root, line_of = parse_yaml(text, source=what, max_bytes=MAX_OBJECTIVES_BYTES)
    return parse_objectives(plain(root), what=what, line_of=line_of)


def load_objectives(path: Path) -> Objectives:
    """Read an objectives file (UTF-8, at most ``MAX_OBJECTIVES_BYTES``) and parse it."""
    text = read_yaml_file(path, MAX_OBJECTIVES_BYTES, what=str(path), kind="an objectives document")
    return load_objectives_text(text, what=str(path))


def looks_like_objectives(data: bytes) -> bool:
    """Cheap sniff used at signing time: does this YAML/JSON declare ``kind: Objectives``?

    A false positive costs a full parse (which then reports its problems); a
    false negative would skip the document, so comments and quoting are tolerated.
    """
    head = data[:8192].decode("utf-8", "replace")
    for line in head.splitlines():
        text = line.split(" #", 1)[0].replace('"', "").replace("'", "").replace(" ", "")
        if text in ("kind:Objectives", "kind:Objectives,") or "kind:Objectives," in text:
            return True
        if "kind:Objectives}" in text or text.endswith("kind:Objectives"):
            return True
    return False


# -- evaluation ------------------------------------------------------------------


class _Fail(Exception):
    def __init__(self, message: str, observed: dict[str, float] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.observed = observed or {}


def _value(container: Mapping[str, Any], name: str, where: str) -> float:
    if name not in container:
        raise _Fail(f"metric {name!r} missing from {where}")
    value = container[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Fail(f"metric {name!r} in {where} is not a number ({value!r})")
    if not math.isfinite(value):
        raise _Fail(f"metric {name!r} in {where} is not finite ({value!r})", {name: float(value)})
    return float(value)


def _bounds(expr: str, c: Mapping[str, Any]) -> tuple[str, str]:
    parts, text = [], []
    if "min" in c:
        parts.append(f"{expr} >= {literal(c['min'])}")
        text.append(f">= {c['min']}")
    if "max" in c:
        parts.append(f"{expr} <= {literal(c['max'])}")
        text.append(f"<= {c['max']}")
    return " && ".join(parts), " and ".join(text)


def _eligible(c: Mapping[str, Any], ev: Evidence) -> tuple[list[str], list[str]]:
    family = c["family"]
    if family not in ev.slices:
        raise _Fail(f"slice family {family!r} missing from {ev.stage}'s attestation")
    counts = ev.slice_counts()[family]
    excluded = set(c.get("exclude", []))
    min_count = int(c.get("minCount", 0))
    eligible: list[str] = []
    skipped: list[str] = []
    for value in sorted(counts):
        if value in excluded:
            continue
        (eligible if counts[value] >= min_count else skipped).append(value)
    return eligible, skipped


Compiled = tuple[str, str, dict[str, float], str]
"""(CEL expression, threshold text, observed values, note) of one criterion."""


def _compile(c: Mapping[str, Any], ev: Evidence, baseline: Mapping[str, float] | None) -> Compiled:
    """(CEL expression, threshold text, observed values, note) for one criterion."""
    kind = criterion_kind(c)
    where = f"{ev.stage}'s attestation"
    if kind == "threshold":
        v = _value(ev.metrics, c["metric"], where)
        expr, threshold = _bounds(f"metrics[{key(c['metric'])}]", c)
        return expr, threshold, {c["metric"]: v}, ""
    if kind == "change":
        return _compile_change(c["change"], ev, baseline, where)
    if kind in ("gap", "eachSlice"):
        return _compile_slices(kind, c[kind], ev, where)
    return c["expr"], "expression is true", {}, ""


def _compile_change(
    ch: Mapping[str, Any], ev: Evidence, baseline: Mapping[str, float] | None, where: str
) -> Compiled:
    """A ``change`` criterion: how much worse than the baseline model the metric may get."""
    metric = ch["metric"]
    if baseline is None:
        raise _Fail(
            "no baseline metrics: pass the baseline model's attestation "
            f"({named('baseline_attestation')}) or metrics ({named('baseline_metrics')})"
        )
    cur = _value(ev.metrics, metric, where)
    base = _value(baseline, metric, "the baseline attestation")
    m, b = f"metrics[{key(metric)}]", f"baseline[{key(metric)}]"
    delta = f"({m} - {b})" if ch["direction"] == "lower-is-better" else f"({b} - {m})"
    if ch.get("relative"):
        if base == 0:
            raise _Fail(f"relative change undefined: baseline {metric} is 0", {metric: cur})
        delta = f"{delta} / abs({b})"
    unit = " (relative)" if ch.get("relative") else ""
    return (
        f"{delta} <= {literal(ch['maxWorsening'])}",
        f"worsening <= {ch['maxWorsening']}{unit}",
        {metric: cur, f"baseline.{metric}": base},
        "",
    )


def _compile_slices(kind: str, spec: Mapping[str, Any], ev: Evidence, where: str) -> Compiled:
    """A ``gap`` (between the best and worst slice) or ``eachSlice`` criterion."""
    family, metric = spec["family"], spec["metric"]
    eligible, skipped = _eligible(spec, ev)
    note = (
        f"skipped for support < {spec.get('minCount', 0)}: {', '.join(skipped)}" if skipped else ""
    )
    need = 2 if kind == "gap" else 1
    if len(eligible) < need:
        raise _Fail(
            f"{len(eligible)} slice(s) of {family!r} with count >= {spec.get('minCount', 0)}; "
            f"need at least {need}" + (f" ({note})" if note else "")
        )
    metrics = ev.slice_metrics()[family]
    observed = {
        f"{family}={v}": _value(metrics[v], metric, f"slice {family}={v} of {where}")
        for v in eligible
    }
    terms = [f"slices[{key(family)}][{key(v)}][{key(metric)}]" for v in eligible]
    if kind == "gap":
        observed["gap"] = max(observed.values()) - min(observed.values())
        listing = ", ".join(terms)
        return (
            f"max([{listing}]) - min([{listing}]) <= {literal(spec['max'])}",
            f"gap <= {spec['max']}",
            observed,
            note,
        )
    parts, thresholds = zip(*(_bounds(t, spec) for t in terms), strict=True)
    return " && ".join(parts), f"each slice {thresholds[0]}", observed, note


def _activation(
    ev: Evidence, baseline: Mapping[str, float] | None, stages: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What a criterion's CEL expression sees."""
    return {
        "metrics": ev.metric_values(),
        "slices": ev.slice_metrics(),
        "counts": ev.slice_counts(),
        "baseline": as_doubles(baseline or {}),
        "stages": dict(stages or {}),
    }


def evaluate_criterion(
    c: Mapping[str, Any],
    evidence: Mapping[str, Evidence],
    baseline: Mapping[str, float] | None,
    stages: Mapping[str, Any] | None = None,
) -> CriterionResult:
    """Judge one criterion on its stage's evidence; every failure is a result, never raised."""
    kind = criterion_kind(c)
    stage = c["stage"]
    ev = evidence.get(stage)
    if ev is None:
        return CriterionResult(
            c["id"],
            kind,
            stage,
            False,
            f"no verified attestation of stage {stage!r} to take metrics from",
        )
    expression = threshold = note = ""
    observed: dict[str, float] = {}
    try:
        expression, threshold, observed, note = _compile(c, ev, baseline)
        activation = _activation(ev, baseline, stages)
        if kind == "expr":
            bad = non_finite_paths({k: activation[k] for k in ("metrics", "slices", "baseline")})
            if bad:
                raise _Fail(f"non-finite value(s) in the evidence: {', '.join(bad)}")
        passed = compile_expression(expression).evaluate(activation)
    except _Fail as exc:
        message, observed = exc.message, observed or exc.observed
        return CriterionResult(
            c["id"], kind, stage, False, message, expression, threshold, observed, ev.digest
        )
    except (ExpressionError, MalformedDocumentError) as exc:
        message = exc.message if isinstance(exc, MalformedDocumentError) else str(exc)
        return CriterionResult(
            c["id"], kind, stage, False, f"cannot evaluate: {message}", expression, threshold,
            observed, ev.digest,
        )  # fmt: skip
    summary = ", ".join(f"{k}={v:.6g}" for k, v in observed.items())
    message = ("met" if passed else "not met") + (f": {summary}" if summary else "")
    if note:
        message += f" ({note})"
    return CriterionResult(
        c["id"], kind, stage, passed, message, expression, threshold, observed, ev.digest
    )


def evaluate_objectives(
    objectives: Objectives,
    evidence: Mapping[str, Evidence],
    *,
    baseline: Mapping[str, float] | None = None,
    stages: Mapping[str, Any] | None = None,
) -> list[CriterionResult]:
    """Evaluate every criterion; the list has one result per criterion, in order."""
    return [evaluate_criterion(c, evidence, baseline, stages) for c in objectives.criteria]


def evidence_from_metrics_files(files: Sequence[tuple[str, Path]]) -> dict[str, Evidence]:
    """Evidence from local metrics JSON files (stage -> file), for pre-signing checks."""
    out: dict[str, Evidence] = {}
    for stage, path in files:
        metrics, slices = load_metrics_file(path)
        out[stage] = Evidence(stage, metrics, slices, digest=f"file:{path}")
    return out
