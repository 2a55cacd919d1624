"""``verify --report FILE``: the HTML audit report of a verification (docs/report.md)."""

from __future__ import annotations

from pathlib import Path

import click

from mlspec_attest.formats.fsutil import atomic_write
from mlspec_attest.formats.printable import printable
from mlspec_attest.interop.intoto.support import is_intoto_layout
from mlspec_attest.policy.signed import load_signed_policy
from mlspec_attest.store.ledger import open_store
from mlspec_attest.verify.html_report import report_html
from mlspec_attest.verify.report import VerificationReport


def write_report(
    out: Path, report: VerificationReport, policy_path: Path, store: Path | None
) -> None:
    """``--report``: the HTML report, drawn with the policy's stage order and the store's
    attestations (an in-toto layout has neither: its stages are drawn in report order)."""
    if is_intoto_layout(policy_path):
        page = report_html(report, None, None)
    else:
        page = report_html(report, load_signed_policy(policy_path).policy, open_store(store))
    atomic_write(out, page.encode("utf-8"))
    click.echo(printable(f"report ({'PASSED' if report.passed else 'DENIED'}) -> {out}"), err=True)
