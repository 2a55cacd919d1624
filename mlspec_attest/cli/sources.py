"""Reading user-supplied documents of any supported kind (for show/inspect)."""

from __future__ import annotations

from pathlib import Path

from ..policy.model import Policy


def read_policy_any(path: Path) -> Policy:
    """A policy from YAML or from a signed policy envelope (signature not checked)."""
    if path.suffix in (".yaml", ".yml"):
        from ..policy.load import load_policy_yaml

        return load_policy_yaml(path)
    from ..jsonio import load_file
    from ..policy.signed import parse_signed_policy

    return parse_signed_policy(load_file(path), what=str(path)).policy
