"""The small pieces of the ML checks (verify/checks/): digest comparison and display, the
stage records CEL reads, and the policy's requirements, each refusal asserted whole.

The checks read accepted attestations; here they are built in memory from statements,
as tests/test_verify_steps.py does (the end-to-end checks, with real keys and files, are
tests/test_mlchecks.py and tests/test_mlchecks_failures.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.formats.stages import StageKind
from mlspec_attest.formats.statement import ResourceDescriptor, StageMetadata, StageStatement
from mlspec_attest.policy.model import Functionary, Policy, Requirement, StagePolicy
from mlspec_attest.verify.accepted import AcceptedAttestation
from mlspec_attest.verify.checks.digests import same_content, short
from mlspec_attest.verify.checks.records import stage_records
from mlspec_attest.verify.checks.requirements import check_requirements
from mlspec_attest.verify.report import Check, Failure, VerificationReport

from .support import KeyPair

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
A, B = "a" * 64, "b" * 64


# -- digests ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ({"sha256": A}, {"sha256": A}, True),
        ({"sha256": A}, {"sha256": B}, False),
        ({"sha256": A}, {"sha512": A}, False),  # nothing in common: not the same
        ({}, {}, False),
        ({"sha256": A, "sha512": B}, {"sha256": A}, True),  # only common algorithms count
        ({"sha256": A, "sha512": B}, {"sha256": A, "sha512": A}, False),  # every common one
        ({"sha512": B, "sha256": A}, {"sha256": B, "sha512": B}, False),
    ],
)
def test_same_content(a: dict[str, str], b: dict[str, str], same: bool) -> None:
    assert same_content(a, b) is same
    assert same_content(b, a) is same


@pytest.mark.parametrize(
    ("digest", "shown"),
    [
        (None, "none"),
        ({}, "none"),
        ({"sha256": "0123456789abcdef" + "f" * 48}, "sha256:0123456789abcdef\u2026"),
        ({"sha512": A}, "sha256:?\u2026"),
    ],
)
def test_short(digest: dict[str, str] | None, shown: str) -> None:
    assert short(digest) == shown


# -- stage records ----------------------------------------------------------------------
def _accepted(key: KeyPair, stage: str, **meta: Any) -> AcceptedAttestation:
    fields: dict[str, Any] = {
        "stage": stage,
        "kind": stage,
        "run_id": "run-a",
        "started_on": "2025-06-01T12:00:00Z",
        "finished_on": "2025-06-01T12:00:01Z",
    }
    fields.update(meta)
    statement = StageStatement(
        products=(ResourceDescriptor("out", {"sha256": A}),),
        materials=(),
        metadata=StageMetadata(**fields),
    )
    return AcceptedAttestation(
        statement, Functionary(key.name, public_key=key.public), Path(f"{stage}.json"), "sha256:1"
    )


def test_stage_records_are_what_cel_reads(keys: dict[str, KeyPair]) -> None:
    att = _accepted(
        keys["owner"],
        "evaluate",
        metrics={"mae": 3, "r2": 0.5, "ok": True},
        parameters={"seed": 7},
        infrastructure={"gpu": "none"},
        details={"x": 1},
        roles={"model": "model"},
        slices={"sex": {"f": {"rows": 10, "metrics": {"mae": 4}}, "m": {"rows": 9}}},
    )
    records = stage_records({"evaluate": att, "train": _accepted(keys["owner"], "train")})
    assert records == {
        "evaluate": {
            "kind": "evaluate",
            "metrics": {"mae": 3.0, "r2": 0.5, "ok": True},
            "parameters": {"seed": 7},
            "infrastructure": {"gpu": "none"},
            "details": {"x": 1},
            "roles": {"model": "model"},
            "slices": {
                "sex": {
                    "f": {"rows": 10, "metrics": {"mae": 4.0}},
                    "m": {"rows": 9, "metrics": {}},
                }
            },
        },
        "train": {
            "kind": "train",
            "metrics": {},
            "parameters": {},
            "infrastructure": {},
            "details": {},
            "roles": {},
            "slices": {},
        },
    }
    assert isinstance(records["evaluate"]["metrics"]["mae"], float)
    assert isinstance(records["evaluate"]["slices"]["sex"]["f"]["metrics"]["mae"], float)


# -- requirements -----------------------------------------------------------------------
def _policy(*requirements: Requirement) -> Policy:
    stage = StagePolicy("evaluate", StageKind("evaluate"), functionaries=("owner",))
    return Policy(
        expires=NOW + timedelta(days=1),
        functionaries={},
        stages=(stage,),
        requirements=requirements,
    )


def _report() -> VerificationReport:
    return VerificationReport("p", "sha256:" + "0" * 64, "run-a", "2025-06-01T12:00:00Z")


def test_requirements_that_hold_and_that_do_not(keys: dict[str, KeyPair]) -> None:
    chosen = {"evaluate": _accepted(keys["owner"], "evaluate", metrics={"mae": 3})}
    report = _report()
    check_requirements(
        _policy(
            Requirement("small-error", "stages.evaluate.metrics.mae < 4.0"),
            Requirement("tiny-error", "stages.evaluate.metrics.mae < 1.0", "keep the error tiny"),
            Requirement("no-remedy", "stages.evaluate.metrics.mae > 3.0"),
        ),
        chosen,
        report,
    )
    assert report.failures == [
        Failure(
            Check.REQUIREMENT,
            None,
            "requirement 'tiny-error' not met: expression is false",
            expected="stages.evaluate.metrics.mae < 1.0",
            found="expression is false",
            remedy="keep the error tiny",
        ),
        Failure(
            Check.REQUIREMENT,
            None,
            "requirement 'no-remedy' not met: expression is false",
            expected="stages.evaluate.metrics.mae > 3.0",
            found="expression is false",
            remedy="see the policy's requirements",
        ),
    ]


def test_a_requirement_that_cannot_be_evaluated_is_not_met(keys: dict[str, KeyPair]) -> None:
    report = _report()
    check_requirements(
        _policy(Requirement("needs-test", "stages.test.metrics.mae < 4.0", "run the test stage")),
        {"evaluate": _accepted(keys["owner"], "evaluate", metrics={"mae": 3})},
        report,
    )
    [failure] = report.failures
    assert failure.message.startswith("requirement 'needs-test' not met: cannot evaluate: ")
    found = failure.message.removeprefix("requirement 'needs-test' not met: ")
    assert len(found) > len("cannot evaluate: ")
    assert failure == Failure(
        Check.REQUIREMENT,
        None,
        f"requirement 'needs-test' not met: {found}",
        expected="stages.test.metrics.mae < 4.0",
        found=found,
        remedy="run the test stage",
    )


def test_no_requirements_reads_nothing() -> None:
    report = _report()
    # not even the records: a chosen attestation that could not be read as one is ignored
    check_requirements(_policy(), {"evaluate": None}, report)  # type: ignore[dict-item]
    assert report.failures == []
