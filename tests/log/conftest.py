"""Shared pieces of the inference-log tests: a key, a request, a written log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.log.record import InferenceRecord
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key, write_key_pair
from tests.cli.conftest import cli  # noqa: F401  (the in-process main() fixture)

ORIGIN = "mlspec-attest/iris/4c1e2f3a4b5c6d7e"
MODEL_DIGEST = "ab" * 32
VSA_DIGEST = "4c1e2f3a4b5c6d7e" + "cd" * 24
T0 = datetime(2025, 12, 7, 0, 48, 12, 123456, tzinfo=UTC)


def request(i: int, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments of one ``append`` (request number ``i``)."""
    fields: dict[str, Any] = {
        "request_id": f"req-{i:04d}",
        "client": "10.0.0.7",
        "user": f"user-{i % 3}",
        "method": "POST",
        "path": "/v2/models/iris/infer",
        "protocol": "HTTP/1.1",
        "status": 200,
        "bytes_sent": 57 + i,
        "referer": None,
        "user_agent": "python-httpx/0.27.0",
        "model": "iris",
        "model_version": "3",
        "model_digest": MODEL_DIGEST,
        "vsa_digest": VSA_DIGEST,
        "body": b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[5.1,3.5,1.4,0.2]}]}',
        "output": {"outputs": [{"name": "predict", "data": [i % 3, 0.25 * (i % 4)]}]},
        "latency_us": 800 + i,
        "time": T0 + timedelta(milliseconds=i),
    }
    fields.update(overrides)
    return fields


@pytest.fixture(scope="session")
def signer() -> LocalKeySigner:
    return generate_key(KeyType.ED25519)


@pytest.fixture
def key_files(tmp_path: Path, signer: LocalKeySigner) -> tuple[Path, Path]:
    """``(private, public)`` PEM files of :func:`signer`."""
    return write_key_pair(signer, tmp_path / "logkey")


WriteLog = Callable[..., list[InferenceRecord]]


@pytest.fixture
def write_log(signer: LocalKeySigner) -> WriteLog:
    """``write_log(directory, n, checkpoint_every=..., close=True)``: a log of ``n``
    requests, closed (final checkpoint) unless ``close=False``."""

    def write(
        directory: Path, n: int, *, close: bool = True, **options: Any
    ) -> list[InferenceRecord]:
        options.setdefault("checkpoint_interval_s", 0)
        log = InferenceLog.open(directory, signer, origin=ORIGIN, **options)
        records = [log.append(**request(i)) for i in range(n)]
        if close:
            log.close()
        else:
            log._release()  # leave it as a crash would: no final checkpoint
        return records

    return write
