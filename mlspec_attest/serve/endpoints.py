"""``/ok``, ``/varz`` and ``/metrics``: health, runtime variables, performance metrics.

MLSpec's workflow orchestration asks every step and server to expose the three.
:class:`StatusEndpoints` answers them for anything: the middleware routes them to it
in front of any application, the reference server shares it with its Open Inference
Protocol health routes, and a pipeline step serves it alone
(:mod:`mlspec_attest.serve.step`). docs/serving.md, "Endpoints", shows each document.

Readiness is a list of named checks the caller supplies plus faults the server
records itself (the inference log failing to write): ``/ok`` answers 503 naming every
reason while any check fails or any fault stands. ``/varz`` never shows key material:
configuration comes from :class:`~mlspec_attest.serve.config.ServeConfig`, whose
fields hold no secret, and every value shown is scrubbed of anything named like a
secret or holding a PEM private key.
"""

from __future__ import annotations

import os
import platform
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from time import perf_counter
from typing import Final

from starlette.types import Receive, Scope, Send

from mlspec_attest._version import __version__
from mlspec_attest.errors import BadInputError
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.serve.asgi import (
    Header,
    error_body,
    find_header,
    json_bytes,
    request_id,
    send_response,
)
from mlspec_attest.serve.config import ServeConfig
from mlspec_attest.serve.metrics import EXPOSITION_CONTENT_TYPE, EndpointMetrics, sha256_ref
from mlspec_attest.serve.model import ServedModel

#: A named readiness check: ready while it returns True (raising counts as not ready).
ReadinessCheck = tuple[str, Callable[[], bool]]

STATUS_PATHS: Final = frozenset({"/ok", "/varz", "/metrics"})

REDACTED: Final = "[redacted]"
_SECRET_NAME: Final = re.compile(r"passphrase|password|secret|token|private|credential", re.I)
_MAX_SHOWN_DEPTH: Final = 16


class StatusEndpoints:
    """The three endpoints of one server or step, over its metrics and configuration."""

    def __init__(
        self,
        *,
        metrics: EndpointMetrics,
        served: ServedModel | None = None,
        name: str | None = None,
        config: ServeConfig | None = None,
        readiness: Iterable[ReadinessCheck] = (),
        varz: Mapping[str, object] | None = None,
    ) -> None:
        if name is None:
            if served is None:
                raise BadInputError("status endpoints need a name or a served model")
            name = served.name
        self.metrics = metrics
        self.served = served
        self.name = name
        self.config = config
        self._checks = list(readiness)
        self._lock = threading.Lock()
        self._vars: dict[str, object] = {}
        self._faults: dict[str, str] = {}
        for key, value in (varz or {}).items():
            self.set_var(key, value)

    # ------------------------------------------------------------ state
    def set_var(self, key: str, value: object) -> None:
        """Show ``key: value`` under ``vars`` in ``/varz`` (any JSON value)."""
        try:
            json_bytes(value)
        except (TypeError, ValueError) as exc:
            raise BadInputError(f"varz {key!r}: not a JSON value ({exc})") from exc
        with self._lock:
            self._vars[str(key)] = value

    def add_check(self, check: ReadinessCheck) -> None:
        """Add a named readiness check."""
        self._checks.append(check)

    def set_fault(self, name: str, reason: str) -> None:
        """Record a fault: not ready, naming ``reason``, until :meth:`clear_fault`."""
        with self._lock:
            self._faults[name] = reason

    def clear_fault(self, name: str) -> None:
        """Clear the fault ``name`` (if any)."""
        with self._lock:
            self._faults.pop(name, None)

    def not_ready(self) -> list[str]:
        """Why the server is not ready: one reason per failing check or fault; empty if ready."""
        with self._lock:
            reasons = [f"{name}: {reason}" for name, reason in self._faults.items()]
        for name, check in self._checks:
            try:
                ready = check()
            except Exception as exc:  # a check that cannot tell is not ready
                reasons.append(f"{name}: check failed ({type(exc).__name__}: {exc})")
                continue
            if ready is not True:
                reasons.append(f"{name}: not ready")
        return reasons

    # ------------------------------------------------------------ documents
    def ok(self) -> tuple[int, dict[str, object]]:
        """``/ok``: 200 when live and ready, 503 naming every reason when not ready."""
        reasons = self.not_ready()
        document: dict[str, object] = {
            "status": "ok" if not reasons else "not ready",
            "live": True,
            "ready": not reasons,
            "name": self.name,
        }
        if self.served is not None:
            document["model"] = {
                "name": self.served.name,
                "version": self.served.version,
                "digest": sha256_ref(self.served.binding.model_digest),
                "verified": True,
            }
        if reasons:
            document["reasons"] = reasons
        return (200 if not reasons else 503), document

    def varz(self) -> dict[str, object]:
        """``/varz``: what runs, under which verified pipeline, configured how."""
        started = datetime.fromtimestamp(self.metrics.started_at, UTC)
        document: dict[str, object] = {"name": self.name}
        if self.served is not None:
            document.update(_model_varz(self.served))
        with self._lock:
            shown_vars = dict(self._vars)
        document.update(
            {
                "mlspec_attest_version": __version__,
                "python_version": platform.python_version(),
                "pid": os.getpid(),
                "start_time": format_rfc3339(started),
                "uptime_seconds": round(self.metrics.uptime(), 3),
                "config": self.config.varz() if self.config is not None else {},
                "vars": shown_vars,
            }
        )
        shown = scrub(document)
        assert isinstance(shown, dict)
        return shown

    # ------------------------------------------------------------ HTTP
    async def respond(
        self, path: str, method: str, send: Send, headers: Iterable[Header] = ()
    ) -> int:
        """Answer ``path`` (one of :data:`STATUS_PATHS`); return the status sent."""
        if method != "GET":
            extra = [(b"allow", b"GET"), *headers]
            await send_response(send, 405, error_body("method not allowed"), headers=extra)
            return 405
        if path == "/metrics":
            body = self.metrics.exposition()
            content_type = EXPOSITION_CONTENT_TYPE.encode("ascii")
            await send_response(send, 200, body, content_type=content_type, headers=headers)
            return 200
        if path == "/ok":
            status, document = self.ok()
        else:
            status, document = 200, self.varz()
        await send_response(send, status, json_bytes(document), headers=headers)
        return status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoints as an ASGI application of their own (a pipeline step's server)."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = perf_counter()
        path: str = scope["path"]
        rid = request_id(find_header(scope["headers"], b"x-request-id"))
        ids = [(b"x-request-id", rid.encode("ascii"))]
        if path in STATUS_PATHS:
            status = await self.respond(path, scope["method"], send, ids)
            route = path
        else:
            status, route = 404, "unmatched"
            await send_response(send, 404, error_body(f"no endpoint {path}"), headers=ids)
        self.metrics.observe_request(route, scope["method"], status, perf_counter() - started)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _model_varz(served: ServedModel) -> dict[str, object]:
    binding = served.binding
    return {
        "model": {
            "name": served.name,
            "version": served.version,
            "digest": sha256_ref(binding.model_digest),
            "format": served.format,
            "features": list(served.features),
            "extra": served.extra,
        },
        "binding": {
            "model_digest": sha256_ref(binding.model_digest),
            "vsa_digest": sha256_ref(binding.vsa_digest),
            "policy_digest": sha256_ref(binding.policy_digest),
            "run_id": binding.run_id,
            "time_verified": binding.time_verified,
            "verifier_id": binding.verifier_id,
            "resource_uri": binding.resource_uri,
        },
    }


def scrub(value: object, depth: int = 0) -> object:
    """``value`` as JSON may show it: entries named like a secret and strings holding a
    PEM private key redacted, bytes never shown, other objects as text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, str):
        return REDACTED if "PRIVATE KEY" in value else value
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if depth >= _MAX_SHOWN_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        return {
            str(key): REDACTED if _SECRET_NAME.search(str(key)) else scrub(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(item, depth + 1) for item in value]
    return scrub(str(value), depth)
