"""fastapi_processpool — asyncio front end, one model replica per worker process.

The pattern: the event loop parses, validates and streams; `replicas` worker processes
(`multiprocessing`, spawn) each load their own copy of the model and generate one request at a
time (`targets.replica`). A request borrows a free replica, sends it the prompt's token ids, and
token ids flow back one by one through a queue that a reader thread drains into the loop — so
streaming works and nothing blocks the loop. Each replica has its own interpreter: no GIL is
shared, and CPU cores are split between replicas (torch threads = cores / replicas).

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

import asyncio
import itertools
import logging
import multiprocessing
import os
import queue
import threading
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import FastAPI

from targets.asgi import build_app, serve_app
from targets.channel import TokenChannel
from targets.config import ServeConfig
from targets.model import Tokenizer, load_tokenizer, materialize
from targets.replica import END, replica_main
from targets.serving import Job, Stats

OPTIONS = ("replicas",)
READY_TIMEOUT_S = 300.0
log = logging.getLogger("patternbench.target")


@dataclass(frozen=True)
class FrontModel:
    """`ModelInfo` for the front end: the tokenizer here, the rest as a replica reported it."""

    name: str
    max_context: int
    eos_token_id: int
    tokenizer: Tokenizer


class ReplicaPool:
    """Replica processes, the request each one runs, and the thread that reads their tokens."""

    def __init__(self, model: str, device: str, replicas: int, threads: int,
                 stats: Stats) -> None:
        self.stats = stats
        ctx = multiprocessing.get_context("spawn")  # fork after torch threads start is unsafe
        self.outbox: Any = ctx.Queue()
        self.inboxes: list[Any] = [ctx.Queue() for _ in range(replicas)]
        self.procs = [ctx.Process(target=replica_main, name=f"replica-{i}", daemon=True,
                                  args=(i, model, device, threads, self.inboxes[i], self.outbox))
                      for i in range(replicas)]
        for proc in self.procs:
            proc.start()
        self.info = self._wait_ready()
        self.free: asyncio.Queue[int] = asyncio.Queue()
        for i in range(replicas):
            self.free.put_nowait(i)
        self.running: dict[int, tuple[int, TokenChannel]] = {}  # request id → (replica, out)
        self.ids = itertools.count()
        self.stopping = False
        self.reader = threading.Thread(target=self._read, name="replica-reader", daemon=True)

    def _wait_ready(self) -> dict[str, Any]:
        info: dict[str, Any] = {}
        for _ in self.procs:
            try:
                _, _, info = self.outbox.get(timeout=READY_TIMEOUT_S)
            except queue.Empty:
                self.stop()
                raise RuntimeError("a model replica did not start; see the log above") from None
        return info

    def _read(self) -> None:
        """Reader thread: route each (request id, token) to its channel in the loop."""
        while not self.stopping:
            try:
                rid, item = self.outbox.get(timeout=1.0)
            except queue.Empty:
                self._fail_dead()
                continue
            replica, out = self.running.get(rid, (-1, None))
            if out is None:
                continue
            if isinstance(item, int) and item != END:
                self.stats.tokens.inc()  # produced by the replica, read or not
                out.put(item)
                continue
            if isinstance(item, tuple):
                out.fail(RuntimeError(f"replica {replica}: {item[1]}"))
            out.close()
            del self.running[rid]
            out.loop.call_soon_threadsafe(self.free.put_nowait, replica)  # replica is free

    def _fail_dead(self) -> None:
        for rid, (replica, out) in list(self.running.items()):
            if not self.procs[replica].is_alive():
                log.error("replica %d died (exit code %s)", replica, self.procs[replica].exitcode)
                out.fail(RuntimeError(f"replica {replica} died"))
                del self.running[rid]

    async def generate(self, job: Job) -> AsyncIterator[int]:
        replica = await self.free.get()
        rid = next(self.ids)
        out = TokenChannel(asyncio.get_running_loop())
        self.running[rid] = (replica, out)
        self.inboxes[replica].put(("run", rid, list(job.ids), asdict(job.params)))
        try:
            async for token in out:
                yield token
        finally:
            if rid in self.running:  # closed early: stop the replica; it is freed at its END
                self.inboxes[replica].put(("cancel", rid))

    def stop(self) -> None:
        """After the drain: ask each replica to exit, then make sure it has."""
        self.stopping = True
        for inbox in self.inboxes:
            inbox.put(None)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()


def create_app(cfg: ServeConfig) -> FastAPI:
    cfg.check_options(OPTIONS)
    replicas = cfg.int_opt("replicas", 1)
    threads = cfg.torch_threads or max(1, len(os.sched_getaffinity(0)) // replicas)
    stats = Stats(cfg.name)
    pool = ReplicaPool(cfg.model, cfg.device, replicas, threads, stats)
    model = FrontModel(tokenizer=load_tokenizer(materialize(cfg.model)), **pool.info)
    return build_app(cfg, model, pool.generate, stats=stats,
                     max_concurrency=cfg.max_concurrency(replicas), max_queue=cfg.max_queue(),
                     on_startup=[pool.reader.start], on_shutdown=[pool.stop],
                     counts_tokens=True)


def serve(cfg: ServeConfig) -> None:
    serve_app(create_app(cfg), cfg)
