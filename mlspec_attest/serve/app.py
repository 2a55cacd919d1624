"""The reference server: a verified model behind the Open Inference Protocol.

:func:`build_app` makes the Starlette application of one
:class:`~mlspec_attest.serve.model.ServedModel`: the protocol's routes
(:mod:`mlspec_attest.serve.oip`) behind the same :class:`MlspecMiddleware` any other
application adds in one line, so ``/ok`` ``/varz`` ``/metrics``, the request ids and
the inference log take one path whoever serves the model. Run it with
:mod:`mlspec_attest.serve.runner`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Protocol, runtime_checkable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from mlspec_attest.serve.asgi import error_body
from mlspec_attest.serve.config import ServeConfig
from mlspec_attest.serve.context import RequestLog
from mlspec_attest.serve.drift_watch import DriftWatch
from mlspec_attest.serve.endpoints import ReadinessCheck, StatusEndpoints
from mlspec_attest.serve.metrics import ServeMetrics
from mlspec_attest.serve.middleware import MlspecMiddleware
from mlspec_attest.serve.model import ServedModel
from mlspec_attest.serve.oip import OipRoutes
from mlspec_attest.serve.predict_threads import PredictThreads


@runtime_checkable
class ClosableLog(Protocol):
    """A log with a ``close`` (the inference log: its final checkpoint)."""

    def close(self) -> object: ...


@runtime_checkable
class BackloggedLog(Protocol):
    """A log written by another process that may fall behind (journal mode)."""

    @property
    def backlog(self) -> int: ...


def build_app(
    served: ServedModel,
    log: RequestLog,
    *,
    config: ServeConfig | None = None,
    metrics: ServeMetrics | None = None,
    readiness: Iterable[ReadinessCheck] = (),
    close_log: bool = True,
    drift: DriftWatch | None = None,
) -> Starlette:
    """The reference server of ``served``, logging every inference to ``log``.

    Pass ``metrics`` to keep a handle on them (the monitoring code sets drift through
    :meth:`ServeMetrics.set_drift`). ``readiness`` adds named checks to ``/ok`` and the
    protocol's ready routes. With ``close_log`` the log is closed (its final
    checkpoint written) when the server shuts down, after the last request. With
    ``drift``, ``mlspec_drift_psi`` is the PSI of each feature over the recent requests.
    """
    metrics = metrics if metrics is not None else ServeMetrics()
    config = config or ServeConfig()
    endpoints = StatusEndpoints(metrics=metrics, served=served, config=config, readiness=readiness)
    predict = PredictThreads(config.predict_threads)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        predict.close()
        if close_log and isinstance(log, ClosableLog):
            log.close()

    app = Starlette(
        routes=OipRoutes(served, endpoints, drift, predict).routes(),
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
        lifespan=lifespan,
    )
    app.add_middleware(MlspecMiddleware, served=served, log=log, endpoints=endpoints)
    if isinstance(log, BackloggedLog):
        behind = log
        metrics.watch_log_backlog(lambda: behind.backlog)
    if drift is not None:
        watch = drift
        metrics.on_scrape(lambda: watch.refresh(metrics))
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no such route, method not allowed) as the protocol's JSON."""
    assert isinstance(exc, HTTPException)
    return Response(
        error_body(exc.detail),
        status_code=exc.status_code,
        headers=exc.headers,
        media_type="application/json",
    )


async def _internal_error(request: Request, exc: Exception) -> Response:
    return Response(
        error_body("internal server error"), status_code=500, media_type="application/json"
    )
