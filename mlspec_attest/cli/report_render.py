"""The verification report as text: what ``verify`` prints without ``--json``.

Apart from the policy renderings (:mod:`.render`), which need the policy's view of
stages and criteria: printing a verdict loads neither.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mlspec_attest.cli.output import detail_lines
from mlspec_attest.formats.printable import printable_lines

if TYPE_CHECKING:
    from mlspec_attest.policy.criteria import CriterionResult
    from mlspec_attest.verify.report import VerificationReport


def report_text(report: VerificationReport) -> str:
    verdict = "PASSED" if report.passed else "DENIED"
    out = [
        f"verification {verdict}: policy {report.policy_name or '(unnamed)'} "
        f"({report.policy_digest[:19]}…), "
        + (f"run {report.run_id}" if report.run_id else _no_run(report)),
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
    out += _criteria("launch criteria:", report.objectives)
    out += _criteria("requirements:", report.requirements)
    out += _checks_line(report)
    out += _failure_lines(report)
    for note in report.notes:
        out.append(f"  note: {note}")
    # Stage, file and artifact names, signers and the messages quoting them come from the
    # run's files: no character of theirs breaks or reorders a line of the verdict.
    return printable_lines(out)


def _no_run(report: VerificationReport) -> str:
    """What the header says when the report names no run."""
    if any(f.check.value == "policy-signature" for f in report.failures):
        return "no run read (the policy's signature failed first)"
    return "in-toto layout"


def _criteria(title: str, results: Sequence[CriterionResult]) -> list[str]:
    if not results:
        return []
    out = ["", title]
    for r in results:
        mark = "pass" if r.passed else "FAIL"
        out.append(f"  [{mark}] {r.id:<20} {r.stage or '-':<10} {r.message}")
    return out


def _checks_line(report: VerificationReport) -> list[str]:
    """One line counting the checks that ran (``--json``'s ``checks[]`` has the evidence)."""
    if not report.checks:
        return []
    counts = Counter(c.result for c in report.checks)
    parts = [f"{counts[r]} {label}" for r, label in
             (("pass", "passed"), ("fail", "failed"), ("not-run", "not run")) if counts[r]]  # fmt: skip
    return [
        "",
        f"checks: {len(report.checks)} ({', '.join(parts)}); --json lists each with its evidence",
    ]


def _failure_lines(report: VerificationReport) -> list[str]:
    """Every failure, root causes first; a consequence says what it follows from."""
    if not report.failures:
        return []
    classified = report.classified_failures()
    roots = sum(1 for _, why in classified if not why)
    out = ["", f"{len(report.failures)} failure(s), {roots} root cause(s) first:"]
    for i, (f, why) in enumerate(classified, 1):
        where = f"stage {f.stage}" if f.stage else "policy"
        out.append(f"  {i}. [{f.check.value}] {where}: {f.message}")
        if why:
            out.append(f"       because:  {why}")
        out += detail_lines("       ", f.expected, f.found, f.remedy, source=f.source)
    return out
