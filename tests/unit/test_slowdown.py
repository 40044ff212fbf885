"""The injected regression (`targets.server.slowdown`): each token's production time stretched
by the factor, read from the environment, refused in one line when malformed. Time is a fake
clock: the stream's waits are what is checked, not how long anything took."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from targets.server import slowdown
from targets.server.slowdown import ENV, injected, slowed, slowed_sync


class FakeClock:
    """perf_counter and sleep on a clock that moves only when told: a token "takes" `steps[i]`
    seconds to produce; the stream's sleeps are recorded and move the clock too."""

    def __init__(self, steps: list[float]) -> None:
        self.now, self.steps = 0.0, steps
        self.waits: list[float] = []

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 9))
        self.now += seconds

    def produce(self, i: int) -> int:
        self.now += self.steps[i]
        return i


def test_a_thread_stream_waits_factor_minus_one_times_each_tokens_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock([0.040, 0.010, 0.020])
    monkeypatch.setattr(slowdown, "time", clock)

    def tokens(_job: Any) -> Iterator[int]:
        for i in range(3):
            yield clock.produce(i)

    out = list(slowed_sync(tokens, 1.5)(None))  # type: ignore[arg-type]  # no job needed
    assert out == [0, 1, 2] and clock.waits == [0.020, 0.005, 0.010]


def test_an_async_stream_waits_the_same_and_closes_the_inner_stream(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock([0.040, 0.010])
    closed: list[bool] = []

    class Time:
        perf_counter = clock.perf_counter

    async def sleep(seconds: float) -> None:
        clock.sleep(seconds)

    monkeypatch.setattr(slowdown, "time", Time)
    monkeypatch.setattr(asyncio, "sleep", sleep)

    async def tokens(_job: Any) -> AsyncIterator[int]:
        try:
            for i in range(2):
                yield clock.produce(i)
        finally:
            closed.append(True)

    async def first() -> int:
        stream = slowed(tokens, 2.0)(None)  # type: ignore[arg-type]  # no job needed
        token = await anext(aiter(stream))
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator
        return token

    assert asyncio.run(first()) == 0 and clock.waits == [0.040] and closed == [True]


def test_the_factor_comes_from_the_environment_and_a_bad_one_is_refused() -> None:
    assert injected({}) == 1.0
    assert injected({ENV: "1.2"}) == 1.2
    for bad in ("0.5", "fast", "nan"):
        with pytest.raises(ValueError, match=f"{ENV} must be a number ≥ 1"):
            injected({ENV: bad})

    def tokens(_job: Any) -> Iterator[int]:
        yield 1

    assert slowed_sync(tokens, 1.0) is tokens  # untouched at 1
