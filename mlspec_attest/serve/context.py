"""What an application and the middleware hand each other for one request, and what
the middleware needs of the inference log.

The application sets its prediction output (:func:`set_output`) and may name the kind
of error it answers with (:func:`set_error_kind`); the middleware sets the request id
(:func:`request_id_of`) and marks a request it logs (:func:`is_logged`). They live in
the ASGI scope's ``state`` dict, which Starlette's ``request.state`` shares and which the
server makes anew for each request.
"""

from __future__ import annotations

from typing import Any, Final, Protocol, Unpack

from starlette.requests import HTTPConnection
from starlette.types import Scope

from mlspec_attest.log.prepare import RequestValues

#: ``scope["state"]`` key of the prediction output the application sets (:func:`set_output`).
OUTPUT_KEY: Final = "mlspec.output"
#: ``scope["state"]`` key of the request id the middleware chose.
REQUEST_ID_KEY: Final = "mlspec.request_id"
#: ``scope["state"]`` key of the error kind the application names (:func:`set_error_kind`).
ERROR_KIND_KEY: Final = "mlspec.error"
#: ``scope["state"]`` key the middleware sets (True) on a request it will log as an
#: inference before answering it (:func:`is_logged`).
LOGGED_KEY: Final = "mlspec.logged"


class RequestLog(Protocol):
    """What the middleware needs of the inference log
    (:class:`mlspec_attest.log.writer.InferenceLog` is one): one durable record per
    request, or an :class:`~mlspec_attest.errors.MlspecError` when it cannot be written
    (:class:`mlspec_attest.log.journaled.JournaledLog` returns once the request's checked
    values are journaled, its record following from them). An ``append`` may return an
    awaitable instead
    (:class:`mlspec_attest.log.process.LogWriterProcess` does): the middleware awaits it
    before it answers, and treats what it raises as the append's own failure. A log
    with ``append_row(row)`` (the same values as one tuple, in the order of
    :data:`~mlspec_attest.log.prepare.ROW_KEYS`) is called that way."""

    def append(self, **values: Unpack[RequestValues]) -> object: ...


def _state(target: HTTPConnection | Scope) -> dict[str, Any]:
    # a scope is a dict: checked first, an isinstance of HTTPConnection (a Mapping, so an
    # ABC's check) cost more than the rest of set_output
    if type(target) is not dict and isinstance(target, HTTPConnection):
        target = target.scope
    state: dict[str, Any] = target.setdefault("state", {})
    return state


def set_output(target: HTTPConnection | Scope, output: object) -> None:
    """Hand the prediction ``output`` of this request (a request or its scope) to the
    middleware, which logs it and adds it to ``mlspec_predictions``."""
    _state(target)[OUTPUT_KEY] = output


def set_error_kind(target: HTTPConnection | Scope, kind: str) -> None:
    """Name the kind of the error this request is answered with, for
    ``mlspec_request_errors_total{kind}`` (default: from the status)."""
    _state(target)[ERROR_KIND_KEY] = kind


def is_logged(target: HTTPConnection | Scope) -> bool:
    """Whether the middleware took this request as an inference: its record is written
    before the answer leaves. An application predicts only when it is: a route the
    middleware does not take as an inference (its router and the middleware's
    ``is_inference`` disagree about a path) must refuse, or it answers unlogged."""
    return _state(target).get(LOGGED_KEY) is True


def request_id_of(target: HTTPConnection | Scope) -> str | None:
    """The id the middleware gave this request (the one in ``X-Request-Id``)."""
    value = _state(target).get(REQUEST_ID_KEY)
    return value if isinstance(value, str) else None
