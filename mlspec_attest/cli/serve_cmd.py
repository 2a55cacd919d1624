"""``mlspec-attest serve``: the reference server for a model the gate opened."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlspec_attest.cli.gate_cmd import gate_inputs, gate_options
from mlspec_attest.cli.options import (
    PATH,
    directory_option,
    file_option,
    passphrase_env_option,
    passphrase_from_env,
)
from mlspec_attest.errors import require
from mlspec_attest.serve.config import LOG_WRITERS, MAX_PREDICT_THREADS, ServeConfig
from mlspec_attest.serve.connections import (
    DEFAULT_REQUEST_TIMEOUT,
    MAX_DEFAULT_CONNECTIONS,
    ConnectionLimits,
)
from mlspec_attest.serve.gate import open_model
from mlspec_attest.serve.model import ServedModel
from mlspec_attest.serve.monitor import training_columns
from mlspec_attest.serve.vsa_check import (
    CheckedSummary,
    check_summary,
)
from mlspec_attest.signing.keys import load_private_key

if TYPE_CHECKING:
    from mlspec_attest.serve.drift_watch import DriftWatch

_SERVER_PACKAGES = ("starlette", "uvicorn", "prometheus_client")


@click.command()
@gate_options()
@click.option("--model", type=PATH, required=True, help="The model directory (or file).")
@click.option("--entry", metavar="NAME", help="The model file the loader opens.")
@click.option("--name", help="The model's name in URLs [default: its model card's].")
@directory_option("--log-dir", required=True, help="The inference log's directory.")
@file_option("--log-key", required=True, help="Private key that signs the log's checkpoints.")
@passphrase_env_option("Env var holding the --log-key passphrase.")
@click.option("--log-inputs", is_flag=True, help="Keep request bodies in the log, not digests.")
@click.option("--log-user-ids", is_flag=True, help="Keep user ids in the log, not digests.")
@click.option(
    "--log-writer",
    type=click.Choice(LOG_WRITERS),
    default="journal",
    show_default=True,
    help="Who writes the log. journal: the server writes each request's checked values to "
    "a write-ahead journal in the log directory (a copy into its mapped segment) and "
    "answers; a writer process "
    "of its own makes and signs the records from it. process: the same writer, but each "
    "request waits for its record. inline: the server writes the records itself (more CPU "
    "per request). No request is answered before its values (journal) or its record "
    "(process, inline) are written.",
)
@click.option(
    "--predict-threads",
    type=click.IntRange(0, MAX_PREDICT_THREADS),
    default=1,
    show_default=True,
    help="Threads that run the model's predict. 1 suits a model that holds the GIL "
    "(scikit-learn, most Python); more only for one that releases it for long (ONNX "
    "Runtime, large NumPy work) on cores to spare; 0 runs it on the event loop (fastest "
    "for a model that answers in well under a millisecond, but nothing else is answered "
    "while it runs).",
)
@file_option(
    "--train-data",
    help="The training split the summary names: /metrics then shows mlspec_drift_psi per "
    "feature over the recent requests (checked against the summary's train-data digest).",
)
@click.option(
    "--drift-window",
    type=click.IntRange(min=100),
    default=1000,
    show_default=True,
    help="--train-data: how many recent rows the drift signal covers.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="TCP port."
)
@click.option(
    "--max-connections",
    type=click.IntRange(1, 1_000_000),
    help="Most client connections open at once: one more is answered 503 and closed (so "
    "are requests while more than this many are in progress) [default: half the "
    f"open-file limit (ulimit -n), at most {MAX_DEFAULT_CONNECTIONS}].",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(0, 3600, min_open=True),
    default=DEFAULT_REQUEST_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="Close a connection that has not sent a whole request (head and body) this long "
    "after it opened or after its previous response.",
)
def serve(
    vsa: Path,
    model: Path,
    entry: str | None,
    name: str | None,
    log_dir: Path,
    log_key: Path,
    passphrase_env: str | None,
    train_data: Path | None,
    drift_window: int,
    max_connections: int | None,
    request_timeout: float,
    **options: Any,
) -> None:
    """Serve a model over HTTP once the gate has checked it; log every inference.

    The gate runs first, as `mlspec-attest gate` does (exit 1 denied, 3 malformed
    summary, 4 no usable trust), and the server loads the bytes it hashed. It
    answers the Open Inference Protocol v2 (/v2/models/NAME/infer) and v1
    (/v1/models/NAME:predict), /ok, /varz and /metrics; every inference is
    written to the signed log in --log-dir before it is answered (503 if it
    cannot be). Stops gracefully on SIGTERM or Ctrl-C (exit 0), signing a last
    checkpoint.

    \b
      mlspec-attest serve --vsa model.vsa.json --verifier-key verifier.pub \\
          --model models/diabetes --policy-digest sha256:... --max-age 7d \\
          --log-dir /var/log/mlspec --log-key server.key --port 8080
    """
    for package in _SERVER_PACKAGES:  # the serve extra: one clear error if it is missing
        require(package, "serving a model")
    from mlspec_attest.serve.server import serve_model  # imports starlette and uvicorn

    config = _config(log_dir, options)  # takes the server's options out of `options`
    limits = ConnectionLimits(max_connections, request_timeout)
    trust, expect = gate_inputs(options, ("--log-key", log_key), ("--train-data", train_data))
    signer = load_private_key(log_key, passphrase=passphrase_from_env(passphrase_env))
    checked = check_summary(vsa, trust, expect)
    served = open_model(model, checked, entry=entry, name=name)
    drift = _drift_watch(served, checked, train_data, drift_window)
    click.echo(_passed(served, log_dir), err=True)
    serve_model(
        served,
        log_dir=log_dir,
        log_signer=signer,
        config=config,
        on_started=lambda url: click.echo(f"serving {served.name} on {url}", err=True),
        drift=drift,
        limits=limits,
    )
    click.echo("stopped; the inference log is closed", err=True)


def _config(log_dir: Path, options: dict[str, Any]) -> ServeConfig:
    """The server's configuration, its options taken out of ``options``."""
    fields = ("host", "port", "log_inputs", "log_user_ids", "log_writer", "predict_threads")
    return ServeConfig(log_dir=str(log_dir), **{field: options.pop(field) for field in fields})


def _drift_watch(
    served: ServedModel, checked: CheckedSummary, train_data: Path | None, window: int
) -> DriftWatch | None:
    """The live drift signal, against the training split the summary names (if given)."""
    if train_data is None:
        return None
    from mlspec_attest.serve.drift_watch import DriftWatch  # imports prometheus_client

    columns = training_columns(train_data, served.features, checked.summary)
    return DriftWatch(served.features, columns, window=window)


def _passed(served: ServedModel, log_dir: Path) -> str:
    binding = served.binding
    return (
        f"gate PASSED: {served.name} {served.version} ({served.format})\n"
        f"  model digest   sha256:{binding.model_digest}\n"
        f"  vsa digest     sha256:{binding.vsa_digest}\n"
        f"  policy digest  sha256:{binding.policy_digest}\n"
        f"  inference log  {log_dir}"
    )
