"""Where the reference server runs the model's predict (``PredictThreads``): never on the
event loop unless told to, never more at once than configured, a cancelled request's
queued prediction dropped, the count checked and shown in /varz, over real HTTP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from mlspec_attest.cli.main import cli
from mlspec_attest.errors import UsageError
from mlspec_attest.serve.config import MAX_PREDICT_THREADS, ServeConfig, check_thread_count
from mlspec_attest.serve.predict_threads import PredictThreads

from .server_fixtures import ServerFactory, diabetes, make_server, served_model

__all__ = ["make_server"]  # a fixture, used by name

WAIT_S = 10.0  # the longest a test waits for a thread; never reached when it passes


class CountingPredictor:
    """Records which thread each prediction ran on and the most that ran at once;
    each waits until ``release`` is set (so overlapping calls do overlap)."""

    def __init__(self, hold: bool = False) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.threads: list[str] = []
        self.workers: set[threading.Thread] = set()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def predict(self, rows: Sequence[Sequence[float]]) -> list[Any]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.append(threading.current_thread().name)
            self.workers.add(threading.current_thread())
        try:
            self.release.wait(WAIT_S)
            return [0.0 for _ in rows]
        finally:
            with self.lock:
                self.running -= 1


def test_one_thread_of_its_own_by_default() -> None:
    predictor = CountingPredictor()
    threads = PredictThreads()

    async def main() -> None:
        await asyncio.gather(*(threads.run(predictor.predict, [[1.0]]) for _ in range(16)))

    try:
        asyncio.run(main())
    finally:
        threads.close()
    assert predictor.most == 1
    assert len(predictor.threads) == 16
    assert {name.split("_")[0] for name in predictor.threads} == {"mlspec-predict"}


@pytest.mark.parametrize("count", [2, 3])
def test_at_most_the_configured_number_at_once(count: int) -> None:
    predictor = CountingPredictor(hold=True)
    threads = PredictThreads(count)

    async def main() -> None:
        calls = [asyncio.ensure_future(threads.run(predictor.predict, [[1.0]])) for _ in range(8)]
        while predictor.running < count:  # the first `count` are in predict, waiting
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # room for a wrong extra one to start
        assert predictor.running == count
        predictor.release.set()
        await asyncio.gather(*calls)

    try:
        asyncio.run(asyncio.wait_for(main(), WAIT_S))
    finally:
        threads.close()
    assert predictor.most == count
    assert len(predictor.threads) == 8


def test_zero_threads_predicts_on_the_event_loop() -> None:
    predictor = CountingPredictor()
    threads = PredictThreads(0)

    async def main() -> str:
        await threads.run(predictor.predict, [[1.0]])
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert predictor.threads == [loop_thread]


def test_a_cancelled_request_s_queued_prediction_never_runs() -> None:
    predictor = CountingPredictor(hold=True)
    threads = PredictThreads(1)

    async def main() -> None:
        first = asyncio.ensure_future(threads.run(predictor.predict, [[1.0]]))
        while predictor.running < 1:
            await asyncio.sleep(0.005)
        queued = asyncio.ensure_future(threads.run(predictor.predict, [[2.0]]))
        await asyncio.sleep(0.01)
        queued.cancel()
        # the loop hands the cancel on to the thread pool's queue in its next turns:
        # wait for that, then let the worker go free (else it may take the item first)
        await asyncio.wait([queued])
        predictor.release.set()
        assert await first == [0.0]
        with pytest.raises(asyncio.CancelledError):
            await queued

    try:
        asyncio.run(asyncio.wait_for(main(), WAIT_S))
    finally:
        threads.close()
    assert len(predictor.threads) == 1  # the cancelled one was dropped from the queue


def test_closed_threads_take_no_new_prediction() -> None:
    threads = PredictThreads(1)
    threads.close()
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(threads.run(CountingPredictor().predict, [[1.0]]))


def test_close_ends_the_threads_after_the_running_one() -> None:
    predictor = CountingPredictor()
    threads = PredictThreads(2)
    asyncio.run(threads.run(predictor.predict, [[1.0]]))
    workers = predictor.workers  # this instance's threads only, not another server's
    assert workers
    assert all(w.name.startswith("mlspec-predict") and w.is_alive() for w in workers)
    threads.close()
    for worker in workers:
        worker.join(WAIT_S)
    assert not [worker for worker in workers if worker.is_alive()]


@pytest.mark.parametrize("bad", [-1, MAX_PREDICT_THREADS + 1, True, 1.5, "2"])
def test_a_count_that_is_not_one_is_refused(bad: Any) -> None:
    with pytest.raises(UsageError, match="predict_threads"):
        check_thread_count(bad)
    with pytest.raises(UsageError, match="predict_threads"):
        ServeConfig(predict_threads=bad)
    with pytest.raises(UsageError, match="predict_threads"):
        PredictThreads(bad)


def test_the_server_predicts_off_the_loop_and_shows_the_count(make_server: ServerFactory) -> None:
    predictor = CountingPredictor()
    server = make_server(served_model(predictor), config=ServeConfig(predict_threads=2))
    rows = diabetes().rows(1)
    body = {"inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP64", "data": rows}]}

    def post(_: int) -> httpx.Response:
        return httpx.post(server.infer_url(), json=body, timeout=WAIT_S)

    with ThreadPoolExecutor(12) as clients:
        answers = list(clients.map(post, range(24)))
    assert [answer.status_code for answer in answers] == [200] * 24
    assert len(predictor.threads) == 24
    assert all(name.startswith("mlspec-predict") for name in predictor.threads)
    assert 1 <= predictor.most <= 2
    varz = httpx.get(f"{server.url}/varz").json()
    assert varz["config"]["predict_threads"] == 2


def test_serve_help_and_a_bad_count() -> None:
    runner = CliRunner()
    shown = runner.invoke(cli, ["serve", "--help"])
    assert shown.exit_code == 0
    assert "--predict-threads" in shown.output
    refused = runner.invoke(cli, ["serve", "--predict-threads", "65", "--vsa", "x"])
    assert refused.exit_code == 2
    assert "--predict-threads" in refused.output
