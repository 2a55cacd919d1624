"""policy.load_policy_yaml: the human YAML policy (ruamel, JSON Schema, compile).

Input: the bytes of a policy file. Checks: only bad-input errors (PolicyError,
KeyLoadError ...); a policy that loads survives its own signing form:
``to_json`` compiles again (as a signed policy would) to the same document.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mlspec_attest.formats.jsonio import canonical, loads_strict
from mlspec_attest.policy import load_policy_yaml
from mlspec_attest.policy.compiler import compile_policy

from ._harness import input_file, main, parse_or_none

INSTRUMENT = ("ruamel",)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def TestOneInput(data: bytes) -> None:
    policy = parse_or_none(load_policy_yaml, input_file(data, "policy.yaml"), now=NOW)
    if policy is None:
        return
    signed_form = loads_strict(canonical(policy.to_json()))
    again, problems = compile_policy(signed_form, base_dir=None)
    assert again is not None, [str(p) for p in problems]
    assert again.to_json() == signed_form


if __name__ == "__main__":
    main(TestOneInput)
