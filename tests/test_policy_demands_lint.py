"""Lint warns where an ML section demands more than the policy's stages say, or less than
a reader may think (policy/ml_sections.py ``demand_warnings``, docs/policy.md).

* A section naming an optional stage (``required: false``) makes it required in effect:
  verify denies a run without it (data validation, leakage, separation; objectives with
  ``required: true``). A warning on that stage's ``required``.
* ``separation`` without a ``leakage`` section on its split stage: the hold-back split is
  still compared with every other split, but no other pair is. A warning on
  ``separation``.

Warnings, not errors: the policy means something definite and verify fails closed on it.
"""

from __future__ import annotations

from pathlib import Path

from mlspec_attest.policy import lint_policy_text
from mlspec_attest.policy.problems import Problem

from .mlpipeline import MLPipeline
from .support import PROJECT_ROOT, VERIFY_NOW, KeyPair
from .test_checks_holdback_exact import EditedPolicy
from .test_holdback_exemption import NO_LEAKAGE
from .test_verify_levels import OBJECTIVES, VALIDATE, optional


def warnings(ml: MLPipeline) -> list[Problem]:
    policy, problems = lint_policy_text(
        ml.policy_yaml.read_text(), source="policy.yaml", base_dir=ml.root, now=VERIFY_NOW
    )
    assert policy is not None, problems
    assert all(p.severity == "warning" for p in problems), problems
    # the test policy's stages have no artifact rules: lint warns about those, too
    return [p for p in problems if "demands this stage" in p.message or p.path == "separation"]


def test_the_test_policy_has_nothing_to_warn_about(ml: MLPipeline) -> None:
    assert warnings(ml) == []


def test_the_lifecycle_template_has_nothing_to_warn_about() -> None:
    text = (PROJECT_ROOT / "policies/lifecycle.yaml").read_text()
    _, problems = lint_policy_text(text, source="lifecycle.yaml", base_dir=PROJECT_ROOT)
    assert [p for p in problems if "demands this stage" in p.message] == []
    assert [p for p in problems if p.path == "separation"] == []


def test_separation_without_a_leakage_section_is_a_warning(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    ml = EditedPolicy(tmp_path / "p", keys, NO_LEAKAGE)
    [problem] = warnings(ml)
    assert (problem.path, problem.severity) == ("separation", "warning")
    assert problem.message == (
        "no leakage section on the split stage 'split': verify still compares the hold-back "
        "split with every other split, but no other pair of splits (train with validation, "
        "...); add `leakage: {stage: split}`"
    )
    assert problem.line is not None


def test_a_leakage_section_on_another_stage_does_not_cover_separation(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    resplit = (
        "  - name: train\n",
        "  - name: resplit\n    kind: split\n    functionaries: [data-engineer]\n"
        "    after: [validate]\n  - name: train\n",
    )
    ml = EditedPolicy(
        tmp_path / "p",
        keys,
        resplit,
        ("leakage:\n  stage: split\n", "leakage:\n  stage: resplit\n"),
    )
    assert [p.path for p in warnings(ml)] == ["separation"]


def test_a_section_naming_an_optional_stage_is_a_warning_on_that_stage(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    ml = EditedPolicy(tmp_path / "p", keys, optional(VALIDATE))
    [problem] = warnings(ml)
    assert (problem.path, problem.where) == ("stages[1].required", "stage 2 (validate), required")
    assert problem.message == (
        "the dataValidation section demands this stage: verify denies a run without an "
        "accepted attestation of 'validate', required or not; make it required "
        "(or drop the section)"
    )


def test_an_optional_objectives_stage_warns_unless_the_objectives_are_optional_too(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    demanded = EditedPolicy(tmp_path / "demanded", keys, optional(OBJECTIVES))
    [problem] = warnings(demanded)
    assert problem.path == "stages[0].required"
    assert problem.message.startswith("the objectives check demands this stage")
    skipped = EditedPolicy(
        tmp_path / "skipped",
        keys,
        optional(OBJECTIVES),
        (
            "objectives:\n  stage: objectives\n",
            "objectives:\n  stage: objectives\n  required: false\n",
        ),
    )
    assert warnings(skipped) == []
