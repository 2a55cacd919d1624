"""Typed requirements in the policy: floors, ceilings, slice gaps and ratios, support per
slice, no regression against the baseline — judged by the objectives' evaluator, each
failure showing what it observed; CEL failures show every term they read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mlspec_attest.policy.load import lint_policy_text
from mlspec_attest.verify.report import Check, VerificationReport

from .mlpipeline import REQUIREMENTS, MLPipeline

MakeML = Callable[..., MLPipeline]

# test stage (tests/mlpipeline.py): mae 50.0, r2 0.45; sex F 48.0 (60 rows), M 53.0 (55), X 95.0 (3)
TYPED = """\
  - id: test-mae-ceiling
    stage: test
    metric: mae
    max: 60
  - id: test-r2-floor
    stage: test
    metric: r2
    min: 0.4
  - id: four-fifths-mae
    stage: test
    ratio: {family: sex, metric: mae, min: 0.8, minCount: 20}
  - id: gap-mae
    stage: test
    gap: {family: sex, metric: mae, max: 8, minCount: 20}
"""


def failures(report: VerificationReport) -> list[Any]:
    return [f for f in report.failures if f.check is Check.REQUIREMENT]


def test_typed_requirements_that_hold(make_ml: MakeML) -> None:
    report = make_ml(requirements=REQUIREMENTS + TYPED).run().verify()
    assert report.failures == [], [str(f) for f in report.failures]
    results = {r.id: r for r in report.requirements}
    assert results["test-mae-ceiling"].observed == {"mae": 50.0}
    assert results["four-fifths-mae"].observed["ratio"] == pytest.approx(48.0 / 53.0)
    assert results["gap-mae"].observed["gap"] == 5.0
    assert [r["id"] for r in report.to_json()["requirements"]][-4:] == [
        "test-mae-ceiling", "test-r2-floor", "four-fifths-mae", "gap-mae",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("requirement", "expected", "found"),
    [
        ("metric: mae\n    max: 45", "<= 45", "mae=50"),
        ("metric: r2\n    min: 0.5", ">= 0.5", "r2=0.45"),
        ("ratio: {family: sex, metric: mae, min: 0.95, minCount: 20}", "worst / best slice >= 0.95",
         "ratio=0.90566"),
        ("support: {family: sex, min: 10}", "each slice count >= 10", "sex=X.count=3"),
        ("eachSlice: {family: sex, metric: mae, max: 52, minCount: 20}", "each slice <= 52",
         "sex=M=53"),
    ],
)  # fmt: skip
def test_a_typed_requirement_not_met_shows_bound_and_observed(
    make_ml: MakeML, requirement: str, expected: str, found: str
) -> None:
    reqs = REQUIREMENTS + f"  - id: strict\n    stage: test\n    {requirement}\n"
    [failure] = failures(make_ml(requirements=reqs).run().verify())
    assert failure.stage == "test"
    assert failure.message.startswith("requirement 'strict' (")
    assert failure.expected == expected
    assert found in failure.found


def test_a_cel_requirement_not_met_shows_every_term_it_read(make_ml: MakeML) -> None:
    reqs = REQUIREMENTS + (
        "  - id: cel-gap\n"
        '    expr: \'stages.test.slices["sex"]["M"].metrics.mae - '
        'stages.test.slices["sex"]["F"].metrics.mae <= 2.0\'\n'
    )
    [failure] = failures(make_ml(requirements=reqs).run().verify())
    assert "expression is false" in failure.message
    assert 'stages.test.slices["sex"]["M"].metrics.mae = 53.0' in failure.message
    assert 'stages.test.slices["sex"]["F"].metrics.mae = 48.0' in failure.message


def test_a_missing_key_is_named_with_the_terms(make_ml: MakeML) -> None:
    reqs = REQUIREMENTS + "  - id: auc\n    expr: 'stages.test.metrics.auc >= 0.8'\n"
    [failure] = failures(make_ml(requirements=reqs).run().verify())
    assert "cannot evaluate" in failure.message
    assert "stages.test.metrics.auc = missing value" in failure.message
    assert "'auc'" in failure.message


POLICY = """\
apiVersion: mlspec-attest/v1
kind: Policy
metadata: {{name: p, owner: o@example.org}}
expires: "2031-01-01T00:00:00Z"
functionaries:
  alice: {{publicKey: "{pem}"}}
stages:
  - {{name: split, kind: split, functionaries: [alice]}}
  - {{name: train, kind: train, functionaries: [alice], after: [split]}}
  - {{name: test, kind: test, functionaries: [alice], after: [train]}}
requirements:
{requirements}
"""


def lint(requirements: str, pem: str) -> list[str]:
    text = POLICY.format(pem=pem, requirements=requirements)
    _, problems = lint_policy_text(text, source="p.yaml", base_dir=None)  # type: ignore[arg-type]
    return [f"{p.severity}: {p.path}: {p.message}" for p in problems if p.path.startswith("req")]


@pytest.fixture(scope="module")
def pem() -> str:
    from mlspec_attest.signing.keys import KeyType, generate_key

    return generate_key(KeyType.ED25519).public_key.pem().replace("\n", "\\n")


def test_lint_names_unknown_stages_in_typed_and_cel_requirements(pem: str) -> None:
    problems = lint(
        "  - {id: a, stage: evaluate, metric: mae, max: 1}\n"
        "  - {id: b, expr: 'stages.evaluate.metrics.mae < 1.0 && stages[\"test\"].metrics.mae < 2.0'}\n"
        "  - {id: c, stage: split, metric: mae, max: 1}\n"
        "  - {id: d, stage: test, ratio: {family: sex, metric: mae}}\n"
        "  - {id: e, exprs: 'x'}\n",
        pem,
    )
    assert "error: requirements[0].stage: unknown stage 'evaluate'" in problems
    assert (
        "error: requirements[1].expr: the expression reads stages.evaluate: no such stage"
        in problems
    )
    assert not any("stages.test" in p for p in problems)
    assert any(
        p.startswith("warning: requirements[2].stage: stage 'split' is of kind split")
        for p in problems
    )
    assert "error: requirements[3].ratio: 'min' is a required property" in problems
    assert any(
        p.startswith("error: requirements[4].exprs: unknown field 'exprs'") for p in problems
    )
    assert any(
        p.startswith("error: requirements[4]: a requirement is either 'expr'") for p in problems
    )


def test_a_signed_policy_keeps_typed_requirements(pem: str) -> None:
    text = POLICY.format(
        pem=pem, requirements="  - {id: r, stage: test, support: {family: sex, min: 5}}\n"
    )
    policy, problems = lint_policy_text(text, source="p.yaml", base_dir=None)  # type: ignore[arg-type]
    assert policy is not None, problems
    [req] = policy.requirements
    assert req.to_json() == {"id": "r", "stage": "test", "support": {"family": "sex", "min": 5}}
    from mlspec_attest.policy.compiler import compile_policy

    again, errors = compile_policy(policy.to_json(), base_dir=None)
    assert again is not None and again.requirements == policy.requirements, errors


def test_lint_warns_of_a_slice_bound_on_a_stage_without_slices(pem: str) -> None:
    problems = lint(
        "  - {id: a, stage: train, gap: {family: sex, metric: mae, max: 1}}\n"
        "  - {id: b, stage: test, gap: {family: sex, metric: mae, max: 1}}\n"
        "  - {id: c, stage: train, metric: loss, max: 1}\n",
        pem,
    )
    assert problems == [
        "warning: requirements[0].stage: stage 'train' is of kind train, which attests no "
        "slices: a slice bound reads an evaluate, test or monitor stage"
    ]


def test_lint_reads_in_stages_as_a_stage_name_only_when_it_is_one(pem: str) -> None:
    problems = lint(
        "  - {id: a, expr: '\"seed\" in stages.split.parameters'}\n"
        "  - {id: b, expr: '!(\"audit\" in stages) || stages.test.metrics.mae < 1.0'}\n",
        pem,
    )
    assert problems == [
        "error: requirements[1].expr: the expression reads stages.audit: no such stage"
    ]
