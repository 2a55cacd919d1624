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


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request body, read as it arrives; :class:`BodyTooLargeError` as soon as more
    than ``limit`` bytes came, :class:`ClientDisconnectedError` if the client left."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
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


class _RandomPool(threading.local):
    """Random bytes read from the OS 4 KiB at a time, per thread (one ``getrandom`` per
    256 request ids instead of one each); emptied in a forked child, which must not hand
    out its parent's ids."""

    data = b""
    at = 0


_POOL = _RandomPool()
os.register_at_fork(after_in_child=lambda: setattr(_POOL, "data", b""))


def new_request_id() -> str:
    """A random UUID (version 4) as text: what ``str(uuid.uuid4())`` gives, in a fraction
    of its time (it is made for every request without an id of its own)."""
    pool = _POOL
    at = pool.at
    if at + 16 > len(pool.data):
        pool.data, at = os.urandom(4096), 0
    raw = bytearray(pool.data[at : at + 16])
    pool.at = at + 16
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


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
