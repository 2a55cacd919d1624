"""Human renderings of policies (text, Mermaid) and verification reports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlspec_attest.cli.output import detail_lines
from mlspec_attest.formats.rfc3339 import format_rfc3339

if TYPE_CHECKING:
    from mlspec_attest.policy.model import Policy
    from mlspec_attest.verify.report import VerificationReport


def policy_text(policy: Policy, digest: str | None = None) -> str:
    lines = [
        f"policy {policy.name or '(unnamed)'}  expires {format_rfc3339(policy.expires)}",
        f"digest {digest or policy.digest()}",
        "",
        "functionaries:",
    ]
    for f in policy.functionaries.values():
        if f.identity is not None:
            lines.append(f"  {f.name:<20} {'sigstore':<24} {f.identity.describe()}")
        else:
            lines.append(f"  {f.name:<20} {f.key.algorithm:<24} keyid {f.keyid[:16]}")
    if policy.sigstore_trust is not None:
        trust = policy.sigstore_trust
        lines.append(f"  (sigstore trust root {trust.source or 'embedded'}, {trust.digest[:23]})")
    lines += ["", "stages (in order):"]
    for i, s in enumerate(policy.stages, 1):
        req = "" if s.required else " (optional)"
        after = f" after {', '.join(s.after)}" if s.after else ""
        lines.append(f"  {i:>2}. {s.name} [{s.kind.value}]{req}{after}")
        lines.append(f"      signers: {', '.join(s.functionaries)} (threshold {s.threshold})")
        for side, rules in (("materials", s.material_rules), ("products", s.product_rules)):
            for r in rules:
                lines.append(f"      {side:<9} {r}")
    if policy.deploy:
        lines += ["", "deploy artifacts:"]
        for a in policy.deploy.values():
            req = "required" if a.required else "optional"
            lines.append(f"  {a.role:<16} = product {a.product} of {a.stage} ({req})")
    lines += _ml_lines(policy)
    return "\n".join(lines)


def _ml_lines(policy: Policy) -> list[str]:
    """The ML sections of a policy, one line each."""
    out: list[str] = []
    if policy.require_policy_digest:
        out.append("  every attestation must be bound to this policy (requirePolicyDigest)")
    if policy.objectives_stage:
        need = "required" if policy.objectives_required else "optional"
        out.append(f"  objectives: document signed by stage {policy.objectives_stage} ({need})")
    if policy.separation:
        sep = policy.separation
        out.append(
            f"  separation: {sep.test} consumes the {sep.holdback_role!r} split of {sep.split}, "
            f"after {sep.evaluate}, same {sep.model_role!r}; never read by "
            + ", ".join(sep.not_read_by)
        )
    if policy.leakage:
        pairs = ", ".join(f"{a}/{b}" for a, b in policy.leakage.pairs)
        out.append(
            f"  leakage: {policy.leakage.stage} row overlaps {pairs} <= {policy.leakage.tolerance}"
        )
    if policy.data_validation:
        val = policy.data_validation
        schema = f"{val.schema or 'any schema'}" + (f" v{val.version}" if val.version else "")
        out.append(
            f"  data validation: {val.stage} passed against {schema}"
            + ("; no deprecated data" if val.forbid_deprecated else "")
        )
    for req in policy.requirements:
        out.append(f"  requirement {req.id}: {req.expr}")
    return ["", "ML checks:", *out] if out else []


def _mermaid_id(name: str) -> str:
    return "s_" + "".join(c if c.isalnum() else "_" for c in name)


def policy_mermaid(policy: Policy) -> str:
    lines = ["flowchart TD"]
    for s in policy.stages:
        label = f"{s.name}<br/>{s.kind.value}<br/>{', '.join(s.functionaries)}"
        lines.append(f'  {_mermaid_id(s.name)}["{label}"]')
    for s in policy.stages:
        for prior in s.after:
            lines.append(f"  {_mermaid_id(prior)} --> {_mermaid_id(s.name)}")
    for a in policy.deploy.values():
        node = "d_" + "".join(c if c.isalnum() else "_" for c in a.role)
        lines.append(f'  {node}(["deploy: {a.role}<br/>{a.product}"])')
        lines.append(f"  {_mermaid_id(a.stage)} -.-> {node}")
    return "\n".join(lines)


def report_text(report: VerificationReport) -> str:
    verdict = "PASSED" if report.passed else "DENIED"
    out = [
        f"verification {verdict}: policy {report.policy_name or '(unnamed)'} "
        f"({report.policy_digest[:19]}…), "
        + (f"run {report.run_id}" if report.run_id else "in-toto layout"),
    ]
    if report.stages:
        out.append("")
        marks = {"ok": "ok  ", "failed": "FAIL", "missing": "MISS", "optional-missing": "skip"}
        for s in report.stages:
            signers = ", ".join(s.signers) or "-"
            out.append(
                f"  [{marks.get(s.status, s.status)}] {s.name:<14} {s.kind:<11} signed by {signers}"
            )
    if report.artifacts:
        out.append("")
        for a in report.artifacts:
            out.append(f"  artifact {a.role:<14} {a.status:<11} {a.path or '-'}")
    if report.objectives:
        out.append("")
        out.append("launch criteria:")
        for r in report.objectives:
            mark = "pass" if r.passed else "FAIL"
            out.append(f"  [{mark}] {r.id:<20} {r.stage:<10} {r.message}")
    if report.failures:
        out.append("")
        out.append(f"{len(report.failures)} failure(s):")
        for i, f in enumerate(report.failures, 1):
            where = f"stage {f.stage}" if f.stage else "policy"
            out.append(f"  {i}. [{f.check.value}] {where}: {f.message}")
            out += detail_lines("       ", f.expected, f.found, f.remedy, source=f.source)
    for note in report.notes:
        out.append(f"  note: {note}")
    return "\n".join(out)
