"""One (sub)layout verified in in-toto's order, every failure collected (see :mod:`.verify`).

Steps 1-2 (layout signatures, expiry) are here; the links of each step are
:mod:`.links`, sublayouts recurse into :func:`verify_layout`, the rules are
:mod:`.artifact_rules` and the inspections :mod:`.inspections`. The result is
in-toto's summary link (what a sublayout contributes to its parent step).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlspec_attest.formats.rfc3339 import format_rfc3339, parse_rfc3339
from mlspec_attest.interop.intoto.artifact_rules import check_rules
from mlspec_attest.interop.intoto.inspections import run_inspections
from mlspec_attest.interop.intoto.links import (
    check_agreement,
    load_links,
    note_command_differences,
    signature_problem,
    verified_links,
)
from mlspec_attest.interop.intoto.scope import LayoutScope
from mlspec_attest.interop.intoto.support import lib
from mlspec_attest.verify.report import Check, StageSummary

STEP_KIND = "in-toto step"
INSPECTION_KIND = "in-toto inspection"


def verify_layout(scope: LayoutScope) -> Any | None:
    """Verify; return in-toto's summary link, or None if this (sub)layout failed."""
    get_summary_link = lib("in_toto.verifylib").get_summary_link

    start = len(scope.report.failures)
    if not check_signatures(scope):
        return None
    layout = scope.metadata.get_payload()
    check_expiry(scope, layout)
    links: dict[str, Any] = {}
    for step in layout.steps:
        found = step_links(scope, layout, step)
        if found is not None:
            links[step.name] = next(iter(found.values()))
    check_rules(scope, layout.steps, links, "step")
    inspected = run_inspections(scope, layout)
    check_rules(scope, layout.inspect, {**links, **inspected}, "inspection")
    summarize(scope, layout, links)
    if len(scope.report.failures) > start:
        return None
    return get_summary_link(layout, links, scope.step_name)


def check_signatures(scope: LayoutScope) -> bool:
    """Step 1: the layout is signed by every required key."""
    ok = True
    for keyid, key in scope.keys.items():
        problem = signature_problem(scope.metadata, key)
        if problem is not None:
            ok = False
            scope.fail(
                Check.POLICY_SIGNATURE,
                scope.layout_stage,
                "the layout is not signed by a required key",
                expected=f"a valid signature by key {keyid[:16]}",
                found=problem,
                remedy="pass the layout owner's public key, or have the owner sign the "
                "layout again (in-toto-sign) if it was edited",
            )
    return ok


def check_expiry(scope: LayoutScope, layout: Any) -> None:
    """Step 2: the layout has not expired."""
    expires = parse_rfc3339(layout.expires)
    if expires <= scope.now:
        scope.fail(
            Check.POLICY_EXPIRED,
            scope.layout_stage,
            "the layout has expired",
            expected=f"now before {layout.expires}",
            found=f"now is {format_rfc3339(scope.now)}",
            remedy="have the layout owner set a later 'expires' and sign the layout again",
        )


def step_links(scope: LayoutScope, layout: Any, step: Any) -> dict[str, Any] | None:
    """Steps 3-7 for one step: its verified links (sublayouts summarized), or None."""
    found = load_links(scope, layout, step)
    if found is None:
        return None
    verified = verified_links(scope, layout, step, found)
    if verified is None:
        return None
    links = summarize_sublayouts(scope, layout, step, verified)
    if links is None:
        return None
    note_command_differences(scope, step, links)
    return links if check_agreement(scope, step, links) else None


def summarize_sublayouts(
    scope: LayoutScope, layout: Any, step: Any, verified: Mapping[str, tuple[Path, Any]]
) -> dict[str, Any] | None:
    """Step 5: a link that is a sublayout is verified and replaced by its summary link."""
    links: dict[str, Any] = {}
    ok = True
    for keyid, (_path, metadata) in verified.items():
        payload = metadata.get_payload()
        if payload.type_ == "layout":
            sub = scope.sublayout(metadata, keyid, layout.keys.get(keyid), step.name)
            summary = verify_layout(sub)
            if summary is None:
                ok = False
                continue
            payload = summary
        links[keyid] = payload
    return links if ok else None


def summarize(scope: LayoutScope, layout: Any, links: Mapping[str, Any]) -> None:
    """One report stage per step and inspection, with its status, signers and files."""
    failed = {f.stage for f in scope.report.failures if f.stage}
    summaries = []
    for step in layout.steps:
        stage = scope.stage(step.name)
        if step.name not in links:
            status = "failed" if scope.files.get(stage) or stage in failed else "missing"
        else:
            status = "failed" if stage in failed else "ok"
        summaries.append(
            StageSummary(
                stage,
                STEP_KIND,
                status,
                tuple(scope.signers.get(stage, ())),
                tuple(scope.files.get(stage, ())),
            )
        )
    for inspection in layout.inspect:
        stage = scope.stage(inspection.name)
        status = scope.inspection_status.get(stage, "not-run")
        if status == "ok" and stage in failed:
            status = "failed"
        summaries.append(StageSummary(stage, INSPECTION_KIND, status))
    scope.report.stages.extend(summaries)
