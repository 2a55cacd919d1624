"""The policy's ``rollback`` section: the rollback target named by its verification summary."""

from __future__ import annotations

import pytest

from mlspec_attest.errors import PolicyError
from mlspec_attest.policy import load_policy_yaml, load_signed_policy

from .support import VERIFY_NOW, Pipeline

TARGET = "sha256:" + "ab" * 32


def test_rollback_target_is_compiled_and_signed(pipeline: Pipeline) -> None:
    text = pipeline.policy_text(expires="2030-01-01T00:00:00Z")
    pipeline.policy_yaml.write_text(
        text + f"rollback:\n  summary: {TARGET}\n  description: release 0.9.3\n"
    )
    policy = load_policy_yaml(pipeline.policy_yaml, now=VERIFY_NOW)
    assert policy.rollback is not None
    assert (policy.rollback.summary, policy.rollback.description) == (TARGET, "release 0.9.3")
    pipeline.sign_policy()
    signed = load_signed_policy(pipeline.signed_policy_path)
    assert signed.policy.rollback == policy.rollback
    assert signed.document["rollback"] == {"summary": TARGET, "description": "release 0.9.3"}


@pytest.mark.parametrize(
    "value",
    ["sha256:" + "AB" * 32, "ab" * 32, "sha256:" + "ab" * 31, "sha512:" + "ab" * 32],
)
def test_rollback_target_must_be_a_summary_digest(pipeline: Pipeline, value: str) -> None:
    text = pipeline.policy_text(expires="2030-01-01T00:00:00Z")
    pipeline.policy_yaml.write_text(text + f'rollback:\n  summary: "{value}"\n')
    with pytest.raises(PolicyError) as info:
        load_policy_yaml(pipeline.policy_yaml, now=VERIFY_NOW)
    [problem] = info.value.problems
    assert "rollback" in problem and "is not a summary digest: sha256: and 64" in problem


def test_rollback_needs_its_summary(pipeline: Pipeline) -> None:
    text = pipeline.policy_text(expires="2030-01-01T00:00:00Z")
    pipeline.policy_yaml.write_text(text + "rollback:\n  description: previous\n")
    with pytest.raises(PolicyError) as info:
        load_policy_yaml(pipeline.policy_yaml, now=VERIFY_NOW)
    [problem] = info.value.problems
    assert "rollback" in problem and "'summary' is a required property" in problem
