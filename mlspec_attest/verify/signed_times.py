"""The times a signer claims: evidence, not truth, so at least consistent.

A stage's ``startedOn``/``finishedOn`` come from the signing machine's clock. The
verifier refuses a start after the finish, a finish in the future, and a finish
after a transparency log or timestamp authority saw the signature (each allowing
:data:`MAX_CLOCK_SKEW`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from mlspec_attest.formats.rfc3339 import format_rfc3339, parse_rfc3339
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.verify.report import Check, VerificationReport

#: How far a signer's clock may run ahead of the verifier's (or of a log's).
MAX_CLOCK_SKEW = timedelta(minutes=5)


def time_problems(
    statement: StageStatement, now: datetime, trusted: Iterable[datetime]
) -> list[tuple[str, str, str]]:
    """(message, expected, found) for each inconsistency of the statement's signed times."""
    meta = statement.metadata
    started = parse_rfc3339(meta.started_on)
    finished = parse_rfc3339(meta.finished_on)
    problems: list[tuple[str, str, str]] = []
    if started > finished:
        problems.append(
            (
                "started after it finished",
                "startedOn <= finishedOn",
                f"{meta.started_on} > {meta.finished_on}",
            )
        )
    if finished > now + MAX_CLOCK_SKEW:
        problems.append(
            (
                "finished in the future",
                f"finishedOn at most {format_rfc3339(now + MAX_CLOCK_SKEW)}",
                meta.finished_on,
            )
        )
    for time in trusted:
        if finished > time + MAX_CLOCK_SKEW:
            problems.append(
                (
                    "claims to have finished after its signature was logged",
                    f"finishedOn at most {format_rfc3339(time)} (+ skew)",
                    meta.finished_on,
                )
            )
    return problems


def check_signed_times(
    statement: StageStatement,
    source: str,
    now: datetime,
    trusted: Iterable[datetime],
    report: VerificationReport,
) -> bool:
    """Report every inconsistency of the signed times; True when there is none."""
    problems = time_problems(statement, now, trusted)
    for message, expected, found in problems:
        report.fail(
            Check.SIGNED_TIME,
            statement.metadata.stage,
            f"signed times are inconsistent: {message}",
            expected=expected,
            found=found,
            remedy="check the signing machine's clock and re-sign the stage",
            source=source,
        )
    return not problems
