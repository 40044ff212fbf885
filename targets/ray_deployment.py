"""The Ray side of `ray_serve` (imported only in `.venv-ray`): the deployment and its lifecycle.

`ModelDeployment` is one replica: it loads the model, builds our FastAPI app around it
(`__serve_build_asgi_app__`, Ray Serve's late-bound ingress, runs after the constructor in the
replica) and feeds the app's jobs to `steps`, a `@serve.batch` async generator that yields one
output per job per decode step (its new token ids, or `StopIteration` once it ends). `run` starts
Ray and Serve, deploys it, waits for SIGTERM/SIGINT and stops what it started.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import ray
from fastapi import FastAPI
from ray import serve

from targets.batch_steps import END, async_batch_steps
from targets.model.load import load_engine
from targets.model.tuning import configure_threads
from targets.server.asgi import model_app
from targets.server.config import ServeConfig, nonneg, positive
from targets.server.job import Job
from targets.server.stats import Stats

log = logging.getLogger("patternbench.target")


@dataclass(frozen=True)
class RayServeOptions:
    """The `ray_serve` target's own options (documented in `targets.ray_serve`)."""

    num_replicas: int = positive(1)
    max_batch_size: int = positive(16)
    batch_wait_timeout_s: float = nonneg(0.02)
    replica_cpus: float = nonneg(1.0)
    num_cpus: int | None = positive(None)
    address: str | None = None
    app_name: str = "patternbench"
    venv: str | None = None  # read before parsing, by `targets.framework_venv`


@serve.deployment
@serve.ingress()
class ModelDeployment:
    """One replica: the model, our app, and the batch handler Ray calls with gathered jobs."""

    def __init__(self, cfg: ServeConfig, opts: RayServeOptions) -> None:
        configure_threads(cfg.torch_threads)
        self.cfg = cfg
        self.engine = load_engine(cfg.model, cfg.device)
        self.stats = Stats(cfg.name)
        self.concurrency = 2 * opts.max_batch_size
        self.steps.set_max_batch_size(opts.max_batch_size)
        self.steps.set_batch_wait_timeout_s(opts.batch_wait_timeout_s)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return model_app(self.cfg, self.engine, self.generate, stats=self.stats,
                         concurrency=self.concurrency, counts_tokens=True)

    async def generate(self, job: Job) -> AsyncIterator[int]:
        self.stats.queued.inc()
        waiting = True
        try:
            async for tokens in self.steps(job):
                if waiting:
                    self.stats.queued.dec()
                    waiting = False
                for token in tokens:
                    yield token
        finally:
            if waiting:
                self.stats.queued.dec()
            job.cancel.set()  # closed early (the client left): its row stops at the next step

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.02)
    async def steps(self, jobs: list[Job]) -> AsyncIterator[list[Any]]:
        ended = [False] * len(jobs)
        self.stats.batch_size.set(len(jobs))
        try:
            async for step in async_batch_steps(self.engine, jobs):
                out: list[Any] = []
                self.stats.tokens.inc(sum(len(t) - (END in t) for t in step))
                for i, tokens in enumerate(step):
                    if ended[i]:
                        out.append(StopIteration)
                    elif tokens and tokens[-1] == END:
                        ended[i] = True
                        out.append(tokens[:-1])  # its last tokens; StopIteration next step
                    else:
                        out.append(tokens)
                yield out
            yield [StopIteration] * len(jobs)
        finally:
            self.stats.batch_size.set(0)


def _local_cpus(opts: RayServeOptions) -> int:
    wanted = int(opts.num_replicas * opts.replica_cpus + 0.999)
    return opts.num_cpus or max(wanted, len(os.sched_getaffinity(0)))


def _deploy(cfg: ServeConfig, opts: RayServeOptions) -> None:
    bound: Any = ModelDeployment  # a ray.serve Deployment once decorated (untyped here)
    deployment = bound.options(
        num_replicas=opts.num_replicas,
        ray_actor_options={"num_cpus": opts.replica_cpus},
        # Ray's router sends a replica at most this many requests at once and queues the rest;
        # above our flow's concurrency + queue, so our admission (503) decides, as elsewhere.
        max_ongoing_requests=2 * opts.max_batch_size + cfg.shared.max_queue + 1
        if cfg.shared.max_concurrency is None
        else cfg.shared.max_concurrency + cfg.shared.max_queue + 1,
        graceful_shutdown_timeout_s=cfg.shared.drain_timeout_s,
    )
    # No access log: a line per request from the replica, relayed through the driver, costs CPU
    # on the cores the model needs (it was ~2 lines per request at 5 requests/s here).
    serve.run(deployment.bind(cfg, opts), name=opts.app_name, route_prefix="/", blocking=False,
              logging_config={"enable_access_log": False, "log_level": "WARNING"})


def run(cfg: ServeConfig) -> None:
    """Start Ray (or join `address`) and Serve on `cfg.port`, deploy, wait for a signal, stop
    (`ValueError` naming a bad option, before Ray starts)."""
    opts = cfg.pattern_options(RayServeOptions)
    own = opts.address is None
    if own:
        # address="local": always a new instance of our own; a bare ray.init() would join a
        # cluster that `ray start` left running on this machine (and refuse num_cpus there).
        ray.init(address="local", num_cpus=_local_cpus(opts), include_dashboard=False,
                 logging_level=logging.WARNING)
    else:
        ray.init(address=opts.address, logging_level=logging.WARNING)
    # After ray.init, which installs C++ handlers that dump a stack and kill the process on
    # SIGTERM: ours stop Serve and Ray first.
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": cfg.host, "port": cfg.port})
        _deploy(cfg, opts)
        print(f"ray_serve: serving on http://{cfg.host}:{cfg.port}", flush=True)
        stop.wait()
    finally:
        _stop(own, opts.app_name)


def _stop(own: bool, app_name: str) -> None:
    """Take down what this target started: the whole local Ray instance, or its app only."""
    try:
        # Deleting the app first is Ray Serve's drain: each replica stops taking requests and
        # waits for its ongoing ones (streams included) up to graceful_shutdown_timeout_s,
        # while the proxy still relays them; serve.shutdown() alone kills the proxy at once.
        serve.delete(app_name)
        if own:
            serve.shutdown()
    except Exception:  # Ray may be half up when start-up failed: still shut it down
        log.exception("ray_serve: stopping Serve failed")
    finally:
        ray.shutdown()

