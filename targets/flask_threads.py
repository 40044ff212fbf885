"""flask_threads — sync Flask on gunicorn's `gthread` worker: one OS thread per request.

The pattern: the simplest production setup. gunicorn runs `workers` processes (each loads its own
model replica) with `threads` threads each; a request holds a thread from first byte to last,
calling the model synchronously. Streaming is a generator the thread drives token by token.

Choose it when: traffic is low, requests are short, and simplicity wins.

Pitfall: a thread is held for the whole generation, so long streams exhaust the pool — new
requests, `/health` included, queue inside gunicorn with no backpressure. And threads beyond the
model replicas do not add throughput: they contend for the same cores (or GPU) on one model.

Options: `threads` (default 8), `workers` (processes = model replicas, default 1), plus the
shared `max_concurrency` (default = threads) and `max_queue`, both per worker process. With
`max_concurrency` below `threads`, the spare threads answer 503s and `/health` under load.
Metrics are per worker process too (gunicorn hands each request to one worker).

Backpressure, the API key, body limits, drain and cancellation are the same request flow as in
the FastAPI targets (`targets.server.flow`), on the Flask adapter (`targets.server.wsgi`): a
client that leaves mid-stream makes the next write fail, gunicorn closes the response iterator,
and that sets `job.cancel`. On SIGTERM gunicorn closes its listening socket and waits up to
`graceful_timeout` (= the drain timeout) for in-flight responses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from flask import Flask

from targets.model.load import load_engine
from targets.model.tuning import configure_threads
from targets.server.config import ServeConfig, positive
from targets.server.job import Job
from targets.server.stats import Stats
from targets.server.wsgi import model_app, serve_app


@dataclass(frozen=True)
class ThreadsOptions:
    threads: int = positive(8)  # threads per worker process
    workers: int = positive(1)  # worker processes, each with its own model replica


def create_app(cfg: ServeConfig) -> Flask:
    """Build the WSGI app; loads the model (call it in the worker process, after fork)."""
    opts = cfg.pattern_options(ThreadsOptions)
    configure_threads(cfg.torch_threads)
    engine = load_engine(cfg.model, cfg.device)

    def generate(job: Job) -> Iterator[int]:
        # The pattern: the request's own thread runs the model, one token at a time, and holds
        # its thread (and its admission slot) until the last token is written.
        return engine.generate(job.ids, job.params, job.cancel)

    return model_app(cfg, engine, generate, stats=Stats(cfg.name), concurrency=opts.threads)


def serve(cfg: ServeConfig) -> None:
    """Run gunicorn (gthread) in the foreground; SIGTERM drains within `drain_timeout_s`."""
    opts = cfg.pattern_options(ThreadsOptions)
    serve_app(cfg, lambda: create_app(cfg), threads=opts.threads, workers=opts.workers)
