"""Horizontal bar charts as inline SVG: one group of bars per metric, one bar per slice.

Each group has its own scale (0 and every value of the group fit), so an error in one
unit and a rate in another are never drawn against each other. Values are finite
(stage metadata refuses NaN and infinities); labels go through the one escaping helper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from msgspec import Struct

from mlspec_attest.formats.htmldoc import Markup, tag

LABEL_WIDTH: Final = 150
BAR_AREA: Final = 380
VALUE_WIDTH: Final = 150
BAR_HEIGHT: Final = 16
BAR_GAP: Final = 5
TITLE_HEIGHT: Final = 24
LABEL_CHARS: Final = 22
BAR_FILL: Final = "#4a78b5"


class Bar(Struct, frozen=True):
    label: str
    value: float
    note: str = ""


class BarGroup(Struct, frozen=True):
    title: str
    bars: tuple[Bar, ...]


def bar_chart(groups: Sequence[BarGroup], *, ident: str, label: str) -> Markup:
    """Every group stacked top to bottom in one ``<svg>`` (``id=ident``)."""
    width = LABEL_WIDTH + BAR_AREA + VALUE_WIDTH
    parts: list[Markup] = []
    y = 4
    for group in groups:
        parts.append(_label(4, y + 16, group.title, bold=True, chars=80))
        y += TITLE_HEIGHT
        parts += _group(group, y)
        y += len(group.bars) * (BAR_HEIGHT + BAR_GAP) + 8
    return tag(
        "svg",
        {"id": ident, "role": "img", "aria-label": label, "width": width, "height": y,
         "viewBox": f"0 0 {width} {y}"},
        *parts,
    )  # fmt: skip


def _scale(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    lo, hi = min([0.0, *finite]), max([0.0, *finite])
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _group(group: BarGroup, top: int) -> list[Markup]:
    lo, hi = _scale([b.value for b in group.bars])

    def x_of(value: float) -> float:
        return LABEL_WIDTH + (value - lo) / (hi - lo) * BAR_AREA

    zero = x_of(0.0)
    out: list[Markup] = []
    for i, bar in enumerate(group.bars):
        y = top + i * (BAR_HEIGHT + BAR_GAP)
        value = bar.value if math.isfinite(bar.value) else 0.0
        left, right = sorted((zero, x_of(value)))
        out.append(_label(4, y + 12, bar.label, chars=LABEL_CHARS))
        out.append(
            tag(
                "rect",
                {"x": f"{left:.1f}", "y": y, "width": f"{max(right - left, 1.0):.1f}",
                 "height": BAR_HEIGHT, "fill": BAR_FILL, "class": "bar"},
                tag("title", None, f"{group.title} {bar.label}: {bar.value:g} {bar.note}"),
            )
        )  # fmt: skip
        text = f"{bar.value:.4g}" + (f"  ({bar.note})" if bar.note else "")
        out.append(_label(LABEL_WIDTH + BAR_AREA + 6, y + 12, text, chars=26))
    axis = {"x1": f"{zero:.1f}", "x2": f"{zero:.1f}", "y1": top - 2,
            "y2": top + len(group.bars) * (BAR_HEIGHT + BAR_GAP), "stroke": "#888"}  # fmt: skip
    out.append(tag("line", axis))
    return out


def _label(x: int, y: int, text: str, *, chars: int, bold: bool = False) -> Markup:
    clipped = text if len(text) <= chars else text[: chars - 1] + "…"
    attrs: dict[str, object] = {"x": x, "y": y, "font-size": 12, "fill": "#1d1d1f"}
    if bold:
        attrs["font-weight"] = 700
    return tag("text", attrs, tag("title", None, text), clipped)
