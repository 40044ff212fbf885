"""Backpressure: slots, a bounded FIFO queue and 503s, for asyncio and for threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from targets.server.admission import AsyncAdmission, ThreadAdmission
from targets.server.api import APIError
from targets.server.stats import Stats
from tests.waiting import wait_for


def value(stats: Stats, name: str) -> float:
    for metric in stats.registry.collect():
        for sample in metric.samples:
            if sample.name == name:
                return float(sample.value)
    raise KeyError(name)


def test_async_admits_queues_in_order_then_refuses() -> None:
    async def scenario() -> None:
        stats = Stats("t")
        adm = AsyncAdmission(max_concurrency=1, max_queue=2, stats=stats)
        first = await adm.acquire()
        order: list[int] = []

        async def wait(i: int) -> None:
            slot = await adm.acquire()
            order.append(i)
            slot.release()

        waiters = [asyncio.create_task(wait(i)) for i in (1, 2)]
        await asyncio.sleep(0)  # let both reach the queue
        assert value(stats, "patternbench_queue_depth") == 2
        with pytest.raises(APIError) as refused:
            await adm.acquire()
        assert refused.value.status == 503 and refused.value.headers["Retry-After"] == "1"
        assert value(stats, "patternbench_rejections_total") == 1
        first.release()
        first.release()  # idempotent: must not free a second slot
        await asyncio.gather(*waiters)
        assert order == [1, 2]
        assert value(stats, "patternbench_in_flight") == 0
        assert value(stats, "patternbench_queue_depth") == 0
        assert adm.running == 0

    asyncio.run(scenario())


def test_async_cancelled_waiter_leaves_the_queue() -> None:
    async def scenario() -> None:
        stats = Stats("t")
        adm = AsyncAdmission(max_concurrency=1, max_queue=1, stats=stats)
        held = await adm.acquire()
        waiter = asyncio.create_task(adm.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert value(stats, "patternbench_queue_depth") == 0
        held.release()
        again = await adm.acquire()  # the slot was not lost to the cancelled waiter
        again.release()
        assert adm.running == 0

    asyncio.run(scenario())


def test_thread_admission_blocks_then_refuses() -> None:
    stats = Stats("t")
    adm = ThreadAdmission(max_concurrency=1, max_queue=1, stats=stats)
    held = adm.acquire()
    got = threading.Event()

    def waiter() -> None:
        adm.acquire().release()
        got.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    wait_for(lambda: value(stats, "patternbench_queue_depth") == 1, 10, 0.01,
             "the waiter to queue")
    with pytest.raises(APIError) as refused:
        adm.acquire()
    assert refused.value.status == 503
    assert not got.is_set()
    held.release()
    thread.join(timeout=10)
    assert got.is_set() and adm.running == 0
    assert value(stats, "patternbench_in_flight") == 0


@pytest.mark.parametrize("kind", [AsyncAdmission, ThreadAdmission])
def test_bad_limits_are_rejected(kind: type[AsyncAdmission] | type[ThreadAdmission]) -> None:
    with pytest.raises(ValueError):
        kind(max_concurrency=0, max_queue=0, stats=Stats("t"))
    with pytest.raises(ValueError):
        kind(max_concurrency=1, max_queue=-1, stats=Stats("t"))
