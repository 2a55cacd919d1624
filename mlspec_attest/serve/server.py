"""Serve a gated model with the reference server and its signed inference log.

:func:`serve_model` is what ``mlspec-attest serve`` runs once the gate has opened the
model (:func:`mlspec_attest.serve.gate.open_model`): it opens the inference log
(written by :class:`~mlspec_attest.log.process.LogWriterProcess` or in process by
:class:`~mlspec_attest.log.writer.InferenceLog`, its checkpoints signed by the
server's key), builds the reference server (:func:`~mlspec_attest.serve.app.build_app`)
and serves until SIGTERM or Ctrl-C; the log is closed on the way out, its last
checkpoint signed after the last request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from mlspec_attest.errors import StoreError
from mlspec_attest.formats.signer import Signer
from mlspec_attest.log.checkpoint import default_origin
from mlspec_attest.log.journaled import JournaledLog
from mlspec_attest.log.process import LogWriterProcess
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.serve.app import build_app
from mlspec_attest.serve.config import ServeConfig
from mlspec_attest.serve.connections import ConnectionLimits
from mlspec_attest.serve.drift_watch import DriftWatch
from mlspec_attest.serve.endpoints import ReadinessCheck
from mlspec_attest.serve.metrics import ServeMetrics
from mlspec_attest.serve.model import ServedModel
from mlspec_attest.serve.runner import bind, serve_forever
from mlspec_attest.signing.keys import LocalKeySigner

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


#: The logs a server writes through: in its own process, or by a writer process.
ServingLog = InferenceLog | LogWriterProcess


def open_log(served: ServedModel, log_dir: Path, signer: Signer, config: ServeConfig) -> ServingLog:
    """The inference log of ``served`` in ``log_dir``: its origin names the model and the
    verification summary, so a log is never continued under another summary. Written by
    a process of its own when ``config.log_writer`` says so and the key is a local one
    (any other signer signs in this process)."""
    origin = default_origin(served.name, served.binding.vsa_digest)
    inputs, users = config.log_inputs, config.log_user_ids
    if config.log_writer != "inline" and isinstance(signer, LocalKeySigner):
        kind = JournaledLog if config.log_writer == "journal" else LogWriterProcess
        return kind.open(log_dir, signer, origin=origin, log_inputs=inputs, log_user_ids=users)
    return InferenceLog.open(log_dir, signer, origin=origin, log_inputs=inputs, log_user_ids=users)


def checkpoint_check(log: ServingLog) -> ReadinessCheck:
    """Not ready while the log's last checkpoint could not be signed or written: records
    are still written, but nothing an auditor can verify covers them."""

    def check() -> bool:
        failure = log.checkpoint_failure
        if failure is not None:
            raise StoreError(failure)
        return True

    return ("inference-log-checkpoint", check)


def serve_model(
    served: ServedModel,
    *,
    log_dir: Path,
    log_signer: Signer,
    config: ServeConfig | None = None,
    metrics: ServeMetrics | None = None,
    readiness: Iterable[ReadinessCheck] = (),
    on_started: Callable[[str], None] | None = None,
    log_level: str = "info",
    drift: DriftWatch | None = None,
    limits: ConnectionLimits | None = None,
) -> None:
    """Serve ``served`` on ``config.host:config.port`` until SIGTERM or Ctrl-C, logging
    every inference to the signed log in ``log_dir``; ``limits`` bound its connections
    (:mod:`~mlspec_attest.serve.connections`, the defaults when None)."""
    config = config or ServeConfig(host=DEFAULT_HOST, port=DEFAULT_PORT, log_dir=str(log_dir))
    host = config.host or DEFAULT_HOST
    port = DEFAULT_PORT if config.port is None else config.port
    sock = bind(host, port)  # a port in use is refused before the log is touched
    try:
        log = open_log(served, log_dir, log_signer, config)
    except BaseException:
        sock.close()
        raise
    try:
        checks = [checkpoint_check(log), *readiness]
        app = build_app(served, log, config=config, metrics=metrics, readiness=checks, drift=drift)
        serve_forever(
            app,
            host=host,
            port=port,
            log_level=log_level,
            on_started=on_started,
            sock=sock,
            limits=limits,
        )
    finally:
        log.close()  # closed already after a graceful stop (lifespan); here for the others
