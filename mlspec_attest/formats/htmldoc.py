"""Self-contained HTML documents: the one escaping helper and the elements built on it.

Every string a report or a policy page shows comes from a signed document someone
else wrote (stage names, functionary names, metric names, rule text, messages) and is
attacker-controlled. It reaches the page only through :func:`escape`; the builders
(:func:`tag`, :func:`join`) escape every child that is not already :class:`Markup` and
every attribute value, so no caller writes markup by concatenation. Pages carry a
Content-Security-Policy that allows no network, no script and no external style:
opened from a mail attachment or an artifact store, a page loads nothing and runs
nothing (docs/report.md).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

#: What a page may load: nothing but its own inline style and ``data:`` images.
CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

#: Status -> (stroke, fill): the one palette of reports and policy pages.
STATUS_COLOURS: Final[Mapping[str, tuple[str, str]]] = {
    "ok": ("#1e7b34", "#d4edda"),
    "pass": ("#1e7b34", "#d4edda"),
    "passed": ("#1e7b34", "#d4edda"),
    "failed": ("#b3261e", "#f8c9c4"),
    "fail": ("#b3261e", "#f8c9c4"),
    "missing": ("#b3261e", "#fde2c8"),
    "optional-missing": ("#6b6b6b", "#ececec"),
    "not-run": ("#6b6b6b", "#ececec"),
    "policy": ("#2f5f98", "#e3edf8"),
    "artifact": ("#7a5c00", "#fff4cc"),
}
_UNKNOWN_STATUS: Final = ("#6b6b6b", "#f5f5f5")

_NAME = re.compile(r"[a-z][a-z0-9-]*")
#: SVG spells some attributes in camel case (viewBox, refX, markerWidth).
_ATTRIBUTE = re.compile(r"[a-z][a-zA-Z0-9-]*")
#: Elements without content or end tag (``<br></br>`` would be two line breaks).
_VOID: Final = frozenset({"br", "meta"})


class Markup(str):
    """Text that is already HTML: made only by :func:`escape` and the builders here."""

    __slots__ = ()


def escape(value: object) -> Markup:
    """``value`` as text inside HTML or an attribute value: the one escaping helper.

    ``<``, ``>``, ``&`` and both quotes become entities, so no text can open a tag,
    end an attribute or start an entity; :class:`Markup` passes unchanged.
    """
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def join(parts: Iterable[object], sep: str = "") -> Markup:
    """Children concatenated, each escaped unless it is :class:`Markup` (``sep`` is ours)."""
    return Markup(escape(sep).join(escape(p) for p in parts))


def tag(name: str, attrs: Mapping[str, object] | None = None, *children: object) -> Markup:
    """``<name attrs>children</name>``; attribute values and plain-text children are escaped.

    Names are this package's own constants, checked so that a mistake cannot open
    a comment or a script: only lower-case letters, digits and ``-``.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"not an element name: {name!r}")
    rendered = []
    for key, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        if not _ATTRIBUTE.fullmatch(key):
            raise ValueError(f"not an attribute name: {key!r}")
        rendered.append(f' {key}="{escape(str(value))}"')
    if name in _VOID:
        return Markup(f"<{name}{''.join(rendered)}>")
    return Markup(f"<{name}{''.join(rendered)}>{join(children)}</{name}>")


def colours(status: str) -> tuple[str, str]:
    """(stroke, fill) of a status; an unknown status is grey, never a pass colour."""
    return STATUS_COLOURS.get(status, _UNKNOWN_STATUS)


def badge(status: str, text: str | None = None) -> Markup:
    """A coloured label for a result (``ok``, ``failed``, ``pass`` ...)."""
    stroke, fill = colours(status)
    style = f"color:{stroke};background:{fill};border-color:{stroke}"
    return tag("span", {"class": "badge", "style": style}, text if text is not None else status)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, cls: str = "grid") -> Markup:
    """A table; each cell escaped unless it is :class:`Markup`."""
    head = tag("tr", None, *(tag("th", None, h) for h in headers))
    body = [tag("tr", None, *(tag("td", None, cell) for cell in row)) for row in rows]
    return tag("table", {"class": cls}, tag("thead", None, head), tag("tbody", None, *body))


def code(text: object) -> Markup:
    return tag("code", None, text)


def short_digest(digest: str, keep: int = 12) -> str:
    """``sha256:0123456789ab…`` for tables; the full value goes in a ``title``."""
    algo, sep, value = digest.partition(":")
    if not sep:
        algo, value = "", digest
    head = value[:keep] + ("…" if len(value) > keep else "")
    return f"{algo}:{head}" if algo else head


def digest_cell(digest: str) -> Markup:
    return tag("code", {"title": digest}, short_digest(digest))


def section(ident: str, title: str, *children: object) -> Markup:
    return tag("section", {"id": ident}, tag("h2", None, title), *children)


def document(title: str, *body: object) -> str:
    """One self-contained HTML document: CSP, inline style, no script, no external resource."""
    head = join([
        tag("meta", {"charset": "utf-8"}),
        tag("meta", {"http-equiv": "Content-Security-Policy", "content": CSP}),
        tag("meta", {"name": "referrer", "content": "no-referrer"}),
        tag("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
        tag("title", None, title),
        tag("style", None, Markup(STYLE)),
    ])  # fmt: skip
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>{head}</head>\n'
        + tag("body", None, *body)
        + "\n</html>\n"
    )


STYLE: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;
background:#fafafa;font-size:14px;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:0 20px 40px}
h1{font-size:22px;margin:0}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #ddd;
padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}
.banner{padding:16px 20px;color:#fff;margin:0 0 8px}
.banner.passed{background:#1e7b34}.banner.failed{background:#b3261e}
.banner.policy{background:#2f5f98}.banner.unverified{background:#8a6d00}
.banner .facts{font-size:13px;opacity:.95;margin-top:4px;word-break:break-all}
.warn{background:#fff4cc;border:1px solid #c9a400;padding:8px 12px;margin:10px 0}
table.grid{border-collapse:collapse;width:100%;margin:6px 0;background:#fff}
table.grid th,table.grid td{border:1px solid #ddd;padding:4px 8px;text-align:left;
vertical-align:top;word-break:break-word}
table.grid th{background:#f0f0f0}
.badge{display:inline-block;border:1px solid;border-radius:3px;padding:0 6px;font-size:12px;
font-weight:600}
ol.denials li{margin:0 0 12px;background:#fff;border-left:4px solid #b3261e;padding:6px 10px}
ol.denials li.consequence{border-left-color:#e0a39d}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:4px 0}
dl.kv dt{color:#555}dl.kv dd{margin:0;word-break:break-word}
pre{white-space:pre-wrap;word-break:break-word;background:#f4f4f4;padding:6px;margin:0;
font-size:12px}
code{font-size:12px}
.figure{background:#fff;border:1px solid #ddd;padding:8px;overflow-x:auto}
.legend span{margin-right:10px}
"""
