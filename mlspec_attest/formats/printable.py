"""Text for a terminal: control characters in untrusted strings made visible.

File names, stage names, identities, paths and the messages that quote them come
from files an attacker may write. Printed raw, a newline in a file name starts a
forged line of the report (``verification PASSED``), an escape sequence drives the
terminal, a bidi override reorders what the reader sees. Every human renderer
passes its lines through :func:`printable_lines` (or one string through
:func:`printable`) at the edge, just before printing; the data, and JSON output
(escaped by JSON itself), keep the strings as they are.

A character is escaped as Python writes it in a string literal (``\\n``, ``\\x1b``,
``\\u202e``, ``\\udcff`` for an undecodable file-name byte) when it is not printable:
C0 controls, DEL, C1 controls, line and paragraph separators, format characters
(bidi embeddings, overrides and isolates U+202A–U+202E, U+2066–U+2069, zero-width
characters) and every other non-printable code point (see :meth:`str.isprintable`).
A backslash is kept as it is, so an escaped character and a literal backslash
sequence may look alike; neither can break or reorder a line.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["printable", "printable_lines"]

#: Escaped even if a future Unicode version made them printable: they break or reorder lines.
_ALWAYS_ESCAPED = frozenset(
    "\u0085\u2028\u2029"  # NEL, line and paragraph separators
    "\u200e\u200f\u061c"  # left-to-right, right-to-left and Arabic letter marks
    "\u202a\u202b\u202c\u202d\u202e"  # bidi embeddings, pop, overrides
    "\u2066\u2067\u2068\u2069"  # bidi isolates
)


def _escape(char: str) -> str:
    if char.isprintable() and char not in _ALWAYS_ESCAPED:
        return char
    if char in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: object) -> str:
    """``str(text)`` with every character that could break, drive or reorder a terminal line
    escaped (``"a\\nb"`` → ``a\\nb``); text without one is returned unchanged."""
    s = str(text)
    if s.isprintable() and _ALWAYS_ESCAPED.isdisjoint(s):
        return s
    return "".join(_escape(c) for c in s)


def printable_lines(lines: Iterable[str]) -> str:
    """The lines of a human rendering, each made :func:`printable`, joined by newlines: only
    the renderer's own line breaks remain."""
    return "\n".join(printable(line) for line in lines)
