"""The reference server's routes: the Open Inference Protocol v2 (KServe, Triton) over
HTTP/REST, and v1's predict.

=====  ==========================================================  ==========================
verb   path                                                        answer
=====  ==========================================================  ==========================
GET    ``/v2``                                                     server metadata
GET    ``/v2/health/live``, ``/v2/health/ready``                   200, or 503 when not ready
GET    ``/v2/models/{name}[/versions/{v}]``                        model metadata
GET    ``/v2/models/{name}[/versions/{v}]/ready``                  200, or 503 when not ready
POST   ``/v2/models/{name}[/versions/{v}]/infer``                  inference response
GET    ``/v1/models/{name}``                                       ``{"name", "ready"}``
POST   ``/v1/models/{name}:predict``                               ``{"predictions": [...]}``
=====  ==========================================================  ==========================

Errors are the protocol's ``{"error": "..."}``: 404 for a model or version not served
here, 400 for a request that is not one (:mod:`mlspec_attest.serve.tensors` says
what is wrong), 500 when the model fails, without a traceback (that goes to the
server's log). The middleware in front adds the request id, the VSA header, the
size limit and the inference-log record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mlspec_attest._version import __version__
from mlspec_attest.errors import BadInputError
from mlspec_attest.serve import tensors
from mlspec_attest.serve.asgi import error_body, json_bytes
from mlspec_attest.serve.context import is_logged, request_id_of, set_error_kind, set_output
from mlspec_attest.serve.drift_watch import DriftWatch
from mlspec_attest.serve.endpoints import StatusEndpoints
from mlspec_attest.serve.metrics import sha256_ref
from mlspec_attest.serve.model import ServedModel
from mlspec_attest.serve.predict_threads import PredictThreads

SERVER_NAME: Final = "mlspec-attest"
#: Longest predictor message a 500 answer repeats.
_MAX_MESSAGE: Final = 200
#: Longest model name or version from a request path an error repeats.
_MAX_NAME: Final = 100
#: A body up to this size is parsed on the event loop (a hop to a thread costs more).
_PARSE_ON_LOOP_BYTES: Final = 256 * 1024

T = TypeVar("T")

logger = logging.getLogger("mlspec_attest.serve")


def json_response(document: object, status: int = 200) -> Response:
    return Response(json_bytes(document), status_code=status, media_type="application/json")


def error_response(request: Request, status: int, message: str, kind: str) -> Response:
    """An error answer, its kind named for ``mlspec_request_errors_total``."""
    set_error_kind(request, kind)
    return Response(error_body(message), status_code=status, media_type="application/json")


class OipRoutes:
    """The routes of one served model; readiness is that of the shared ``endpoints``.
    The model predicts on ``predict`` (one thread of its own if not given)."""

    def __init__(
        self,
        served: ServedModel,
        endpoints: StatusEndpoints,
        drift: DriftWatch | None = None,
        predict: PredictThreads | None = None,
    ) -> None:
        self.served = served
        self.endpoints = endpoints
        self.drift = drift
        self.predict = predict if predict is not None else PredictThreads()

    def routes(self) -> list[BaseRoute]:
        model = "/v2/models/{name}"
        versioned = "/v2/models/{name}/versions/{version}"
        return [
            Route("/v2", self.server_metadata, methods=["GET"]),
            Route("/v2/health/live", self.live, methods=["GET"]),
            Route("/v2/health/ready", self.ready, methods=["GET"]),
            Route(model, self.model_metadata, methods=["GET"]),
            Route(versioned, self.model_metadata, methods=["GET"]),
            Route(model + "/ready", self.model_ready, methods=["GET"]),
            Route(versioned + "/ready", self.model_ready, methods=["GET"]),
            Route(model + "/infer", self.infer, methods=["POST"]),
            Route(versioned + "/infer", self.infer, methods=["POST"]),
            Route("/v1/models/{name}:predict", self.v1_predict, methods=["POST"]),
            Route("/v1/models/{name}", self.v1_model, methods=["GET"]),
        ]

    # ------------------------------------------------------------ health and metadata
    async def server_metadata(self, request: Request) -> Response:
        return json_response({"name": SERVER_NAME, "version": __version__, "extensions": []})

    async def live(self, request: Request) -> Response:
        return json_response({"live": True})

    async def ready(self, request: Request) -> Response:
        reasons = self.endpoints.not_ready()
        if reasons:
            return json_response({"ready": False, "error": "; ".join(reasons)}, 503)
        return json_response({"ready": True})

    async def model_metadata(self, request: Request) -> Response:
        unknown = self._unknown_model(request)
        if unknown is not None:
            return unknown
        served, binding = self.served, self.served.binding
        width = len(served.features) or -1
        return json_response(
            {
                "name": served.name,
                "versions": [served.version],
                "platform": served.format,
                "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, width]}],
                "outputs": [{"name": tensors.OUTPUT_NAME, "datatype": "FP64", "shape": [-1]}],
                "parameters": {
                    "features": list(served.features),
                    "model_digest": sha256_ref(binding.model_digest),
                    "vsa_digest": sha256_ref(binding.vsa_digest),
                },
            }
        )

    async def model_ready(self, request: Request) -> Response:
        unknown = self._unknown_model(request)
        if unknown is not None:
            return unknown
        reasons = self.endpoints.not_ready()
        document = {"name": self.served.name, "ready": not reasons}
        return json_response(document, 503 if reasons else 200)

    async def v1_model(self, request: Request) -> Response:
        unknown = self._unknown_model(request)
        if unknown is not None:
            return unknown
        return json_response({"name": self.served.name, "ready": not self.endpoints.not_ready()})

    # ------------------------------------------------------------ inference
    async def infer(self, request: Request) -> Response:
        unknown = self._unknown_model(request)
        if unknown is not None:
            return unknown
        decoded = await self._decoded(request, self._decode_v2)
        if isinstance(decoded, Response):
            return decoded
        outcome = await self._predict(request, decoded.rows)
        if isinstance(outcome, Response):
            return outcome
        return json_response(
            {
                "model_name": self.served.name,
                "model_version": self.served.version,
                "id": decoded.id if decoded.id is not None else request_id_of(request),
                "outputs": [outcome[1]],
            }
        )

    async def v1_predict(self, request: Request) -> Response:
        unknown = self._unknown_model(request)
        if unknown is not None:
            return unknown
        rows = await self._decoded(request, self._decode_v1)
        if isinstance(rows, Response):
            return rows
        outcome = await self._predict(request, rows)
        if isinstance(outcome, Response):
            return outcome
        return json_response({"predictions": outcome[0]})

    def _decode_v2(self, body: bytes) -> tensors.InferRequest:
        return tensors.decode_v2(tensors.parse_body(body), self.served.features)

    def _decode_v1(self, body: bytes) -> tensors.Rows:
        return tensors.decode_v1(tensors.parse_body(body), self.served.features)

    async def _decoded(self, request: Request, decode: Callable[[bytes], T]) -> T | Response:
        """The request's body decoded, or its 400 answer. A large body is parsed on the
        predict threads: an 8 MiB body held the event loop (``/ok``, every other
        request) for about 0.3 s."""
        body = await request.body()
        try:
            if len(body) > _PARSE_ON_LOOP_BYTES and self.predict.threads:
                return await self.predict.run(decode, body)
            return decode(body)
        except BadInputError as exc:
            return error_response(request, 400, exc.message, "bad_request")

    async def _predict(
        self, request: Request, rows: tensors.Rows
    ) -> tuple[list[Any], dict[str, Any]] | Response:
        """Predictions and their output tensor, or the 500 answer instead: when the
        request is not being logged (see :func:`is_logged`) or the model fails.

        The predictor runs on the server's predict threads, so a slow model never holds
        up the event loop (health checks, other requests) unless told to run on it."""
        if not is_logged(request):
            logger.error("refused an inference the middleware does not log: %r", request.url.path)
            message = "refused: this request would not be in the inference log"
            return error_response(request, 500, message, "not_logged")
        try:
            result = await self.predict.run(self.served.predictor.predict, rows)
            values = tensors.predictions(result, len(rows))
            tensor = tensors.output_tensor(values)
        except tensors.PredictionError as exc:
            logger.error("model %s: %s", self.served.name, exc)
            return error_response(request, 500, str(exc), "predictor")
        except Exception as exc:  # the model's own failure: answered, never re-raised
            logger.exception("model %s failed to predict", self.served.name)
            detail = str(exc)[:_MAX_MESSAGE]
            message = f"the model failed to predict ({type(exc).__name__}: {detail})"
            return error_response(request, 500, message, "predictor")
        set_output(request, values)
        if self.drift is not None:
            self.drift.observe(rows)
        return values, tensor

    def _unknown_model(self, request: Request) -> Response | None:
        name: str = request.path_params["name"]
        version: str | None = request.path_params.get("version")
        if name != self.served.name:
            message = f"model {name[:_MAX_NAME]!r} is not served here"
            return error_response(request, 404, message, "not_found")
        if version is not None and version != self.served.version:
            message = f"model {name!r} version {version[:_MAX_NAME]!r} is not served here"
            return error_response(request, 404, message, "not_found")
        return None
