"""RFC 3339 instants: parsing and formatting, without importing anything heavy.

Kept apart from the policy package so that signing a stage does not load the
YAML and JSON Schema machinery just to check a timestamp.

Parsing is strict: only the RFC 3339 ``date-time`` form (``T``, ``t`` or a
space between date and time; ``Z`` or a ``±hh:mm`` offset) is read, not the
wider ISO 8601 forms Python's ``fromisoformat`` accepts (week dates, basic
format, offsets without a colon), which other verifiers would refuse. Every
failure, including an instant outside years 1-9999 once shifted to UTC, is a
``ValueError`` with a clear message: callers turn it into bad input (exit 3).

What a person writes in a policy's ``expires`` is read more widely, by
:func:`parse_day_or_instant`: a date alone, or a date-time without a zone (UTC, and
flagged so that lint can say so). What is signed is always :func:`format_rfc3339`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 instant (``Z`` or offset) into an aware UTC datetime.

    Raises ``ValueError`` for anything else: no time zone, not RFC 3339, a field
    out of range, or an instant outside years 1-9999 in UTC.
    """
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    text = value.strip()
    if not _RFC3339.fullmatch(text):
        raise ValueError(_explain(value, text))
    return _instant(text, value)


def _instant(text: str, value: str) -> datetime:
    """The UTC instant of an RFC 3339 ``text`` (already matched); errors quote ``value``."""
    text = text[:10] + "T" + text[11:]
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{value!r} is out of range (years 0001-9999 in UTC)") from exc
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid instant ({exc})") from exc


def _explain(value: str, text: str) -> str:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?", text):
        return f"{value!r} has no time zone (add Z or an offset such as +00:00)"
    return f"{value!r} is not an RFC 3339 date-time (YYYY-MM-DDThh:mm:ssZ or ±hh:mm)"


_DAY_OR_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})?)?", re.ASCII
)
DAY_OR_TIME_WORDS = (
    "a date like 2027-01-31 or a time like 2027-01-31T12:00:00Z "
    "(Z or an offset such as +02:00 gives the time zone)"
)
"""How :func:`parse_day_or_instant` input is described to people (never as a regex)."""


def midnight_utc(day: date) -> datetime:
    """The instant a date alone stands for: the start of that day, UTC (one rule for YAML
    dates, quoted or not; :func:`mlspec_attest.formats.yamlio.plain` uses it too)."""
    return datetime.combine(day, time(), tzinfo=UTC)


def parse_day_or_instant(value: str) -> tuple[datetime, bool]:
    """What people write for a moment: (the UTC instant, whether a time zone was written).

    ``2027-01-31`` is the start of that day, UTC (:func:`midnight_utc`); an RFC 3339
    date-time is its instant; a date-time without ``Z`` or an offset is read as UTC and
    flagged (``False``) so that callers can say so. Raises ``ValueError`` in words.
    """
    text = value.strip() if isinstance(value, str) else None
    if text is None or not _DAY_OR_TIME.fullmatch(text):
        raise ValueError(f"{value!r} is not {DAY_OR_TIME_WORDS}")
    if len(text) == 10:
        try:
            return midnight_utc(date.fromisoformat(text)), True
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a real date ({exc})") from exc
    zoned = text[-1] in "Zz" or text[-6] in "+-"
    return _instant(text if zoned else text + "Z", value), zoned


def format_rfc3339(moment: datetime) -> str:
    """``YYYY-MM-DDThh:mm:ssZ`` (four-digit year even before 1000, unlike ``strftime``)."""
    utc = moment.astimezone(UTC)
    return utc.replace(microsecond=0, tzinfo=None).isoformat() + "Z"
