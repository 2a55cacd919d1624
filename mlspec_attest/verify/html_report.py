"""The audit report as one self-contained HTML file (``verify --report``, docs/report.md).

Top to bottom: the verdict banner; the denials, root causes first, each with what was
expected, what was found and how to fix it; the stage graph coloured by status; the
stages with their signers and attestation digests; objectives and requirements with
observed values and bounds; metrics per slice; the data lineage; the deploy
artifacts; every check with its evidence (the ``checks[]`` ledger). No script, no
network: inline CSS and SVG only, under a CSP that forbids loading anything. Every
string from a policy, an attestation or a summary goes through the one escaping
helper (:func:`mlspec_attest.formats.htmldoc.escape`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from mlspec_attest.formats.htmldoc import (
    Markup,
    badge,
    code,
    digest_cell,
    document,
    join,
    section,
    table,
    tag,
)
from mlspec_attest.formats.svgdag import Edge, Node, dag_svg
from mlspec_attest.formats.vsa import VerificationSummary
from mlspec_attest.policy.model import Policy
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.html_evidence import lineage_section, slices_section
from mlspec_attest.verify.report import VerificationReport
from mlspec_attest.verify.report_page import (
    ReportPage,
    page_from_report,
    page_from_summary,
    text,
)

#: How deep the evidence of one check is drawn as nested lists before it is shown as JSON.
EVIDENCE_DEPTH: Final = 3
_LEGEND: Final = (("ok", "verified"), ("failed", "failed"), ("missing", "required, missing"),
                  ("optional-missing", "optional, not run"), ("not-run", "not judged"))  # fmt: skip


def report_html(
    report: VerificationReport, policy: Policy | None, store: AttestationStore | None
) -> str:
    """The HTML report of a verification that just ran (``policy``: its compiled policy,
    for the stage order; ``store``: where the accepted attestations are, for lineage)."""
    return render_page(page_from_report(report, policy, store))


def summary_html(summary: VerificationSummary, store: AttestationStore | None) -> str:
    """The HTML report of a stored verification summary: its claims, marked as unverified."""
    return render_page(page_from_summary(summary, store))


def render_page(page: ReportPage) -> str:
    """One :class:`ReportPage` as a complete HTML document."""
    verdict = "PASSED" if page.passed else "DENIED"
    title = f"{verdict}: {page.policy_name or 'policy'} run {page.run_id or '-'}"
    parts: list[Markup] = [_denials(page)] if page.failures else []
    parts += [
        _pipeline(page),
        _stages(page),
        _criteria(page),
        slices_section(page),
        lineage_section(page),
        _artifacts(page),
        _checks(page),
    ]
    if page.notes:
        parts.append(section("notes", "Notes", tag("ul", None, *(tag("li", None, n)
                                                                  for n in page.notes))))  # fmt: skip
    return document(title, _banner(page), tag("main", None, *parts))


def _banner(page: ReportPage) -> Markup:
    roots = sum(1 for f in page.failures if not f.get("because"))
    head = (
        "Verification PASSED"
        if page.passed
        else f"Verification DENIED: {len(page.failures)} failure(s), {roots} root cause(s)"
    )
    facts = join(
        (
            f"policy {page.policy_name or '(unnamed)'} ", code(page.policy_digest),
            f" · run {page.run_id or '-'} · verified {page.verified_at}",
            f" · {len(page.stages)} stage(s), {len(page.checks)} check(s)",
        )
    )  # fmt: skip
    state = "passed" if page.passed else "failed"
    if page.source == "summary":
        head = (
            f"Verification summary says {'PASSED' if page.passed else 'FAILED'} (not verified here)"
        )
        state = "unverified" if page.passed else "failed"
    banner = tag(
        "header",
        {"class": f"banner {state}", "id": "verdict", "data-result": state},
        tag("h1", None, head),
        tag("div", {"class": "facts"}, facts),
    )
    if page.trust_note:
        banner = join((banner, tag("div", {"class": "warn", "id": "trust"}, page.trust_note)))
    return banner


def _denials(page: ReportPage) -> Markup:
    items = []
    for f in page.failures:
        because = text(f.get("because"))
        where = f"stage {text(f.get('stage'))}" if f.get("stage") else "policy"
        facts = _kv(
            (("expected", f.get("expected")), ("found", f.get("found")),
             ("fix", f.get("remedy")), ("because", because), ("error", f.get("error")),
             ("source", f.get("source")))
        )  # fmt: skip
        items.append(
            tag(
                "li",
                {"class": "consequence" if because else "root"},
                badge("failed", text(f.get("check"))),
                tag("strong", None, f" {where}: "),
                text(f.get("message")),
                facts,
            )
        )
    return section(
        "denials",
        "Denials (root causes first)",
        tag("ol", {"class": "denials"}, *items),
    )


def _kv(pairs: Sequence[tuple[str, Any]]) -> Markup:
    cells = [
        join((tag("dt", None, k), tag("dd", None, text(v)))) for k, v in pairs if text(v).strip()
    ]
    return tag("dl", {"class": "kv"}, *cells) if cells else Markup("")


def _pipeline(page: ReportPage) -> Markup:
    nodes = [
        Node(
            s.name,
            s.name,
            (f"kind: {s.kind}" if s.kind else "", f"{s.status}", _signed_by(s.signers)),
            s.status,
            dashed=s.status == "optional-missing",
        )
        for s in page.stages
    ]
    edges = [Edge(a, b) for a, b in page.edges]
    legend = tag(
        "p",
        {"class": "legend"},
        *(join((badge(status, label), " ")) for status, label in _LEGEND),
    )
    svg = dag_svg(nodes, edges, ident="stage-dag", label="pipeline stages by status")
    return section("pipeline", "Pipeline", legend, tag("div", {"class": "figure"}, svg))


def _signed_by(signers: Sequence[str]) -> str:
    return "signed by " + ", ".join(signers) if signers else "no accepted signature"


def _stages(page: ReportPage) -> Markup:
    body = [
        (
            s.name,
            s.kind,
            badge(s.status),
            ", ".join(s.signers) or "-",
            join((join((code(uri), " ", digest_cell(d))) for uri, d in s.inputs), sep="; "),
        )
        for s in page.stages
    ]
    return section(
        "stages", "Stages", table(("stage", "kind", "status", "signers", "attestations"), body)
    )


def _criteria(page: ReportPage) -> Markup:
    parts: list[Markup] = []
    for title, results in (("Objectives", page.objectives), ("Requirements", page.requirements)):
        if not results:
            continue
        body = [
            (
                text(r.get("id")),
                text(r.get("stage")) or "-",
                text(r.get("kind")),
                badge(text(r.get("result"))),
                _observed(r.get("observed")),
                text(r.get("threshold")) or text(r.get("expression")),
                text(r.get("message")),
            )
            for r in results
        ]
        headers = ("id", "stage", "kind", "result", "observed", "bound", "message")
        parts += [tag("h3", None, title), table(headers, body)]
    if not parts:
        parts = [tag("p", None, "The policy sets no objectives or requirements.")]
    return section("objectives", "Objectives and requirements", *parts)


def _observed(value: Any) -> Markup:
    if not isinstance(value, Mapping) or not value:
        return Markup("-")
    return join((join((code(k), f" = {v:g}" if isinstance(v, float) else f" = {text(v)}",
                       tag("br"))) for k, v in sorted(value.items())))  # fmt: skip


def _artifacts(page: ReportPage) -> Markup:
    if not page.artifacts:
        return section("artifacts", "Deploy artifacts", tag("p", None, "None checked."))
    body = [
        (
            text(a.get("role")),
            badge(text(a.get("status"))),
            text(a.get("path")) or "-",
            join(
                (digest_cell(f"{k}:{text(v)}") for k, v in sorted(_mapping(a.get("digest")))),
                sep=" ",
            ),
        )
        for a in page.artifacts
    ]
    return section(
        "artifacts", "Deploy artifacts", table(("role", "status", "path", "digest"), body)
    )


def _checks(page: ReportPage) -> Markup:
    body = [
        (
            text(c.get("check") or c.get("level")),
            text(c.get("stage")) or "-",
            badge(text(c.get("result"))),
            _evidence(c.get("evidence", {k: v for k, v in c.items() if k == "failures"}), 0),
        )
        for c in page.checks
    ]
    intro = tag("p", None, "Every check the policy asked for, in the order verify runs them, "
                "with the evidence it judged.")  # fmt: skip
    return section(
        "checks",
        "Checks and evidence",
        intro,
        table(("check", "stage", "result", "evidence"), body),
    )


def _evidence(value: Any, depth: int) -> Markup:
    """Evidence as nested definition lists; deeper than :data:`EVIDENCE_DEPTH`, JSON."""
    if isinstance(value, Mapping):
        if not value:
            return Markup("")
        if depth >= EVIDENCE_DEPTH:
            return tag("pre", None, json.dumps(value, indent=1, sort_keys=True, default=str))
        cells = [
            join((tag("dt", None, text(k)), tag("dd", None, _evidence(v, depth + 1))))
            for k, v in value.items()
        ]
        return tag("dl", {"class": "kv"}, *cells)
    if isinstance(value, list):
        if all(not isinstance(v, Mapping | list) for v in value):
            return join((code(text(v)) for v in value), sep=", ") if value else Markup("-")
        return join(_evidence(v, depth + 1) for v in value)
    return escape_value(value)


def escape_value(value: Any) -> Markup:
    if isinstance(value, str) and (value.startswith("sha256:") or len(value) == 64):
        return digest_cell(value)
    return join((text(value),))


def _mapping(value: Any) -> list[tuple[str, Any]]:
    return [(text(k), v) for k, v in value.items()] if isinstance(value, Mapping) else []
