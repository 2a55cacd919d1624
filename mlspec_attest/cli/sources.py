"""Kept only until ``cli/inspect.py`` imports :func:`read_policy_any` from its home,
:mod:`mlspec_attest.policy.load`; then delete this module."""

from __future__ import annotations

from mlspec_attest.policy.load import read_policy_any

__all__ = ["read_policy_any"]
