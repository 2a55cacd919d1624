"""Launch criteria and policy requirements, judged in one place.

A criterion names the stage whose attested metrics are its evidence and one kind of
bound: ``metric`` with ``min``/``max``; ``change`` against a baseline model; over the
slices of a family, ``gap`` (best minus worst), ``ratio`` (worst over best: the
four-fifths rule is ``min: 0.8``), ``eachSlice`` (every slice within bounds) and
``support`` (every slice has at least ``min`` samples); or ``expr``, CEL over the
stage's record. Typed criteria compile to CEL; every criterion is evaluated by
:mod:`mlspec_attest.policy.celexpr`. The objectives document
(:mod:`mlspec_attest.policy.objectives`) and the policy's typed requirements both use it.

Fail closed: a missing metric or slice, too few slices with enough support, a NaN or
infinite value, a missing baseline for a ``change`` criterion: each is a failed
criterion with its own message and the values it observed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from msgspec import Struct, field

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.evidence.metrics_file import load_metrics_file
from mlspec_attest.formats.inputs import named
from mlspec_attest.policy.celexpr import (
    ExpressionError,
    compile_expression,
    key,
    literal,
    non_finite_paths,
    term_values,
)


def as_doubles(values: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics as floats: CEL never compares an int metric with a double threshold."""
    return {
        k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in values.items()
    }


class Evidence(Struct, frozen=True):
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


class CriterionResult(Struct, frozen=True):
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


def criterion_kind(c: Mapping[str, Any]) -> str:
    for kind in ("change", "gap", "ratio", "support", "eachSlice", "expr"):
        if kind in c:
            return kind
    return "threshold"


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
    if kind in ("gap", "ratio", "eachSlice"):
        return _compile_slices(kind, c[kind], ev, where)
    if kind == "support":
        return _compile_support(c["support"], ev)
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
    need = 1 if kind == "eachSlice" else 2
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
    listing = ", ".join(terms)
    if kind == "gap":
        observed["gap"] = max(observed.values()) - min(observed.values())
        return (
            f"max([{listing}]) - min([{listing}]) <= {literal(spec['max'])}",
            f"gap <= {spec['max']}",
            observed,
            note,
        )
    if kind == "ratio":
        return _ratio(spec, observed, listing, note)
    parts, thresholds = zip(*(_bounds(t, spec) for t in terms), strict=True)
    return " && ".join(parts), f"each slice {thresholds[0]}", observed, note


def _ratio(
    spec: Mapping[str, Any], observed: dict[str, float], listing: str, note: str
) -> Compiled:
    """A ``ratio`` criterion: the worst slice over the best (the four-fifths rule: 0.8)."""
    values = list(observed.values())
    if min(values) < 0:
        raise _Fail("a ratio of slices needs metrics that are not negative", observed)
    if max(values) == 0:
        raise _Fail("ratio undefined: the best slice's metric is 0", observed)
    observed["ratio"] = min(values) / max(values)
    return (
        f"min([{listing}]) / max([{listing}]) >= {literal(spec['min'])}",
        f"worst / best slice >= {spec['min']}",
        observed,
        note,
    )


def _compile_support(spec: Mapping[str, Any], ev: Evidence) -> Compiled:
    """A ``support`` criterion: every slice of a family has at least ``min`` samples."""
    family = spec["family"]
    if family not in ev.slices:
        raise _Fail(f"slice family {family!r} missing from {ev.stage}'s attestation")
    excluded = set(spec.get("exclude", []))
    counts = {v: n for v, n in sorted(ev.slice_counts()[family].items()) if v not in excluded}
    if not counts:
        raise _Fail(f"no slice of {family!r} to count")
    observed = {f"{family}={v}.count": float(n) for v, n in counts.items()}
    terms = [f"counts[{key(family)}][{key(v)}] >= {int(spec['min'])}" for v in counts]
    return " && ".join(terms), f"each slice count >= {spec['min']}", observed, ""


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
    activation = _activation(ev, baseline, stages)
    try:
        expression, threshold, observed, note = _compile(c, ev, baseline)
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
        message = f"cannot evaluate: {message}" + terms_seen(expression, activation)
        return CriterionResult(
            c["id"], kind, stage, False, message, expression, threshold, observed, ev.digest
        )
    summary = ", ".join(f"{k}={v:.6g}" for k, v in observed.items())
    message = ("met" if passed else "not met") + (f": {summary}" if summary else "")
    if kind == "expr" and not passed:
        message += terms_seen(expression, activation)
    if note:
        message += f" ({note})"
    return CriterionResult(
        c["id"], kind, stage, passed, message, expression, threshold, observed, ev.digest
    )


def describe_criterion(c: Mapping[str, Any]) -> str:
    """A criterion's bound in words, for people reading a policy or objectives."""
    kind = criterion_kind(c)
    if kind == "threshold":
        return " and ".join(
            f"{c['metric']} {op} {c[k]}" for k, op in (("min", ">="), ("max", "<=")) if k in c
        )
    if kind == "expr":
        return str(c["expr"])
    spec = c[kind]
    if kind == "change":
        unit = " (relative)" if spec.get("relative") else ""
        return f"{spec['metric']} ({spec['direction']}) worsens by at most {spec['maxWorsening']}{unit} against the baseline"
    if kind == "support":
        return f"every {spec['family']} slice has at least {spec['min']} rows"
    support = f" (slices with >= {spec['minCount']} rows)" if spec.get("minCount") else ""
    if kind == "gap":
        return f"{spec['metric']} best minus worst {spec['family']} slice <= {spec['max']}{support}"
    if kind == "ratio":
        return f"{spec['metric']} worst over best {spec['family']} slice >= {spec['min']}{support}"
    bounds = " and ".join(
        f"{op} {spec[k]}" for k, op in (("min", ">="), ("max", "<=")) if k in spec
    )
    return f"{spec['metric']} of every {spec['family']} slice {bounds}{support}"


def terms_seen(expression: str, activation: Mapping[str, Any]) -> str:
    """``"; observed: term = value, ..."`` for what a CEL expression read (empty if none)."""
    if not expression:
        return ""
    try:
        values = term_values(expression, activation)
    except (ExpressionError, MalformedDocumentError, ValueError, TypeError):
        return ""
    if not values:
        return ""
    return "; observed: " + ", ".join(f"{term} = {value}" for term, value in values.items())


def evidence_from_metrics_files(files: Sequence[tuple[str, Path]]) -> dict[str, Evidence]:
    """Evidence from local metrics JSON files (stage -> file), for pre-signing checks."""
    out: dict[str, Evidence] = {}
    for stage, path in files:
        metrics, slices = load_metrics_file(path)
        out[stage] = Evidence(stage, metrics, slices, digest=f"file:{path}")
    return out
