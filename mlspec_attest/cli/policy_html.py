"""``policy show --format html``: the policy's required graph, signers and rules as one page.

Drawn from the same :func:`~.policy_view.policy_view` as the text and Mermaid forms, in
the audit report's style (:mod:`mlspec_attest.formats.htmldoc`, the same graph layout
and escaping): an author sees the order (solid arrows), the data flow their MATCH
rules create (dashed), who must sign each stage and how many, the rules, the ML checks
and the deploy roles. No trust decision: a YAML policy and its signed form show the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlspec_attest.cli.policy_view import PolicyView, StageView, policy_view
from mlspec_attest.formats.htmldoc import (
    Markup,
    code,
    document,
    join,
    section,
    table,
    tag,
)
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.formats.svgdag import Edge, Node, dag_svg

if TYPE_CHECKING:
    from mlspec_attest.policy.model import Policy


def policy_html(policy: Policy, digest: str | None = None) -> str:
    """The policy page (see the module docstring)."""
    view = policy_view(policy)
    name = policy.name or "(unnamed)"
    facts = join(
        (f"expires {format_rfc3339(policy.expires)} · digest ", code(digest or policy.digest()),
         f" · {len(view.stages)} stage(s), {len(view.functionaries)} functionar(ies)")
    )  # fmt: skip
    banner = tag(
        "header",
        {"class": "banner policy", "id": "verdict", "data-result": "policy"},
        tag("h1", None, f"Policy {name}"),
        tag("div", {"class": "facts"}, facts),
    )
    note = tag(
        "div", {"class": "warn"}, "What the policy requires; no trust decision is made here."
    )
    body = tag(
        "main",
        None,
        note,
        _graph(view),
        _functionaries(view),
        _stages(view),
        _policy_wide(view),
    )
    return document(f"Policy {name}", banner, body)


def _graph(view: PolicyView) -> Markup:
    nodes = [_stage_node(s) for s in view.stages]
    edges = [
        Edge(prior, s.stage.name) for s in view.stages for prior in s.stage.after
    ]  # order: what each stage must come after
    edges += [
        Edge(source, target, tooltip=f"{source} -> {target}: " + ", ".join(arts), dashed=True)
        for (source, target), arts in view.flows
    ]
    for i, a in enumerate(view.deploy, 1):
        key = f"deploy:{i}"
        nodes.append(Node(key, f"deploy {a.role}", (f"product {a.product}",), "artifact"))
        edges.append(Edge(a.stage, key, tooltip=f"{a.stage} produces {a.product}"))
    svg = dag_svg(nodes, edges, ident="policy-dag", label="the stages the policy requires")
    legend = tag(
        "p",
        None,
        "Solid arrows: order (after). Dashed: artifacts a MATCH rule takes from an earlier "
        "stage. Dashed box: optional stage. Hover a box or arrow for its full text.",
    )
    return section("pipeline", "Required stages", legend, tag("div", {"class": "figure"}, svg))


def _stage_node(view: StageView) -> Node:
    s = view.stage
    lines = (
        f"kind: {s.kind.value}",
        f"{view.threshold}: {', '.join(s.functionaries)}",
        "required" if s.required else "optional",
    )
    return Node(s.name, f"{view.number}. {s.name}", lines, "policy", dashed=not s.required)


def _functionaries(view: PolicyView) -> Markup:
    rows = []
    for f in view.functionaries:
        if f.identity is not None:
            rows.append((f.name, "Sigstore identity", f.identity.describe()))
        else:
            rows.append((f.name, f.key.algorithm, code(f"keyid {f.keyid}")))
    return section(
        "functionaries", "Signers (functionaries)", table(("name", "type", "identity / key"), rows)
    )


def _stages(view: PolicyView) -> Markup:
    rows = []
    for s in view.stages:
        stage = s.stage
        rows.append(
            (
                str(s.number),
                stage.name,
                stage.kind.value,
                "required" if stage.required else "optional",
                ", ".join(stage.after) or "-",
                s.signers,
                _lines([str(r) for r in stage.material_rules]),
                _lines([str(r) for r in stage.product_rules]),
                _lines([f"{c.topic}: {c.text}" for c in s.checks]),
                _lines([f"{a.role} = {a.product}" for a in s.deploy]),
            )
        )
    headers = ("#", "stage", "kind", "required", "after", "signers", "materials", "products", "checks",
               "deploy")  # fmt: skip
    return section("stages", "Stages and rules", table(headers, rows))


def _lines(items: list[str]) -> Markup:
    if not items:
        return Markup("-")
    return join(join((code(item), tag("br"))) for item in items)


def _policy_wide(view: PolicyView) -> Markup:
    if not view.policy_wide:
        return Markup("")
    return section(
        "policy-wide",
        "Policy-wide",
        tag("ul", None, *(tag("li", None, line) for line in view.policy_wide)),
    )
