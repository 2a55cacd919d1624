"""Raw ASGI pieces the middleware, the endpoints and the step server share.

Responses here are written as ASGI messages directly (no Starlette ``Response``
object): the middleware answers ``/ok`` ``/varz`` ``/metrics`` and its refusals on the
hot path, below whatever framework the application uses.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable
from typing import Final

from starlette.types import Message, Receive, Send

from mlspec_attest.formats import limits

JSON_CONTENT_TYPE: Final = b"application/json"

Header = tuple[bytes, bytes]

#: The response headers the middleware sets, in place of any the application set.
_OWN_HEADERS: Final = frozenset({b"x-request-id", b"x-mlspec-vsa"})

#: A request id a client may choose: letters, digits and ``._:-``, bounded. Anything
#: else (spaces, quotes, CR/LF, non-ASCII, too long) is replaced, never echoed.
_REQUEST_ID: Final = re.compile(rb"[A-Za-z0-9._:-]{1,%d}" % limits.MAX_REQUEST_ID_BYTES)


class BodyTooLargeError(Exception):
    """A request body went over its limit while it was read."""


class ClientDisconnectedError(Exception):
    """The client went away before its request body arrived."""


def header_text(value: bytes) -> str:
    """A header's (or the request target's) bytes as text for the log: UTF-8 as sent, a
    byte that is not UTF-8 kept by ``surrogateescape`` (the record writes it as ``\\xHH``
    of that byte: :func:`~mlspec_attest.log.record.clean_text`)."""
    return value.decode("utf-8", "surrogateescape")


def json_bytes(document: object) -> bytes:
    """Compact JSON of a response document (non-finite numbers refused)."""
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode("utf-8")


def error_body(message: str) -> bytes:
    """The Open Inference Protocol's error document: ``{"error": message}``."""
    return json_bytes({"error": message})


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = JSON_CONTENT_TYPE,
    headers: Iterable[Header] = (),
) -> None:
    """Send a whole response: start (with Content-Type and Content-Length) and body."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", b"%d" % len(body)),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive, limit: int, first: Message | None = None) -> bytes:
    """The request body, read as it arrives (from ``first``, a message already received,
    if given); :class:`BodyTooLargeError` as soon as more than ``limit`` bytes came,
    :class:`ClientDisconnectedError` if the client left."""
    parts: list[bytes] = []
    size = 0
    while True:
        message, first = (first, None) if first is not None else (await receive(), None)
        if message["type"] == "http.disconnect":
            raise ClientDisconnectedError
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError
            parts.append(chunk)
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


def request_id(value: bytes | None) -> str:
    """The client's ``X-Request-Id`` if it is a sane token, else a new UUID (version 4)."""
    if value is not None and _REQUEST_ID.fullmatch(value):
        return value.decode("ascii")
    return new_request_id()


class _IdPool(threading.local):
    """Request ids made 256 at a time from one read of OS randomness, per thread (one
    ``getrandom`` and one hex conversion per 256 ids instead of one each); emptied in a
    forked child, which must not hand out its parent's ids."""

    ids: list[str] = []  # noqa: RUF012 - replaced, never mutated in place, per thread


_POOL = _IdPool()
os.register_at_fork(after_in_child=lambda: setattr(_POOL, "ids", []))
_VARIANT: Final = "89ab89ab89ab89ab"  # the RFC 4122 variant digit for each hex digit's low bits


def _new_ids() -> list[str]:
    text = os.urandom(16 * 256).hex()
    return [
        f"{t[:8]}-{t[8:12]}-4{t[13:16]}-{_VARIANT[int(t[16], 16)]}{t[17:20]}-{t[20:32]}"
        for t in (text[i : i + 32] for i in range(0, len(text), 32))
    ]


def new_request_id() -> str:
    """A random UUID (version 4) as text: what ``str(uuid.uuid4())`` gives, in a fraction
    of its time (it is made for every request without an id of its own)."""
    ids = _POOL.ids
    if not ids:
        ids = _POOL.ids = _new_ids()
    return ids.pop()


def find_header(headers: Iterable[Header], name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case, as ASGI servers give names)."""
    for key, value in headers:
        if key == name:
            return value
    return None


def with_ids(headers: Iterable[Header], ids: Iterable[Header]) -> list[Header]:
    """The response headers with ours in place of any the application set."""
    return [header for header in headers if header[0] not in _OWN_HEADERS] + list(ids)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the application the body already read, then the real one."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
