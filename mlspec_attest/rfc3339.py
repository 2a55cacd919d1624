"""RFC 3339 instants: parsing and formatting, without importing anything heavy.

Kept apart from the policy package so that signing a stage does not load the
YAML and JSON Schema machinery just to check a timestamp.
"""

from __future__ import annotations

from datetime import UTC, datetime


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 instant (``Z`` or offset) into an aware UTC datetime."""
    text = value.strip().replace(" ", "T")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return parsed.astimezone(UTC)


def format_rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
