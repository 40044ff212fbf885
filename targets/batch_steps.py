"""A static batch as a sequence of steps, for a framework whose batch handler is a generator.

Ray Serve's `@serve.batch` and LitServe's batched streaming `predict` both hand a pattern a list
of requests and expect, per yield, one output for each of them. `batch_steps` (a generator) and
`async_batch_steps` (an async generator) run the batch with `targets.batching.static` — the same
padded forward pass per decode step as `fastapi_dynamic_batching`, so greedy output is
`HFEngine.generate`'s token for token — on a thread of its own, and yield lists with one list of
new token ids per request: whatever the thread produced since the last yield (one decode step,
or several if the consumer was slower). A request's list ends with `END` once its row is done;
after that its lists stay empty. If the consumer stops early, every row is cancelled, so the
thread ends within a step.

    for step in batch_steps(engine, jobs):      # [[tok], [tok, END], ...] per step
        ...
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Generator, Sequence

from targets.batching.static import BatchJob, generate_batch
from targets.model.engine import ModelEngine

END = -1
"""Marks, in a step's list for one request, that its row is done (no token id is negative)."""

Event = tuple[int, int] | BaseException | None
"""(row, token id or END), the error that ended the batch, or None once the thread is done."""


def _run(engine: ModelEngine, jobs: Sequence[BatchJob], put: Callable[[Event], object]) -> None:
    def emit(i: int, token: int) -> None:
        put((i, token))

    def done(i: int) -> None:
        put((i, END))

    def work() -> None:
        try:
            generate_batch(engine, jobs, emit=emit, done=done)
        except Exception as exc:  # handed to the consumer, which raises it
            put(exc)
        put(None)

    threading.Thread(target=work, name="batch", daemon=True).start()


class _Steps:
    """Groups events into per-request lists; knows when the batch is over."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.finished = False

    def group(self, events: list[Event]) -> list[list[int]]:
        step: list[list[int]] = [[] for _ in range(self.size)]
        for event in events:
            if event is None:
                self.finished = True
            elif isinstance(event, BaseException):
                raise event
            else:
                step[event[0]].append(event[1])
        return step


def _cancel(jobs: Sequence[BatchJob]) -> None:
    for job in jobs:
        job.cancel.set()


def batch_steps(engine: ModelEngine,
                jobs: Sequence[BatchJob]) -> Generator[list[list[int]], None, None]:
    """The batch's steps, blocking between them (see the module docstring)."""
    events: queue.SimpleQueue[Event] = queue.SimpleQueue()
    steps = _Steps(len(jobs))
    _run(engine, jobs, events.put)
    try:
        while not steps.finished:
            got = [events.get()]
            while not events.empty():
                got.append(events.get_nowait())
            yield steps.group(got)
    finally:
        _cancel(jobs)


async def async_batch_steps(engine: ModelEngine,
                            jobs: Sequence[BatchJob]) -> AsyncIterator[list[list[int]]]:
    """The batch's steps, awaiting between them on the running event loop."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[Event] = asyncio.Queue()
    steps = _Steps(len(jobs))
    _run(engine, jobs, lambda event: loop.call_soon_threadsafe(events.put_nowait, event))
    try:
        while not steps.finished:
            got = [await events.get()]
            while not events.empty():
                got.append(events.get_nowait())
            yield steps.group(got)
    finally:
        _cancel(jobs)
