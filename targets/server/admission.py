"""Backpressure: at most `max_concurrency` requests run and `max_queue` wait; the rest get a 503.

A request first takes a slot. When every slot is taken it waits in a FIFO queue; when the queue is
full too it is refused at once with `503 Service Unavailable` and `Retry-After`, and counted in
`patternbench_rejections`. A bounded queue keeps latency bounded under overload: the client learns
right away that it should come back, instead of waiting behind an unbounded backlog.

`AsyncAdmission` is for asyncio servers (one event loop), `ThreadAdmission` for threaded ones
(Flask on gunicorn). Both keep `stats.in_flight` (slots taken) and `stats.queued` (waiting) exact.

    admission = AsyncAdmission(max_concurrency=4, max_queue=64, stats=stats)
    slot = await admission.acquire()      # raises APIError(503) when full
    try: ...
    finally: slot.release()               # idempotent
"""

from __future__ import annotations

import asyncio
import collections
import threading

from targets.server.api import APIError
from targets.server.stats import Stats

RETRY_AFTER_S = 1


def overloaded(max_concurrency: int, max_queue: int) -> APIError:
    """The 503 a saturated server answers, OpenAI-shaped, with `Retry-After` in seconds."""
    return APIError(503, f"server is at capacity ({max_concurrency} running, {max_queue} queued);"
                    " retry later", type="server_overloaded", code="overloaded",
                    headers={"Retry-After": str(RETRY_AFTER_S)})


def check_limits(max_concurrency: int, max_queue: int) -> None:
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
    if max_queue < 0:
        raise ValueError(f"max_queue must be >= 0, got {max_queue}")


class _Admission:
    """The limits and counters both kinds share; subclasses decide how a request waits."""

    def __init__(self, max_concurrency: int, max_queue: int, stats: Stats) -> None:
        check_limits(max_concurrency, max_queue)
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.stats = stats
        self.running = 0

    def _refuse(self) -> APIError:
        """Count a rejection; the 503 to raise."""
        self.stats.rejections.inc()
        self.stats.requests.labels("rejected").inc()
        return overloaded(self.max_concurrency, self.max_queue)

    def _take(self) -> None:
        self.running += 1
        self.stats.in_flight.inc()


class Slot:
    """A taken slot. `release()` frees it once; later calls do nothing."""

    def __init__(self, free: collections.abc.Callable[[], None]) -> None:
        self._free: collections.abc.Callable[[], None] | None = free

    def release(self) -> None:
        free, self._free = self._free, None
        if free is not None:
            free()


class AsyncAdmission(_Admission):
    """Slots for one asyncio event loop. Not thread-safe: call it from the loop only."""

    def __init__(self, max_concurrency: int, max_queue: int, stats: Stats) -> None:
        super().__init__(max_concurrency, max_queue, stats)
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> Slot:
        """Take a slot, waiting in FIFO order if needed; `APIError(503)` if the queue is full."""
        if self.running < self.max_concurrency and not self._waiters:
            self._take()
            return Slot(self._release)
        if len(self._waiters) >= self.max_queue:
            raise self._refuse()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.stats.queued.inc()
        try:
            await waiter  # _release hands its slot over by resolving this future
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot arrived just as the waiter gave up: pass it on
            else:
                self._waiters.remove(waiter)
            raise
        finally:
            self.stats.queued.dec()
        return Slot(self._release)

    def refuse_waiting(self, exc: APIError) -> int:
        """Refuse every queued request with `exc` (the drain's end); how many there were."""
        refused = 0
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(exc)
                self.stats.requests.labels("rejected").inc()
                refused += 1
        return refused

    def _release(self) -> None:
        self.running -= 1
        self.stats.in_flight.dec()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)
                return


class ThreadAdmission(_Admission):
    """Slots shared by the threads of one process (a gunicorn worker)."""

    def __init__(self, max_concurrency: int, max_queue: int, stats: Stats) -> None:
        super().__init__(max_concurrency, max_queue, stats)
        self.waiting = 0
        self._next_ticket = 0  # FIFO: tickets are served in the order they were drawn
        self._serving = 0
        self._cond = threading.Condition()
        self._refusal: APIError | None = None

    def acquire(self) -> Slot:
        """Take a slot, blocking in FIFO order if needed; `APIError(503)` if the queue is full."""
        with self._cond:
            if self.running < self.max_concurrency and self.waiting == 0:
                self._take()
                return Slot(self._release)
            if self.waiting >= self.max_queue:
                raise self._refuse()
            ticket = self._next_ticket
            self._next_ticket += 1
            self.waiting += 1
            self.stats.queued.inc()
            try:
                while not (ticket == self._serving and self.running < self.max_concurrency):
                    if self._refusal is not None:
                        self.stats.requests.labels("rejected").inc()
                        raise self._refusal
                    self._cond.wait()
            finally:
                self.waiting -= 1
                self._serving += 1
                self.stats.queued.dec()
            self._take()
            self._cond.notify_all()  # the next ticket may fit too
            return Slot(self._release)

    def refuse_waiting(self, exc: APIError) -> None:
        """Refuse every queued request with `exc`, and any that queues later (the drain's end)."""
        with self._cond:
            self._refusal = exc
            self._cond.notify_all()

    def _release(self) -> None:
        with self._cond:
            self.running -= 1
            self.stats.in_flight.dec()
            self._cond.notify_all()
