"""The evidence sections of the HTML audit report: data lineage and metrics per slice.

Both read the statements of the attestations the verdict used
(:attr:`ReportPage.statements <mlspec_attest.verify.report_page.ReportPage.statements>`):
the lineage draws each artifact (by digest) into the stages that read it and out of
the stages that wrote it, so a dataset can be followed to the model; the slices chart
draws every metric of every slice family a stage attested, one group per metric.
"""

from __future__ import annotations

import math
from typing import Any, Final

from mlspec_attest.formats.htmldoc import Markup, digest_cell, section, short_digest, table, tag
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.formats.svgchart import Bar, BarGroup, bar_chart
from mlspec_attest.formats.svgdag import Edge, Node, dag_svg
from mlspec_attest.verify.report_page import ReportPage, descriptor_digest

#: Bounds on what one chart draws (a stage may attest thousands of slices).
MAX_GROUPS: Final = 60
MAX_BARS: Final = 40


def lineage_section(page: ReportPage) -> Markup:
    """Datasets -> stages -> model: a graph by digest and the table of every artifact."""
    if not page.statements:
        return section(
            "lineage",
            "Data lineage",
            tag("p", None, "No stage attestation of this verdict was found in the store."),
        )
    nodes, edges, listed = _lineage_graph(page)
    figure = tag("div", {"class": "figure"}, dag_svg(nodes, edges, ident="lineage-dag",
                 label="data lineage: artifacts by digest, read and written by stages"))  # fmt: skip
    rows = [
        (stage, side, name, role or "", digest_cell(digest))
        for stage, side, name, role, digest in listed
    ]
    return section(
        "lineage",
        "Data lineage",
        tag(
            "p",
            None,
            "Artifacts by digest (yellow) flow into the stages that read them and "
            "out of the stages that wrote them; an artifact read by a later stage is the same "
            "bytes only if its digest is the same node.",
        ),
        figure,
        table(("stage", "side", "artifact", "role", "digest"), rows),
    )


def _lineage_graph(
    page: ReportPage,
) -> tuple[list[Node], list[Edge], list[tuple[str, str, str, str | None, str]]]:
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    listed: list[tuple[str, str, str, str | None, str]] = []
    for stage in page.stages:
        st = page.statements.get(stage.name)
        if st is None:
            continue
        stage_key = "stage:" + stage.name
        nodes[stage_key] = Node(stage_key, stage.name, (stage.kind,), stage.status)
        roles = _roles(st)
        for side, descriptors in (("material", st.materials), ("product", st.products)):
            for d in descriptors:
                digest = descriptor_digest(d)
                role = roles.get(d.name)
                listed.append((stage.name, side, d.name, role, digest))
                key = "artifact:" + digest
                if key not in nodes:
                    lines = (short_digest(digest),) + ((f"role: {role}",) if role else ())
                    nodes[key] = Node(key, d.name, lines, "artifact")
                pair = (key, stage_key) if side == "material" else (stage_key, key)
                edges.append(Edge(*pair, tooltip=f"{stage.name} {side}: {d.name}"))
    return _in_flow_order(nodes, edges), edges, listed


def _in_flow_order(nodes: dict[str, Node], edges: list[Edge]) -> list[Node]:
    """Artifacts just before the first stage that touches them, so the picture reads down."""
    order: list[str] = []
    for e in edges:
        for key in (e.source, e.target):
            if key not in order:
                order.append(key)
    return [nodes[k] for k in order]


def _roles(statement: StageStatement) -> dict[str, str]:
    """Artifact name -> the dataset or model role the stage gave it."""
    return {name: role for role, name in statement.metadata.roles.items()}


def slices_section(page: ReportPage) -> Markup:
    """Every attested metric per slice, one bar group per (stage, family, metric)."""
    groups: list[BarGroup] = []
    for stage in page.stages:
        st = page.statements.get(stage.name)
        if st is not None:
            groups += _groups(stage.name, st.metadata.slices)
    if not groups:
        return section("slices", "Metrics per slice", tag("p", None, "No stage attested slices."))
    shown = groups[:MAX_GROUPS]
    more = (
        tag("p", {"class": "warn"}, f"{len(groups) - len(shown)} more groups not drawn.")
        if len(groups) > len(shown)
        else Markup("")
    )
    chart = bar_chart(shown, ident="slice-chart", label="metrics per slice")
    return section("slices", "Metrics per slice", tag("div", {"class": "figure"}, chart), more)


def _groups(stage: str, slices: dict[str, Any]) -> list[BarGroup]:
    out: list[BarGroup] = []
    for family, values in sorted(slices.items()):
        if not isinstance(values, dict):
            continue
        metrics = sorted({m for v in values.values() for m in _metrics(v)})
        for metric in metrics:
            bars = tuple(
                Bar(str(name), float(_metrics(v)[metric]), f"n={_count(v)}")
                for name, v in sorted(values.items())
                if metric in _metrics(v) and math.isfinite(float(_metrics(v)[metric]))
            )
            if bars:
                out.append(BarGroup(f"{stage} · {family} · {metric}", bars[:MAX_BARS]))
    return out


def _metrics(value: Any) -> dict[str, float]:
    metrics = value.get("metrics") if isinstance(value, dict) else None
    if not isinstance(metrics, dict):
        return {}
    return {
        k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _count(value: Any) -> str:
    count = value.get("count") if isinstance(value, dict) else None
    return str(count) if isinstance(count, int) else "?"
