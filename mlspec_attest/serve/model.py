"""What a server is handed after the gate: a loaded model and the facts that bind it.

The gate (:mod:`mlspec_attest.serve.gate`) produces a :class:`ServedModel` only after
the verification summary checked out and the bytes handed to the loader hashed to its
subject; the server, the middleware and the inference log read these facts and never
recompute them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from msgspec import Struct, field


class Predictor(Protocol):
    """A loaded model: rows of features in, one prediction per row out."""

    def predict(self, rows: Sequence[Sequence[float]]) -> list[Any]: ...


class Binding(Struct, frozen=True):
    """The verified pipeline a model is served under (all from the signed summary)."""

    model_digest: str
    """The model's root sha256 (hex): the digest of the bytes that were loaded."""
    vsa_digest: str
    """sha256 (hex) of the signed verification summary bundle the gate accepted."""
    policy_digest: str
    """sha256 (hex) of the signed policy the pipeline was verified against."""
    run_id: str
    """The pipeline run the summary covers."""
    time_verified: str
    """When the verifier ran (RFC 3339), from the summary."""
    verifier_id: str
    """The verifier's URI, from the summary."""
    resource_uri: str
    """Where the summary says the model is served from."""


class ServedModel(Struct, frozen=True):
    """A model the gate opened: its name and version, the binding, the loaded predictor."""

    name: str
    version: str
    binding: Binding
    predictor: Predictor
    format: str
    """The loader that opened it: "pickle", "joblib", "safetensors" or "onnx"."""
    features: tuple[str, ...] = ()
    """Feature names in input order, when the package says (model card)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else the package card says that /varz may show (no secrets)."""
