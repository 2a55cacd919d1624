"""Reading policies: YAML (lint, with line numbers for every problem) or signed JSON payloads.

A YAML policy is read (:mod:`~mlspec_attest.policy.source`), compiled
(:mod:`~mlspec_attest.policy.compiler`) and judged for expiry
(:mod:`~mlspec_attest.policy.problems`); :func:`read_policy_any` also takes a
signed policy (:mod:`~mlspec_attest.policy.signed`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from mlspec_attest.errors import PolicyError
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.formats.yamlio import plain
from mlspec_attest.policy.compiler import compile_policy
from mlspec_attest.policy.model import Policy
from mlspec_attest.policy.problems import Problem, expiry_problems
from mlspec_attest.policy.signed import YAML_SUFFIXES, parse_signed_policy
from mlspec_attest.policy.source import (
    YamlSyntaxError,
    parse_yaml,
    read_policy_text,
)


def lint_policy_text(
    text: str, *, source: str, base_dir: Path, now: datetime | None = None
) -> tuple[Policy | None, list[Problem]]:
    """Lint a YAML policy: every problem with its line number, expiry judged at ``now``."""
    try:
        root, line_of = parse_yaml(text, source=source)
    except YamlSyntaxError as exc:
        return None, [exc.problem]
    _expires_as_written(root)
    policy, problems = compile_policy(plain(root), base_dir=base_dir, line_of=line_of)
    if policy is not None:
        problems += expiry_problems(policy.expires, now or datetime.now(UTC), line_of(["expires"]))
    return policy, sorted(problems, key=lambda p: p.line or 0)


def _expires_as_written(root: Any) -> None:
    """An unquoted ``expires`` date or time, back to the text it was written as.

    YAML reads ``2027-01-31T12:00:00`` unquoted as a timestamp and quoted as text; the
    policy's one rule for ``expires`` (a date alone is the start of that day, UTC; a time
    without a zone is UTC, with a warning) then applies to both alike.
    """
    value = root.get("expires") if isinstance(root, dict) else None
    if isinstance(value, date):  # a datetime is a date too
        root["expires"] = value.isoformat()


def load_policy_yaml(path: Path, *, now: datetime | None = None) -> Policy:
    """Load and compile a YAML policy file; raise PolicyError listing every error.

    Loading makes no trust decision, so an expired policy loads (verification
    denies it, ``policy sign`` refuses it); ``now`` only dates lint's warnings.
    """
    policy, problems = lint_policy_text(
        read_policy_text(path), source=str(path), base_dir=path.parent, now=now
    )
    errors = [str(p) for p in problems if p.severity == "error" and p.code != "expired"]
    if policy is None or errors:
        raise PolicyError(f"{path}: policy has {len(errors)} error(s)", errors)
    return policy


def read_policy_any(path: Path) -> tuple[Policy, str]:
    """(policy, digest) from YAML or from a signed policy envelope (signature not checked).

    The digest of a signed policy is that of its payload, the value stages bind to;
    for YAML it is the digest the payload will have once signed.
    """
    if path.suffix in YAML_SUFFIXES:
        policy = load_policy_yaml(path)
        return policy, policy.digest()
    signed = parse_signed_policy(load_file(path), what=str(path))
    return signed.policy, signed.digest
