"""Human renderings of policies: text and Mermaid (reports: :mod:`.report_render`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlspec_attest.cli.policy_view import StageView, policy_view
from mlspec_attest.formats.printable import printable_lines
from mlspec_attest.formats.rfc3339 import format_rfc3339

if TYPE_CHECKING:
    from mlspec_attest.policy.model import Policy


def policy_text(policy: Policy, digest: str | None = None) -> str:
    """The policy as text: functionaries, then each stage in order with all it is bound to."""
    view = policy_view(policy)
    lines = [
        f"policy {policy.name or '(unnamed)'}  expires {format_rfc3339(policy.expires)}",
        f"digest {digest or policy.digest()}",
        "",
        "functionaries (in order of first use):",
    ]
    for f in view.functionaries:
        if f.identity is not None:
            lines.append(f"  {f.name:<20} {'sigstore':<24} {f.identity.describe()}")
        else:
            lines.append(f"  {f.name:<20} {f.key.algorithm:<24} keyid {f.keyid[:16]}")
    if policy.sigstore_trust is not None:
        trust = policy.sigstore_trust
        lines.append(f"  (sigstore trust root {trust.source or 'embedded'}, {trust.digest[:23]})")
    lines += ["", "stages (in order):"]
    for stage in view.stages:
        lines += _stage_lines(stage)
    if view.policy_wide:
        lines += ["", "policy-wide:", *(f"  {line}" for line in view.policy_wide)]
    # Names, rules and expressions come from the policy file: no control character
    # of theirs reaches the terminal.
    return printable_lines(lines)


def _stage_lines(view: StageView) -> list[str]:
    s = view.stage
    after = f", after {', '.join(s.after)}" if s.after else ""
    return [
        f"  {view.number:>2}. {s.name} [{s.kind.value}] "
        f"{'required' if s.required else 'optional'}{after}",
        *_block("signers", [view.signers]),
        *_block("from", [f"{source}: {', '.join(arts)}" for source, arts in view.inputs]),
        *_block("materials", [str(r) for r in s.material_rules]),
        *_block("products", [str(r) for r in s.product_rules]),
        *_block("checks", [f"{c.topic}: {c.text}" for c in view.checks]),
        *_block(
            "deploy",
            [
                f"{a.role} = product {a.product} ({'required' if a.required else 'optional'})"
                for a in view.deploy
            ],
        ),
    ]


def _block(label: str, items: list[str]) -> list[str]:
    """``label`` before the first item, the others aligned under it."""
    return [f"      {label if i == 0 else '':<9} {item}" for i, item in enumerate(items)]


#: Characters a quoted Mermaid label may hold as they are. Any other is written as an
#: entity code (``#34;``): a quote would end the label, ``#`` start an entity, ``<`` a tag,
#: a newline the statement, a bracket or bar confuse a reader of the source.
_MERMAID_PLAIN = frozenset(" _.,:;/*+=@~!?'()-")


def mermaid_label(text: str) -> str:
    """``text`` safe inside a quoted Mermaid label (``["…"]``, ``|"…"|``)."""
    return "".join(c if c.isalnum() or c in _MERMAID_PLAIN else f"#{ord(c)};" for c in text)


def mermaid_id(prefix: str, number: int, name: str) -> str:
    """A node id unique by its number, readable by its name (ASCII letters, digits, ``_``)."""
    slug = "".join(c if c.isascii() and c.isalnum() else "_" for c in name)[:40]
    return f"{prefix}{number}_{slug}"


def policy_mermaid(policy: Policy) -> str:
    """A Mermaid flowchart: stages in order (optional ones dashed), order edges (``-->``),
    data-flow edges from MATCH rules (``-.->`` labelled with the artifacts), ML checks
    attached to their stages (``---``), deploy roles (``==>``)."""
    view = policy_view(policy)
    ids = {s.stage.name: mermaid_id("s", s.number, s.stage.name) for s in view.stages}
    lines = ["flowchart TD"]
    for s in view.stages:
        lines.append(f'  {ids[s.stage.name]}["{_stage_label(s)}"]')
    lines += [
        f"  {ids[prior]} --> {ids[s.name]}"
        for s in policy.stages
        for prior in s.after
        if prior in ids
    ]
    for (source, target), artifacts in view.flows:
        label = "<br/>".join(mermaid_label(a) for a in artifacts)
        lines.append(f'  {ids[source]} -.->|"{label}"| {ids[target]}')
    checks = [mermaid_id("c", i, c.key) for i, c in enumerate(view.checks, 1)]
    for node, check in zip(checks, view.checks, strict=True):
        text = mermaid_label(f"{check.topic}: {check.text}")
        lines.append(f'  {node}["{text}"]')
        lines += [f"  {ids[name]} --- {node}" for name in check.stages]
    deploys = [mermaid_id("d", i, a.role) for i, a in enumerate(view.deploy, 1)]
    for node, a in zip(deploys, view.deploy, strict=True):
        text = f"deploy {mermaid_label(a.role)}<br/>{mermaid_label(a.product)}"
        lines.append(f'  {node}(["{text}"])')
        if a.stage in ids:
            lines.append(f"  {ids[a.stage]} ==> {node}")
    optional = [ids[s.stage.name] for s in view.stages if not s.stage.required]
    lines += _mermaid_classes({"optional": optional, "check": checks, "deploy": deploys})
    return "\n".join(lines)


def _stage_label(view: StageView) -> str:
    s = view.stage
    head = f"{view.number}. {s.name}" + (f" ({s.kind.value})" if s.kind.value != s.name else "")
    signers = f"{view.threshold}: {', '.join(s.functionaries)}"
    parts = [head, signers] + ([] if s.required else ["(optional)"])
    return "<br/>".join(mermaid_label(p) for p in parts)


#: How each class of node is drawn: optional stages dashed, checks as notes.
_MERMAID_STYLES = {
    "optional": "stroke-dasharray: 5 5",
    "check": "fill:#fff8dc,stroke:#b59f3b",
    "deploy": "fill:#e8f1fb,stroke:#3b6fb5",
}


def _mermaid_classes(members: dict[str, list[str]]) -> list[str]:
    out: list[str] = []
    for name, nodes in members.items():
        if nodes:
            out += [
                f"  classDef {name} {_MERMAID_STYLES[name]}",
                f"  class {','.join(nodes)} {name}",
            ]
    return out
