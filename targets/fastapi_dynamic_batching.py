"""fastapi_dynamic_batching — gather requests for a short window, run them as one batch.

The pattern: request-level ("dynamic" or "static") batching, as in Triton's dynamic batcher or a
hand-written collector. Arriving requests wait until `window_ms` has passed since the oldest of
them or `max_batch` are waiting; then one model thread runs the whole group as ONE batch — a
padded forward pass per decode step (`batching.static`) — to completion, streaming each
sequence's tokens as they are produced. One forward pass for B sequences costs far less than B
passes, so throughput rises with the batch.

Choose it when: requests have similar lengths and arrive in bursts (offline scoring, fixed-size
outputs), and you cannot use an iteration-level batching server.

Pitfall: head-of-line blocking. A batch runs until its longest sequence ends; a short request
finishes early but its row idles, and every request that arrives meanwhile waits for the whole
batch before it starts (TTFT grows with the longest output in flight). The window also adds up to
`window_ms` to every request's TTFT at low load. Continuous batching (`fastapi_batching`) lets
new requests join at the next step instead.

Options: `max_batch` (sequences per batch, default 16), `window_ms` (gathering window, default
20), plus the shared `max_concurrency` (default 2 × max_batch: one batch running, one gathering)
and `max_queue`. `/metrics` shows `patternbench_batch_size` (the running batch) and counts requests
waiting for the next batch in `patternbench_queue_depth`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import FastAPI

from targets.batching.static import generate_batch
from targets.model.engine import ModelEngine
from targets.model.load import load_engine
from targets.model.tuning import configure_threads
from targets.server.asgi import model_app, serve_app
from targets.server.channel import TokenChannel
from targets.server.config import ServeConfig, nonneg, positive
from targets.server.job import Job
from targets.server.stats import Stats

log = logging.getLogger("patternbench.target")


@dataclass(frozen=True)
class DynamicBatchingOptions:
    max_batch: int = positive(16)  # sequences per batch
    window_ms: float = nonneg(20.0)  # how long the oldest waiting request waits for company


@dataclass
class Pending:
    job: Job
    out: TokenChannel
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """Collects `Pending` requests and runs them in batches on one model thread."""

    def __init__(self, engine: ModelEngine, max_batch: int, window_s: float, stats: Stats) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.window_s = window_s
        self.stats = stats
        self.pending: collections.deque[Pending] = collections.deque()
        self.cond = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self.loop, name="batcher", daemon=True)

    def submit(self, item: Pending) -> None:
        with self.cond:
            self.pending.append(item)
            self.stats.queued.inc()
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()

    def next_batch(self) -> list[Pending]:
        """Block until a batch is due: `max_batch` waiting or the oldest one's window is over."""
        with self.cond:
            while not self.pending and not self.stopping:
                self.cond.wait()
            while not self.stopping and len(self.pending) < self.max_batch:
                left = self.pending[0].arrived + self.window_s - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            take = min(self.max_batch, len(self.pending))
            batch = [self.pending.popleft() for _ in range(take)]
            self.stats.queued.dec(take)
        return batch

    def loop(self) -> None:
        while not self.stopping:
            batch = self.next_batch()
            for item in batch:
                if item.job.cancel.is_set():  # its client left while it waited
                    item.out.close()
            batch = [item for item in batch if not item.job.cancel.is_set()]
            if batch:
                self.run(batch)

    def emit(self, item: Pending, token: int) -> None:
        self.stats.tokens.inc()
        item.out.put(token)

    def run(self, batch: list[Pending]) -> None:
        self.stats.batch_size.set(len(batch))
        try:
            generate_batch(self.engine, [item.job for item in batch],
                           emit=lambda i, token: self.emit(batch[i], token),
                           done=lambda i: batch[i].out.close())
        except Exception as exc:
            log.exception("batch failed")
            for item in batch:
                item.out.fail(exc)
        finally:
            self.stats.batch_size.set(0)


def create_app(cfg: ServeConfig) -> FastAPI:
    opts = cfg.pattern_options(DynamicBatchingOptions)
    configure_threads(cfg.torch_threads)
    engine = load_engine(cfg.model, cfg.device)
    stats = Stats(cfg.name)
    batcher = Batcher(engine, opts.max_batch, opts.window_ms / 1000, stats)

    async def generate(job: Job) -> AsyncIterator[int]:
        out = TokenChannel(asyncio.get_running_loop())
        batcher.submit(Pending(job, out))
        async for token in out:  # an early close sets job.cancel: its row stops emitting
            yield token

    return model_app(cfg, engine, generate, stats=stats, concurrency=2 * opts.max_batch,
                     on_startup=[batcher.thread.start], on_shutdown=[batcher.stop],
                     counts_tokens=True)


def serve(cfg: ServeConfig) -> None:
    serve_app(create_app(cfg), cfg)
