"""A directed graph drawn as inline SVG, laid out here (no script, no external renderer).

The layout is layered, top to bottom: a node's layer is the longest path to it from a
node nothing points to, and nodes of one layer sit side by side, ordered by where
the nodes pointing at them sit (one barycentre pass), ties in the order given. Given
the same nodes and edges in the same order, the picture is the same, byte for byte.
A cycle (possible in a lineage where a stage rewrites what it read) never loops the
layout: the nodes left on a cycle go one layer below everything else.

Every label goes through :func:`mlspec_attest.formats.htmldoc.escape` (via ``tag``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from msgspec import Struct

from mlspec_attest.formats.htmldoc import Markup, colours, tag

NODE_WIDTH: Final = 230
LINE_HEIGHT: Final = 15
GAP_X: Final = 30
GAP_Y: Final = 46
MARGIN: Final = 12
#: Characters of a line that fit in a node; the whole text is the node's tooltip.
LINE_CHARS: Final = 32
#: Beyond this many nodes a graph is not drawn (the tables beside it still list all).
MAX_NODES: Final = 400


class Node(Struct, frozen=True):
    """One box: a bold first line, more lines under it, a status that picks its colours."""

    key: str
    title: str
    lines: tuple[str, ...] = ()
    status: str = "policy"
    dashed: bool = False


class Edge(Struct, frozen=True):
    source: str
    target: str
    tooltip: str = ""
    dashed: bool = False


class Placed(Struct, frozen=True):
    node: Node
    x: int
    y: int
    height: int


def node_height(node: Node) -> int:
    return 14 + LINE_HEIGHT * (1 + len(node.lines))


def layer_of(keys: Sequence[str], edges: Sequence[Edge]) -> dict[str, int]:
    """Longest-path layers (Kahn's order); nodes on a cycle go below all others."""
    known = set(keys)
    preds: dict[str, list[str]] = {k: [] for k in keys}
    for e in edges:
        if e.source in known and e.target in known and e.source != e.target:
            preds[e.target].append(e.source)
    layer: dict[str, int] = {}
    remaining = list(keys)
    while remaining:
        ready = [k for k in remaining if all(p in layer for p in preds[k])]
        if not ready:
            bottom = max(layer.values(), default=-1) + 1
            layer.update(dict.fromkeys(remaining, bottom))
            break
        for k in ready:
            layer[k] = max((layer[p] + 1 for p in preds[k]), default=0)
        remaining = [k for k in remaining if k not in layer]
    return layer


def layout(nodes: Sequence[Node], edges: Sequence[Edge]) -> tuple[list[Placed], int, int]:
    """Positions of every node, and the drawing's width and height."""
    keys = [n.key for n in nodes]
    layer = layer_of(keys, edges)
    rows: dict[int, list[Node]] = {}
    for n in nodes:
        rows.setdefault(layer[n.key], []).append(n)
    column: dict[str, float] = {}
    placed: list[Placed] = []
    width = max((len(r) for r in rows.values()), default=0) * (NODE_WIDTH + GAP_X) - GAP_X
    y = MARGIN
    for depth in sorted(rows):
        row = _ordered(rows[depth], edges, column)
        offset = (width - (len(row) * (NODE_WIDTH + GAP_X) - GAP_X)) // 2
        for i, n in enumerate(row):
            column[n.key] = i + offset / (NODE_WIDTH + GAP_X)
            x = MARGIN + offset + i * (NODE_WIDTH + GAP_X)
            placed.append(Placed(n, x, y, node_height(n)))
        y += max(node_height(n) for n in row) + GAP_Y
    return placed, max(width, NODE_WIDTH) + 2 * MARGIN, y - GAP_Y + MARGIN


def _ordered(row: list[Node], edges: Sequence[Edge], column: dict[str, float]) -> list[Node]:
    """A row sorted by the mean column of the nodes above pointing at each (stable)."""

    def centre(index_node: tuple[int, Node]) -> tuple[float, int]:
        index, node = index_node
        above = [column[e.source] for e in edges if e.target == node.key and e.source in column]
        return (sum(above) / len(above) if above else float(index), index)

    return [n for _, n in sorted(enumerate(row), key=centre)]


def dag_svg(nodes: Sequence[Node], edges: Sequence[Edge], *, ident: str, label: str) -> Markup:
    """The graph as an ``<svg>`` element (``id=ident``, ``aria-label=label``)."""
    if len(nodes) > MAX_NODES:
        return tag("p", {"class": "warn"}, f"{len(nodes)} nodes: too many to draw; see the table.")
    placed, width, height = layout(nodes, edges)
    where = {p.node.key: p for p in placed}
    arrow = f"{ident}-arrow"
    drawn_edges = [_edge(e, where, arrow) for e in edges if e.source in where and e.target in where]
    marker = tag(
        "marker",
        {"id": arrow, "viewBox": "0 0 10 10", "refX": 10, "refY": 5,
         "markerWidth": 7, "markerHeight": 7, "orient": "auto-start-reverse"},
        tag("path", {"d": "M 0 0 L 10 5 L 0 10 z", "fill": "#555"}),
    )  # fmt: skip
    return tag(
        "svg",
        {"id": ident, "role": "img", "aria-label": label, "width": width,
         "height": height, "viewBox": f"0 0 {width} {height}"},
        tag("defs", None, marker),
        *drawn_edges,
        *(_node(p, f"{ident}-node-{i}") for i, p in enumerate(placed)),
    )  # fmt: skip


def _edge(edge: Edge, where: dict[str, Placed], arrow: str) -> Markup:
    a, b = where[edge.source], where[edge.target]
    x1, y1 = a.x + NODE_WIDTH // 2, a.y + a.height
    x2, y2 = b.x + NODE_WIDTH // 2, b.y
    if y2 <= y1:  # same layer or upward (a cycle): leave from the side
        x1, y1 = a.x + NODE_WIDTH, a.y + a.height // 2
    bend = max(20, (y2 - y1) // 2)
    path = f"M {x1} {y1} C {x1} {y1 + bend}, {x2} {y2 - bend}, {x2} {y2 - 2}"
    attrs: dict[str, object] = {
        "d": path, "fill": "none", "stroke": "#555", "stroke-width": 1.4,
        "marker-end": f"url(#{arrow})", "class": "edge",
    }  # fmt: skip
    if edge.dashed:
        attrs["stroke-dasharray"] = "5 4"
    tip = edge.tooltip or f"{edge.source} -> {edge.target}"
    return tag("path", attrs, tag("title", None, tip))


def _node(p: Placed, ident: str) -> Markup:
    stroke, fill = colours(p.node.status)
    rect: dict[str, object] = {
        "x": p.x, "y": p.y, "width": NODE_WIDTH, "height": p.height, "rx": 6,
        "fill": fill, "stroke": stroke, "stroke-width": 2, "class": "node-box",
    }  # fmt: skip
    if p.node.dashed:
        rect["stroke-dasharray"] = "6 4"
    texts = [_text(p.x + 10, p.y + 20, p.node.title, bold=True)]
    texts += [
        _text(p.x + 10, p.y + 20 + LINE_HEIGHT * (i + 1), line)
        for i, line in enumerate(p.node.lines)
    ]
    tooltip = "\n".join((p.node.title, *p.node.lines, f"status: {p.node.status}"))
    return tag(
        "g",
        {"class": "node", "id": ident, "data-status": p.node.status},
        tag("title", None, tooltip),
        tag("rect", rect),
        *texts,
    )


def _text(x: int, y: int, text: str, *, bold: bool = False) -> Markup:
    clipped = text if len(text) <= LINE_CHARS else text[: LINE_CHARS - 1] + "…"
    attrs: dict[str, object] = {"x": x, "y": y, "font-size": 12, "fill": "#1d1d1f"}
    if bold:
        attrs["font-weight"] = 700
    return tag("text", attrs, clipped)
