"""The writer's backlog is bounded: once the server has journaled more than the bound
beyond what its writer process acknowledged, the answer of the request that passed it
waits for the writer (load becomes latency, never an unbounded journal), and a writer
that is gone or failing never keeps an answer held. The writer here is the real process,
frozen with SIGSTOP where the test needs it behind."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.errors import StoreError
from mlspec_attest.log.audit import verify_log
from mlspec_attest.log.backlog import Backlog
from mlspec_attest.log.journaled import JournaledLog
from mlspec_attest.signing.keys import LocalKeySigner
from tests.log.conftest import ORIGIN, request


def open_bounded(directory: Path, signer: LocalKeySigner, bound: tuple[int, int]) -> JournaledLog:
    class Bounded(JournaledLog):
        max_behind = bound

    return Bounded.open(directory, signer, origin=ORIGIN, checkpoint_interval_s=0)


def freeze(log: JournaledLog) -> None:
    os.kill(log.pid, signal.SIGSTOP)


def thaw(log: JournaledLog) -> None:
    os.kill(log.pid, signal.SIGCONT)


# ---------------------------------------------------------------------- the account itself
def test_an_entry_past_either_bound_is_over_and_an_acknowledgement_moves_both() -> None:
    backlog = Backlog(records=10, max_entries=4, max_bytes=1000)
    assert not backlog.over(13, 900) and backlog.over(14, 900) and backlog.over(11, 1001)
    backlog.told(30, 5000)
    backlog.acknowledged(30)
    assert (backlog.records, backlog.committed_bytes) == (30, 5000)
    assert not backlog.over(33, 6000) and backlog.over(34, 0) and backlog.over(31, 6001)


def test_committed_bytes_come_only_from_marks_the_writer_has_passed() -> None:
    backlog = Backlog(records=0, max_entries=100, max_bytes=1000)
    backlog.told(5, 500)
    backlog.told(9, 900)
    backlog.acknowledged(7)  # between the marks: only the first is known committed
    assert backlog.committed_bytes == 500
    backlog.acknowledged(3)  # an older acknowledgement never moves the account back
    assert (backlog.records, backlog.committed_bytes) == (7, 500)


def test_a_held_request_is_released_within_half_of_both_bounds() -> None:
    async def run() -> None:
        backlog = Backlog(records=0, max_entries=8, max_bytes=800)
        held = asyncio.get_running_loop().create_future()
        backlog.hold(held, 9, 900)  # wait for entries >= 5 and bytes >= 500 committed
        assert backlog.told(9, 900)  # holding: the writer is asked to acknowledge
        assert backlog.acknowledged(4) == [] and backlog.holding
        backlog.told(12, 1200)
        assert backlog.acknowledged(9) == [held] and not backlog.holding

    asyncio.run(run())


def test_a_backlog_past_a_quarter_of_a_bound_asks_for_acknowledgements() -> None:
    backlog = Backlog(records=0, max_entries=100, max_bytes=10_000)
    assert not backlog.told(25, 2500)
    assert backlog.told(26, 2500) and backlog.told(27, 2501)
    with pytest.raises(ValueError):
        Backlog(0, max_entries=1)


# ---------------------------------------------------------------------- with the real writer
async def append_all(log: JournaledLog, count: int, first: int = 0) -> list[Any]:
    return [log.append(**request(first + i, time=None)) for i in range(count)]


def test_the_request_past_the_bound_waits_for_the_writer_and_nothing_is_lost(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    async def serve(log: JournaledLog) -> None:
        assert await append_all(log, 8) == [None] * 8  # within the bound: never held
        (held,) = await append_all(log, 1, first=8)
        assert isinstance(held, asyncio.Future)
        await asyncio.sleep(0.3)
        assert not held.done()  # the writer is frozen: the answer waits
        assert log.journaled == 9 and log.size == 0
        thaw(log)
        await asyncio.wait_for(held, 30)
        assert log.size >= 5  # released within half the bound

    with open_bounded(tmp_path / "log", signer, (8, 1 << 30)) as log:
        freeze(log)
        asyncio.run(serve(log))
    audit = verify_log(tmp_path / "log", signer.public_key, origin=ORIGIN)
    assert (audit.ok, audit.records, audit.signed) == (True, 9, 9)


def test_the_byte_bound_holds_large_entries_too(tmp_path: Path, signer: LocalKeySigner) -> None:
    async def serve(log: JournaledLog) -> list[Any]:
        big = {"outputs": [{"name": "text", "data": ["x" * 3000]}]}
        return [log.append(**request(i, time=None, output=big)) for i in range(3)]

    with open_bounded(tmp_path / "log", signer, (1 << 20, 5000)) as log:
        freeze(log)
        results = asyncio.run(_and_thaw(log, serve(log)))
    assert results[:1] == [None] and isinstance(results[1], asyncio.Future)


async def _and_thaw(log: JournaledLog, work: Any) -> Any:
    results = await work
    thaw(log)
    for held in results:
        if held is not None:
            await asyncio.wait_for(held, 30)
    return results


def test_a_held_request_is_answered_when_the_writer_dies_and_later_ones_are_refused(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    async def serve(log: JournaledLog) -> None:
        freeze(log)  # from the start: no acknowledgement moves the bound
        await append_all(log, 4)
        (held,) = await append_all(log, 1, first=4)
        assert isinstance(held, asyncio.Future) and not held.done()
        os.kill(log.pid, signal.SIGKILL)
        await asyncio.wait_for(held, 30)  # its values are journaled: the answer may go
        assert held.exception() is None
        with pytest.raises(StoreError):
            log.append(**request(5, time=None))

    log = open_bounded(tmp_path / "log", signer, (4, 1 << 30))
    asyncio.run(serve(log))
    log.close()
    with open_bounded(tmp_path / "log", signer, (4, 1 << 30)) as again:
        assert again.size == 5  # every answered request has its record


def test_outside_an_event_loop_the_append_past_the_bound_waits_itself(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    with open_bounded(tmp_path / "log", signer, (4, 1 << 30)) as log:
        freeze(log)  # from the start: no acknowledgement moves the bound
        for i in range(4):
            log.append(**request(i))
        thawed = threading.Event()

        def later() -> None:
            thawed.set()
            thaw(log)

        timer = threading.Timer(0.3, later)
        timer.start()
        log.append(**request(4))  # past the bound: returns only once the writer caught up
        assert thawed.is_set() and log.size == 5
        timer.join()
