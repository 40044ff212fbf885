"""fastapi_processpool — asyncio front end, one model replica per worker process.

The pattern: the event loop parses, validates and streams; `replicas` worker processes
(`multiprocessing`, spawn) each load their own copy of the model and generate one request at a
time. A request borrows a free replica, sends it the prompt's token ids, and token ids flow back
one by one through a queue that a reader thread drains into the loop — so streaming works and
nothing blocks the loop (the process plumbing is `targets.replica`). Each replica has its own
interpreter: no GIL is shared, and CPU cores are split between replicas (torch threads = cores /
replicas).

Choose it when: the model is CPU-bound Python/PyTorch, one replica cannot use all cores well,
and memory allows N copies — or to isolate a crash-prone library from the server.

Pitfall: every replica costs the model's full memory and start-up time, each token pays IPC
(pickling, a pipe write, a thread hop), and N replicas on the same cores split them rather than
multiply them: past the core count, replicas only add contention. There is no batching: each
replica runs one sequence at a time.

Options: `replicas` (processes, default 1), plus the shared `max_concurrency` (default = replicas:
a request runs only when a replica is free; the rest wait as `patternbench_queue_depth`) and
`max_queue`. `--torch-threads` overrides the per-replica thread count.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI

from targets.model.store import load_tokenizer, materialize
from targets.replica import ReplicaPool
from targets.server.asgi import model_app, serve_app
from targets.server.config import ServeConfig, positive
from targets.server.job import Job, ServedModel
from targets.server.stats import Stats


@dataclass(frozen=True)
class ProcessPoolOptions:
    replicas: int = positive(1)  # worker processes, each with its own model


async def generate(pool: ReplicaPool, job: Job) -> AsyncIterator[int]:
    """Borrow a free replica, send it the prompt's ids, relay its tokens as they come back."""
    replica = await pool.free.get()  # waits while every replica is busy
    rid, out = pool.send(replica, job)
    try:
        async for token in out:  # a reader thread puts them here, one IPC message each
            yield token
    finally:
        pool.cancel(rid)  # closed early: stop the replica; it is freed at its END


def create_app(cfg: ServeConfig) -> FastAPI:
    opts = cfg.pattern_options(ProcessPoolOptions)
    threads = cfg.torch_threads or max(1, len(os.sched_getaffinity(0)) // opts.replicas)
    stats = Stats(cfg.name)
    pool = ReplicaPool(cfg.model, cfg.device, opts.replicas, threads, stats)
    # The front end holds no model: the tokenizer here, the rest as a replica reported it.
    model = ServedModel(tokenizer=load_tokenizer(materialize(cfg.model)), **pool.info)
    return model_app(cfg, model, lambda job: generate(pool, job), stats=stats,
                     concurrency=opts.replicas, on_startup=[pool.reader.start],
                     on_shutdown=[pool.stop], counts_tokens=True)


def serve(cfg: ServeConfig) -> None:
    serve_app(create_app(cfg), cfg)
