"""The reference server on 127.0.0.1 with a journal whose writer falls behind: the answers
past the backlog's bound wait for the writer (load becomes latency, the journal stays
bounded), then every request is answered and has its signed record."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx

from mlspec_attest.log.audit import verify_log
from mlspec_attest.log.checkpoint import default_origin
from mlspec_attest.log.journaled import JournaledLog
from mlspec_attest.serve.config import ServeConfig
from mlspec_attest.signing.keys import KeyType, generate_key

from .server_fixtures import MODEL_NAME, VSA_DIGEST, ServerFactory, diabetes, make_server

__all__ = ["make_server"]  # a fixture, used by name

ORIGIN = default_origin(MODEL_NAME, VSA_DIGEST)


class FourBehind(JournaledLog):
    max_behind = (4, 1 << 30)


def test_answers_past_the_bound_wait_for_a_frozen_writer(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    key = generate_key(KeyType.ED25519)
    log = FourBehind.open(tmp_path / "log", key, origin=ORIGIN, checkpoint_interval_s=0)
    server = make_server(log=log, config=ServeConfig(log_dir=str(tmp_path / "log")))
    rows = diabetes().rows(1)
    body = {"inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP64", "data": rows}]}

    async def clients() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as client:
            first = [await client.post(server.infer_url(), json=body) for _ in range(4)]
            later = [
                asyncio.create_task(client.post(server.infer_url(), json=body)) for _ in range(2)
            ]
            done, _ = await asyncio.wait(later, timeout=0.5)
            assert done == set()  # past the bound: held while the writer is frozen
            assert log.journaled == 6  # journaled all the same
            assert log.status()["backlog"] == 6 and log.status()["holding"] is True
            metrics = (await client.get(server.url + "/metrics")).text
            assert "\nmlspec_log_backlog 6.0\n" in metrics
            os.kill(log.pid, signal.SIGCONT)
            return [a.status_code for a in first] + [
                a.status_code for a in await asyncio.gather(*later)
            ]

    os.kill(log.pid, signal.SIGSTOP)
    try:
        assert asyncio.run(clients()) == [200] * 6
    finally:
        os.kill(log.pid, signal.SIGCONT)
    server.running.stop()
    log.close()
    audit = verify_log(tmp_path / "log", key.public_key, origin=ORIGIN)
    assert (audit.ok, audit.records, audit.signed) == (True, 6, 6)
