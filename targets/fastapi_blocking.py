"""fastapi_blocking — an `async def` endpoint that calls the model inline: the anti-pattern.

The pattern: the endpoint is `async def`, but the model call inside it is ordinary blocking code
(a PyTorch forward pass, a `time.sleep`, a synchronous HTTP client). Nothing awaits while it runs,
so the event loop — the only thread serving every connection — is stuck until it returns.
Streaming "works" (each token is sent as it is produced) but every `next()` of the blocking
generator holds the loop, and writing a chunk does not yield to it either.

Choose it when: never on purpose. It is here because it is the most common asyncio serving bug
and because it looks fine with one client: a single request gets normal latency.

Pitfall: with a second client everything serializes behind the running generation — `/health`
probes time out (an orchestrator may kill a busy, healthy server), `/metrics` stalls, a
disconnect goes unseen until the generation ends (the loop cannot read the socket), 503s cannot
be sent, and SIGTERM is handled only after the request in progress. Fix: `run_in_executor`
(`fastapi_threadpool`) or a batching engine with its own thread.

Drain: the loop cannot act on SIGTERM while it generates (uvicorn's drain timer is a task of the
blocked loop), so the drain is bounded from inside the generation: the signal handler still runs
between two tokens and begins the flow's `Drain`; the generation in progress checks it at each
token and, past the drain's cutoff, ends with a 503 (`shutting_down`) instead of running on, and
requests read after SIGTERM are refused with that 503 instead of being admitted.

Options: the shared `max_concurrency` (default 64: the loop takes whatever it can read, one
generation at a time) and `max_queue`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI

from targets.model.load import load_engine
from targets.model.tuning import configure_threads
from targets.server.asgi import model_app, serve_app
from targets.server.config import ServeConfig
from targets.server.drain import Drain, shutting_down
from targets.server.job import Job
from targets.server.stats import Stats

DEFAULT_MAX_CONCURRENCY = 64


@dataclass(frozen=True)
class BlockingOptions:
    """None of its own: only the shared ones."""


def create_app(cfg: ServeConfig) -> FastAPI:
    cfg.pattern_options(BlockingOptions)
    configure_threads(cfg.torch_threads)
    engine = load_engine(cfg.model, cfg.device)

    drain = Drain(cfg.shared.drain_timeout_s)

    async def generate(job: Job) -> AsyncIterator[int]:
        # The bug, on purpose: a blocking iterator driven from the event loop's thread.
        for token in engine.generate(job.ids, job.params, job.cancel):
            if drain.past_cutoff():  # nothing else can stop it: the loop is stuck here
                raise shutting_down("the drain timeout ended before the generation finished")
            yield token

    return model_app(cfg, engine, generate, stats=Stats(cfg.name),
                     concurrency=DEFAULT_MAX_CONCURRENCY, drain=drain)


def serve(cfg: ServeConfig) -> None:
    serve_app(create_app(cfg), cfg)
