"""Bounds on a server's connections: how many may be open, and how long a client may take
to send a request (docs/serving.md, "Connections").

uvicorn bounds neither by default. A client that opens a connection and sends half a
request line keeps it, and a file descriptor, for ever; some thousands of such clients
exhaust the process's descriptors, and then nobody is answered, not even ``/ok``. So:

* ``max_connections`` (N): a connection accepted while N are open is answered 503 and
  closed at once, so the server never holds more than N client sockets, and the clients
  it holds are served as before; a request that arrives while more than N are in
  progress (their clients may have gone) is answered 503 (uvicorn's
  ``limit_concurrency``, N + 1: uvicorn also counts the open connections, which never
  reach it). By default half the process's open-file limit (``RLIMIT_NOFILE``), at most
  :data:`MAX_DEFAULT_CONNECTIONS`: the other half stays for the log, the model and the
  libraries.
* ``request_timeout``: a connection must deliver a whole request (head and body) within
  this many seconds of being opened or of its previous response, else it is closed
  (silently, as uvicorn closes an idle keep-alive connection). Time the server spends
  answering does not count.

Both are kept by :func:`guarded_protocol`, a small subclass of the HTTP/1.1 protocol
uvicorn would pick itself ("auto": httptools if installed, else h11). It needs nothing
on the hot path but one clock read per response: each connection has one timer, set
when it opens; when the timer fires it closes a connection that is still waiting for
its client past the deadline, or sets itself again for the deadline that now applies.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar, Final, cast

from msgspec import Struct

from mlspec_attest.errors import UsageError
from mlspec_attest.formats.inputs import named

#: Seconds a client has for a whole request (head and body) by default.
DEFAULT_REQUEST_TIMEOUT: Final = 10.0
#: The most connections a server allows by default, whatever its open-file limit.
MAX_DEFAULT_CONNECTIONS: Final = 4096
#: The default when the open-file limit cannot be read (no ``resource`` module).
_FALLBACK_CONNECTIONS: Final = 512
_MAX_REQUEST_TIMEOUT: Final = 3600.0
#: How often a server says it refuses connections (each refusal would flood the log).
_WARN_EVERY_SECONDS: Final = 60.0
_REFUSAL: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 19\r\nconnection: close\r\n\r\nService Unavailable"
)
_logger = logging.getLogger("uvicorn.error")


def default_max_connections() -> int:
    """Half of this process's open-file limit (soft), at most :data:`MAX_DEFAULT_CONNECTIONS`."""
    try:
        import resource
    except ImportError:  # not POSIX
        return _FALLBACK_CONNECTIONS
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft < 0:
        return MAX_DEFAULT_CONNECTIONS
    return max(1, min(soft // 2, MAX_DEFAULT_CONNECTIONS))


class ConnectionLimits(Struct, frozen=True):
    """How many connections a server keeps open, and how long a request may take to arrive."""

    max_connections: int | None = None
    """At most this many open connections (None: :func:`default_max_connections`)."""
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    """Seconds from a connection's opening, or its previous response, to a whole request."""

    def __post_init__(self) -> None:
        count = self.max_connections
        if count is not None and (isinstance(count, bool) or not 1 <= count <= 1_000_000):
            raise UsageError(f"max_connections must be between 1 and 1000000: {count!r}")
        if not 0 < self.request_timeout <= _MAX_REQUEST_TIMEOUT:
            raise UsageError(
                f"request_timeout must be more than 0 and at most {_MAX_REQUEST_TIMEOUT:g} "
                f"seconds: {self.request_timeout!r}"
            )

    def resolved(self) -> ResolvedLimits:
        """These limits with the default connection count filled in (from the current
        open-file limit)."""
        count = self.max_connections
        return ResolvedLimits(count or default_max_connections(), self.request_timeout)


class ResolvedLimits(Struct, frozen=True):
    """:class:`ConnectionLimits` with the connection count decided."""

    max_connections: int
    request_timeout: float


def guarded_protocol(limits: ResolvedLimits) -> type[asyncio.Protocol]:
    """uvicorn's own HTTP/1.1 protocol class, keeping ``limits``."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    attributes = {"limits": limits, "warned_at": None}
    return cast(type[asyncio.Protocol], type("GuardedHTTP", (_Guard, AutoHTTPProtocol), attributes))


class _Guard(asyncio.Protocol):
    """Mixed in before uvicorn's ``H11Protocol`` or ``HttpToolsProtocol``, which provide
    ``loop``, ``transport``, ``connections`` (the server's set of open connections),
    ``cycle`` (the current request, None before the first) and ``on_response_complete``
    (called once a response is sent). :func:`guarded_protocol` sets ``limits``."""

    limits: ClassVar[ResolvedLimits]
    warned_at: ClassVar[float | None]
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    connections: set[Any]
    cycle: Any
    _since: float
    _timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse()
            return
        self._since = self.loop.time()
        self._timer = self.loop.call_at(self._since + self.limits.request_timeout, self._check)

    def on_response_complete(self) -> None:
        self._since = self.loop.time()  # the wait for the next request starts now
        super().on_response_complete()  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def _check(self) -> None:
        """Close the connection if it still waits for its client past the deadline; else
        look again when the deadline that applies now falls."""
        self._timer = None
        if self.transport.is_closing() or self not in self.connections:
            return  # closing already, or handed over to a WebSocket protocol
        now = self.loop.time()
        due = self._since + self.limits.request_timeout
        if self._answering():
            due = now + self.limits.request_timeout
        elif now >= due:
            self.transport.close()
            return
        self._timer = self.loop.call_at(due, self._check)

    def _answering(self) -> bool:
        """Whether the server owes this connection a response: its request is in whole
        (or another is queued behind it, httptools' pipeline) and is not answered yet."""
        if getattr(self, "pipeline", None):
            return True
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete and not cycle.more_body

    def _refuse(self) -> None:
        self.transport.write(_REFUSAL)
        self.transport.close()
        cls = type(self)
        now = self.loop.time()
        if cls.warned_at is None or now - cls.warned_at >= _WARN_EVERY_SECONDS:
            cls.warned_at = now
            _logger.warning(
                "refusing connections (503): %d are open, the limit (%s)",
                len(self.connections) - 1,
                named("max_connections"),
            )
