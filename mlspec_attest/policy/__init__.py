"""Policies: what a pipeline must prove before deploy (the in-toto layout of an ML pipeline).

Owns reading a policy of any kind (``load``: YAML lint and load, ``read_policy_any``;
``source``: the policy's YAML through :mod:`mlspec_attest.formats.yamlio`), compiling
it (``compiler``, one section per module: ``functionaries``, ``trust``, ``stages``,
``ml_sections``; findings and expiry in ``problems``), the compiled model (``model``),
artifact rules (``rules``), signed policies (``signed``), launch objectives and their
CEL evaluation (``objectives``, ``celexpr``) and the shipped templates (``templates``).

May import: :mod:`mlspec_attest.evidence`, :mod:`mlspec_attest.signing`,
:mod:`mlspec_attest.digest`, :mod:`mlspec_attest.store`, :mod:`mlspec_attest.formats`,
:mod:`mlspec_attest.errors`.

The names below are loaded on first use (PEP 562): ``verify`` of a signed policy reads
no YAML, and importing one part of this layer does not load all of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlspec_attest.formats.lazy import lazy_exports

if TYPE_CHECKING:
    from mlspec_attest.policy.compiler import compile_policy
    from mlspec_attest.policy.load import lint_policy_text, load_policy_yaml, read_policy_any
    from mlspec_attest.policy.model import DeployArtifact, Functionary, Policy, StagePolicy
    from mlspec_attest.policy.problems import Problem
    from mlspec_attest.policy.rules import ArtifactRule, RuleVerb, evaluate_rules
    from mlspec_attest.policy.signed import (
        POLICY_PAYLOAD_TYPE,
        SignedPolicy,
        load_signed_policy,
        parse_signed_policy,
        sign_policy,
    )

#: Each public name -> the module that defines it (the imports above, for type checkers).
_LAZY = {
    "compile_policy": "compiler",
    "lint_policy_text": "load",
    "load_policy_yaml": "load",
    "read_policy_any": "load",
    "DeployArtifact": "model",
    "Functionary": "model",
    "Policy": "model",
    "StagePolicy": "model",
    "Problem": "problems",
    "ArtifactRule": "rules",
    "RuleVerb": "rules",
    "evaluate_rules": "rules",
    "POLICY_PAYLOAD_TYPE": "signed",
    "SignedPolicy": "signed",
    "load_signed_policy": "signed",
    "parse_signed_policy": "signed",
    "sign_policy": "signed",
}

__all__ = [
    "POLICY_PAYLOAD_TYPE",
    "ArtifactRule",
    "DeployArtifact",
    "Functionary",
    "Policy",
    "Problem",
    "RuleVerb",
    "SignedPolicy",
    "StagePolicy",
    "compile_policy",
    "evaluate_rules",
    "lint_policy_text",
    "load_policy_yaml",
    "load_signed_policy",
    "parse_signed_policy",
    "read_policy_any",
    "sign_policy",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
