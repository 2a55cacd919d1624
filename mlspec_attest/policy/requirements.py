"""The policy's ``requirements``: what compliance demands of every run, CEL or typed.

Two forms, told apart by ``stage``:

* ``{id, expr, description}`` — a CEL expression over the stage records
  (``stages.<name>.{metrics, slices, parameters, ...}``), the escape hatch;
* ``{id, stage, <bound>, description}`` — a typed bound on one stage's attested metrics,
  in the vocabulary of the objectives' criteria (``metric`` with ``min``/``max``,
  ``change``, ``gap``, ``ratio``, ``eachSlice``, ``support``, or ``expr`` over that stage),
  validated by the same schema definition and judged by the same evaluator
  (:mod:`mlspec_attest.policy.criteria`): no CEL to write for a floor, a ceiling, a slice
  gap, the four-fifths rule, a minimum support per slice or "no regression against the
  baseline".

Lint checks what the policy alone can tell: every stage named (in ``stage`` or inside a
CEL expression as ``stages.<name>``) exists, a typed bound names a stage whose kind
attests metrics, and a slice bound one whose kind attests slices. The names of metrics
and slice families come from the run, not the policy: ``policy test`` against a recorded
run shows whether they exist (a missing one is named in the failure).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.schemas import definition_errors
from mlspec_attest.formats.stages import StageKind
from mlspec_attest.policy.celexpr import compile_expression, expression_terms
from mlspec_attest.policy.model import Requirement, StagePolicy
from mlspec_attest.policy.problems import Findings

_CEL_KEYS: Final = frozenset({"id", "expr", "description"})
#: Stage kinds that attest no metrics of their own (a bound on one is likely a mistake).
_NO_METRICS: Final = frozenset(
    {StageKind.OBJECTIVES, StageKind.INGEST, StageKind.SPLIT, StageKind.PACKAGE,
     StageKind.SERVE, StageKind.LOG}
)  # fmt: skip
#: Stage kinds whose attestations carry metrics per slice (a slice bound elsewhere is
#: likely a mistake).
_SLICED: Final = frozenset(
    {StageKind.EVALUATE, StageKind.TEST, StageKind.MONITOR, StageKind.CUSTOM}
)
_SLICE_BOUNDS: Final = ("gap", "ratio", "eachSlice", "support")
_IN_STAGES: Final = re.compile(r"""["']([^"']*)["']\s+in\s+stages\b(?!\s*[.\[])""")
_STAGE_REF: Final = re.compile(r"""^stages(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*(["'])(.*?)\2\s*\])""")


def parse_requirements(
    reqs: list[dict[str, Any]], stages: Sequence[StagePolicy], report: Findings
) -> tuple[Requirement, ...]:
    """Every requirement, each problem reported on its line."""
    by_name = {s.name: s for s in stages}
    out = []
    for i, req in enumerate(reqs):
        path: list[str | int] = ["requirements", i]
        if "stage" in req:
            out.append(_typed(req, path, by_name, report))
        else:
            out.append(_cel(req, path, by_name, report))
    return tuple(out)


def _typed(
    req: dict[str, Any], path: list[str | int], stages: dict[str, StagePolicy], report: Findings
) -> Requirement:
    for where, message in definition_errors("objectives-v1", "criterion", req):
        report([*path, *where], message)
    name = req.get("stage")
    stage = stages.get(name) if isinstance(name, str) else None
    if stage is None:
        report([*path, "stage"], f"unknown stage {name!r}")
    elif stage.kind in _NO_METRICS:
        report(
            [*path, "stage"],
            f"stage {name!r} is of kind {stage.kind.value}, which attests no metrics: "
            "name the stage that measures them (train, evaluate, test, monitor ...)",
            "warning",
        )
    elif stage.kind not in _SLICED and any(bound in req for bound in _SLICE_BOUNDS):
        report(
            [*path, "stage"],
            f"stage {name!r} is of kind {stage.kind.value}, which attests no slices: "
            "a slice bound reads an evaluate, test or monitor stage",
            "warning",
        )
    if isinstance(req.get("expr"), str):
        _compiles(req["expr"], [*path, "expr"], report)
    return Requirement(str(req.get("id", "")), "", str(req.get("description", "")), dict(req))


def _cel(
    req: dict[str, Any], path: list[str | int], stages: dict[str, StagePolicy], report: Findings
) -> Requirement:
    for extra in sorted(set(req) - _CEL_KEYS):
        report([*path, extra], f"unknown field {extra!r} (a typed requirement names its stage)")
    expr = req.get("expr")
    if not isinstance(expr, str) or not expr:
        report(
            path,
            "a requirement is either 'expr' (CEL over stages.<name>) or a 'stage' with a "
            "bound: metric with min/max, change, gap, ratio, eachSlice or support",
        )
        expr = ""
    elif _compiles(expr, [*path, "expr"], report):
        for name in stages_read(expr):
            if name not in stages:
                report([*path, "expr"], f"the expression reads stages.{name}: no such stage")
    return Requirement(str(req.get("id", "")), expr, str(req.get("description", "")))


def _compiles(expr: str, path: list[str | int], report: Findings) -> bool:
    try:
        compile_expression(expr)
    except MalformedDocumentError as exc:
        report(path, exc.message)
        return False
    return True


def stages_read(expr: str) -> list[str]:
    """The stage names a CEL expression reads: ``stages.x...``, ``stages["x"]...`` and
    ``"x" in stages``, each once, in the order they appear."""
    names: list[str] = []
    for term in expression_terms(expr):
        match = _STAGE_REF.match(term)
        if match:
            names.append(match.group(1) or match.group(3))
    names += [m.group(1) for m in _IN_STAGES.finditer(expr)]
    return list(dict.fromkeys(names))


def requirement_stages(req: Requirement) -> list[str]:
    """The stages a requirement reads: its ``stage``, or those its expression selects."""
    if req.criterion is not None:
        return [str(req.criterion["stage"])]
    return stages_read(req.expr)
