"""The builtin driver's own event-loop lag: how late a periodic timer on the driver's loop wakes.

In a closed loop `scheduled_at` is stamped when a stream resumes, so dispatch lag is ~0 even
when the driver is saturated; the loop's own lag is what shows it. A task on the loop sleeps
`interval_s` and records how late it woke (perf_counter, ms) with the run-clock time:

    readings: list[tuple[float, float]] = []
    async with LoopLag(job.clock, readings):
        ...  # the load; `readings` fills with (t, lag_ms)

An idle loop wakes within a millisecond (libuv's timers have 1 ms granularity); a loop kept
busy by parsing, callbacks or too many streams wakes late by the time the work in front of the
timer took. Each driver process keeps its own series; `shares` merges them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType

from harness.samples import Clock

INTERVAL_S = 0.01  # 100 readings a second: fine enough for a 10 ms bound, negligible work


class LoopLag:
    """Async context manager: records `(t, lag_ms)` into `readings` while it is entered."""

    def __init__(self, clock: Clock, readings: list[tuple[float, float]],
                 interval_s: float = INTERVAL_S) -> None:
        self.clock, self.readings, self.interval_s = clock, readings, interval_s
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopLag:
        self.task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _watch(self) -> None:
        step_ns = round(self.interval_s * 1e9)
        while True:
            due = time.perf_counter_ns() + step_ns
            await asyncio.sleep(self.interval_s)
            now = time.perf_counter_ns()
            self.readings.append((self.clock.at(now), max(0, now - due) / 1e6))
