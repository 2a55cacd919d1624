"""Regression tests for a policy: recorded runs, each with the decision it must get.

A suite is a directory of cases, one subdirectory each, tried in name order. A case is
a ``case.yaml`` beside (or pointing at) an attestation store holding a recorded run::

    expect: deny                      # pass or deny: what the policy must decide
    checks: [objective-failed]        # optional: exactly these checks must fail
    store: store                      # the store, relative to the case (default: store)
    run: diabetes-20261207T030000Z    # optional when the store holds one run
    artifacts: {model: dist/model}    # optional deploy artifacts, relative to the case

A case is met when the draft decides as expected (and, with ``checks``, fails exactly
those checks). Like a single trial (:mod:`mlspec_attest.verify.draft`), none of it is
a verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from msgspec import Struct, field

from mlspec_attest.errors import BadInputError
from mlspec_attest.formats.limits import MAX_POLICY_BYTES
from mlspec_attest.formats.yamlio import load_yaml, plain, read_yaml_file
from mlspec_attest.policy.model import Policy
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.draft import try_draft
from mlspec_attest.verify.report import VerificationReport

CASE_FILE = "case.yaml"
EXPECTATIONS = ("pass", "deny")
_KEYS = frozenset({"expect", "checks", "store", "run", "artifacts"})


class DraftCase(Struct, frozen=True):
    """One recorded run and the decision it must get."""

    name: str
    expect: str
    store: Path
    run_id: str | None = None
    checks: frozenset[str] | None = None
    artifacts: Mapping[str, Path] = field(default_factory=dict)


class CaseResult(Struct, frozen=True):
    """A case tried: the draft's report and whether the case was met."""

    case: DraftCase
    report: VerificationReport
    met: bool
    why: str

    @property
    def decision(self) -> str:
        return "pass" if self.report.passed else "deny"


def load_suite(directory: Path) -> list[DraftCase]:
    """The cases of ``directory`` in name order; BadInputError naming the first bad one."""
    if not directory.is_dir():
        raise BadInputError(f"policy suite {directory}: not a directory")
    cases = [load_case(sub) for sub in sorted(directory.iterdir()) if sub.is_dir()]
    if not cases:
        raise BadInputError(
            f"policy suite {directory}: no cases",
            remedy=f"add a subdirectory per recorded run, each with a {CASE_FILE}",
        )
    return cases


def load_case(directory: Path) -> DraftCase:
    """The case in ``directory`` (its ``case.yaml``)."""
    path = directory / CASE_FILE
    what = f"policy test case {path}"
    if not path.is_file():
        raise BadInputError(f"{what}: missing (every case directory holds one)")
    text = read_yaml_file(path, MAX_POLICY_BYTES, what=what, kind="a test case")
    doc = plain(load_yaml(text, what=what, max_bytes=MAX_POLICY_BYTES))
    if not isinstance(doc, dict):
        raise BadInputError(f"{what}: expected a mapping with 'expect: pass' or 'expect: deny'")
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise BadInputError(f"{what}: unknown key(s) {', '.join(unknown)}; known: "
                            + ", ".join(sorted(_KEYS)))  # fmt: skip
    return DraftCase(
        name=directory.name,
        expect=_expectation(doc.get("expect"), what),
        store=directory / _text(doc.get("store", "store"), "store", what),
        run_id=None if doc.get("run") is None else _text(doc["run"], "run", what),
        checks=_checks(doc.get("checks"), what),
        artifacts=_artifacts(doc.get("artifacts"), directory, what),
    )


def _expectation(value: Any, what: str) -> str:
    if value not in EXPECTATIONS:
        raise BadInputError(f"{what}: 'expect' must be pass or deny, not {value!r}")
    return str(value)


def _text(value: Any, key: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadInputError(f"{what}: {key!r} must be a non-empty string")
    return value


def _checks(value: Any, what: str) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise BadInputError(f"{what}: 'checks' must be a list of check names")
    return frozenset(value)


def _artifacts(value: Any, directory: Path, what: str) -> dict[str, Path]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadInputError(f"{what}: 'artifacts' must map deploy roles to paths")
    return {_text(k, "artifacts", what): directory / _text(v, k, what) for k, v in value.items()}


def run_case(policy: Policy, case: DraftCase, now: datetime | None = None) -> CaseResult:
    """Try ``policy`` on one case."""
    report = try_draft(
        policy,
        AttestationStore(case.store),
        run_id=case.run_id,
        artifacts=dict(case.artifacts),
        now=now,
    )
    decision = "pass" if report.passed else "deny"
    failed = frozenset(f.check.value for f in report.failures)
    if decision != case.expect:
        return CaseResult(
            case, report, False, f"expected {case.expect}, the draft would {decision}"
        )
    if case.checks is not None and failed != case.checks:
        shown = ", ".join(sorted(failed)) or "none"
        wanted = ", ".join(sorted(case.checks)) or "none"
        return CaseResult(case, report, False, f"failed checks {shown}; expected {wanted}")
    return CaseResult(case, report, True, f"{decision}, as expected")
