"""Comparing and showing the DigestSets of materials and products."""

from __future__ import annotations

from collections.abc import Mapping


def same_content(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Two DigestSets name the same bytes: some algorithm appears in both, with equal values."""
    common = set(a) & set(b)
    return bool(common) and all(a[k] == b[k] for k in common)


def short(digest: Mapping[str, str] | None) -> str:
    """A DigestSet for messages: ``sha256:`` and the first 16 hex digits."""
    if not digest:
        return "none"
    return "sha256:" + digest.get("sha256", "?")[:16] + "…"
