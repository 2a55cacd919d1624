"""The NCSA line of a record: Combined Log Format, then ``key="value"`` extensions.

::

    127.0.0.1 - sha256:9f86… [07/Dec/2025:00:48:12 +0000] "POST /v2/models/iris/infer HTTP/1.1" 200 57 "-" "python-httpx/0.27.0" rid="r-1" model="iris" version="3" vsa="4c1e…" input="sha256:0a1b…" output="{\\x22class\\x22:1}" latency_us="812" seq="0"

The first part is exactly Combined Log Format (``host ident authuser [time] "request"
status bytes "referer" "user-agent"``; ident is always ``-``, authuser is the record's
user field), so any Combined Log parser reads it; the extensions follow, each quoted.

Client-controlled text (path, user agent, referer, request id ...) cannot break the
line: as nginx does, every byte outside printable ASCII, and ``"`` and ``\\``, is written
as ``\\xHH`` (of its UTF-8 bytes); in the unquoted fields and the request line a space is
escaped too, so each stays one token. A line is therefore printable ASCII without a
bare quote inside a quoted field, and the record is the source of truth: the audit
renders each record's line and compares it with ``access.log``.
"""

from __future__ import annotations

import json
import re
from typing import Any

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TOKEN_SAFE = re.compile(r"[!#-\[\]-~]+")  # printable ASCII but space, '"' and '\'
_TEXT_SAFE = re.compile(r"[ !#-\[\]-~]*")  # the same, and space
_JSON = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=True, allow_nan=False)
_CACHE_LIMIT = 4096
_cache: dict[tuple[str, bool], str] = {}

#: The Combined Log Format part of a line, as log tools parse it.
COMBINED = re.compile(
    r"(?P<host>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<method>\S+) (?P<path>\S+) (?P<protocol>\S+)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referer>[^"]*)" "(?P<agent>[^"]*)"'
)
#: One extension field after it (in the rest of a line after :data:`COMBINED`: searched
#: for anywhere in a line, it finds ``seq="`` in a user agent ``x seq=``; read a line's
#: extensions with :func:`extensions`).
EXTENSION = re.compile(r' (?P<key>[a-z_]+)="(?P<value>[^"]*)"')
EXTENSION_KEYS = ("rid", "model", "version", "vsa", "input", "output", "latency_us", "seq")
#: What comes before each extension's opening quote, read from the line's end: the first
#: follows the user agent's closing quote.
_EXTENSION_HEADS = ('" rid=', *(f" {key}=" for key in EXTENSION_KEYS[1:]))
_EXTENSION_QUOTES = 2 * len(EXTENSION_KEYS)


def _escape_slow(value: str, safe: re.Pattern[str]) -> str:
    out = []
    for ch in value:
        if safe.fullmatch(ch):
            out.append(ch)
        else:
            out.extend(f"\\x{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def _token(value: str | None) -> str:
    """An unquoted field or a word of the request line: ``-`` when empty."""
    if not value:
        return "-"
    if _TOKEN_SAFE.fullmatch(value):
        return value
    return _cached(value, True)


def _text(value: str | None) -> str:
    """The inside of a quoted field: ``-`` when absent."""
    if value is None:
        return "-"
    if _TEXT_SAFE.fullmatch(value):
        return value
    return _cached(value, False)


def _cached(value: str, token: bool) -> str:
    key = (value, token)
    hit = _cache.get(key)
    if hit is None:
        hit = _escape_slow(value, _TOKEN_SAFE if token else _TEXT_SAFE)
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = hit
    return hit


def output_json(output: Any) -> str:
    """The output as it appears in the line: compact JSON (sorted keys, ASCII), quoted."""
    text: str = _JSON.encode(output)
    if '"' in text or "\\" in text:
        text = text.replace("\\", "\\x5C").replace('"', "\\x22")
    return text


def clf_time(time: str) -> str:
    """``07/Dec/2025:00:48:12 +0000`` from the record's ``2025-12-07T00:48:12.123456Z``."""
    return f"{time[8:10]}/{_MONTHS[int(time[5:7]) - 1]}/{time[:4]}:{time[11:19]} +0000"


def line_of_map(m: dict[str, Any]) -> str:
    """The line of a record map (no newline; the record keys of
    :mod:`mlspec_attest.log.record`, its checks passed)."""
    return line_of(
        m["c"], m["u"], m["m"], m["p"], m["h"], m["f"], m["a"], m["r"], m["mn"], m["mv"],
        m["t"], m["s"], m["b"], m["vd"], m["id"], m["o"], m["l"], m["n"],
    )  # fmt: skip


def line_of(
    client: str, user: str, method: str, path: str, protocol: str,
    referer: str | None, agent: str | None, request_id: str, model: str, version: str,
    time: str, status: int, sent: int, vsa: str, input_digest: str, output: Any,
    latency_us: int, seq: int,
) -> str:  # fmt: skip
    """The line of a record of these values (:func:`line_of_map`, for a caller that has
    the values and no map)."""
    tokens = client, user, method, path, protocol
    texts: tuple[str, ...] = (
        "-" if referer is None else referer, "-" if agent is None else agent,
        request_id, model, version,
    )  # fmt: skip
    # Almost every line needs no escape: every field is checked at once (each pattern is
    # one character class repeated, so the fields match if their concatenation does).
    if not (
        all(tokens)
        and _TOKEN_SAFE.fullmatch("".join(tokens))
        and _TEXT_SAFE.fullmatch("".join(texts))
    ):
        client, user, method, path, protocol = map(_token, tokens)
        texts = tuple(map(_text, texts))
    referer, agent, request_id, model, version = texts
    return (
        f"{client} - {user} [{clf_time(time)}] "
        f'"{method} {path} {protocol}" {status} {sent} '
        f'"{referer}" "{agent}" rid="{request_id}" model="{model}" '
        f'version="{version}" vsa="{vsa}" input="{input_digest}" '
        f'output="{output_json(output)}" latency_us="{latency_us}" seq="{seq}"'
    )


def extensions(line: str) -> dict[str, str] | None:
    """The raw (still escaped) extension values of ``line`` by key, or None unless the
    line ends with exactly the extensions, in their order, after a quoted field.

    They are read from the end of the line: no value holds a bare quote, so the last
    sixteen quotes are theirs, and no client text (path, user, referer, user agent, all
    before them; a request id, inside its own quotes) can pass for one of them."""
    parts = line.rsplit('"', _EXTENSION_QUOTES)
    if len(parts) != _EXTENSION_QUOTES + 1 or parts[-1]:
        return None
    if not parts[0].endswith(_EXTENSION_HEADS[0]) or parts[2:-1:2] != list(_EXTENSION_HEADS[1:]):
        return None
    return dict(zip(EXTENSION_KEYS, parts[1::2], strict=True))


def extension(line: str, key: str) -> str | None:
    """The raw (still escaped) value of extension ``key`` in ``line``, if the line ends
    with the extensions (:func:`extensions`)."""
    values = extensions(line)
    return None if values is None else values.get(key)
