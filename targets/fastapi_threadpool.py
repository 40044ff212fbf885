"""fastapi_threadpool — asyncio + `run_in_executor` on a ThreadPoolExecutor.

The pattern: an `async def` FastAPI endpoint hands the blocking model call to a thread pool, so
the event loop stays free for new connections, `/health` and other streams. Tokens produced in the
worker thread cross into the loop through a `TokenChannel` (`loop.call_soon_threadsafe`) and
leave as SSE chunks as soon as they exist.

Choose it when: you have a blocking model library and want async I/O without changing it.

Pitfall: the pool should match the model replicas. Workers beyond the replicas run concurrently
on the same model and contend for its cores (or GPU); fewer leave replicas idle. Each replica
costs its full memory.

Options: `replicas` (model copies, default 1), `workers` (executor threads, default = replicas),
plus the shared `max_concurrency` (default = workers: a request runs only when a worker is free,
so waiting requests are visible as `patternbench_queue_depth`) and `max_queue`.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fastapi import FastAPI

from targets.model.engine import ModelEngine
from targets.model.load import load_engine
from targets.model.tuning import configure_threads
from targets.server.asgi import model_app, serve_app
from targets.server.channel import TokenChannel
from targets.server.config import ServeConfig, positive
from targets.server.job import Job
from targets.server.stats import Stats


@dataclass(frozen=True)
class ThreadpoolOptions:
    replicas: int = positive(1)  # model copies
    workers: int | None = positive(None)  # executor threads; None: one per replica


class ReplicaPerThread:
    """Each executor thread keeps the replica it first drew (round-robin): with as many workers
    as replicas every thread owns one; with more, threads share one and contend for it."""

    def __init__(self, engines: list[ModelEngine]) -> None:
        self.next = itertools.cycle(engines).__next__
        self.local = threading.local()

    def get(self) -> ModelEngine:
        if not hasattr(self.local, "engine"):
            self.local.engine = self.next()
        engine: ModelEngine = self.local.engine
        return engine


def produce(replicas: ReplicaPerThread, job: Job, out: TokenChannel, stats: Stats) -> None:
    """In a worker thread: generate on this thread's replica, pushing each token into the loop."""
    try:
        for token in replicas.get().generate(job.ids, job.params, job.cancel):
            stats.tokens.inc()
            out.put(token)
    except BaseException as exc:  # surfaced on the loop side
        out.fail(exc)
    finally:
        out.close()


def create_app(cfg: ServeConfig) -> FastAPI:
    opts = cfg.pattern_options(ThreadpoolOptions)
    workers = opts.workers or opts.replicas
    configure_threads(cfg.torch_threads)
    engines = [load_engine(cfg.model, cfg.device) for _ in range(opts.replicas)]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="model")
    stats = Stats(cfg.name)
    replicas_of = ReplicaPerThread(engines)

    async def generate(job: Job) -> AsyncIterator[int]:
        out = TokenChannel(asyncio.get_running_loop())
        pool.submit(produce, replicas_of, job, out, stats)
        async for token in out:  # on early close, job.cancel stops the worker at its next token
            yield token

    return model_app(cfg, engines[0], generate, stats=stats, concurrency=workers,
                     on_shutdown=[lambda: pool.shutdown(wait=False, cancel_futures=True)],
                     counts_tokens=True)


def serve(cfg: ServeConfig) -> None:
    serve_app(create_app(cfg), cfg)
