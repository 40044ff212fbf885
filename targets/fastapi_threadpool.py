"""fastapi_threadpool — asyncio + `run_in_executor` on a ThreadPoolExecutor.

The pattern: an `async def` FastAPI endpoint hands the blocking model call to a thread pool, so
the event loop stays free for new connections, `/health` and other streams. Tokens produced in the
worker thread cross into the loop through an `asyncio.Queue` (`loop.call_soon_threadsafe`) and
leave as SSE chunks as soon as they exist.

Choose it when: you have a blocking model library and want async I/O without changing it.

Pitfall: the pool should match the model replicas. Workers beyond the replicas run concurrently
on the same model and contend for its cores (or GPU); fewer leave replicas idle. Each replica
costs its full memory.

Options: `replicas` (model copies, default 1), `workers` (executor threads, default = replicas).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from targets.api import SSE_HEADERS, APIError, Kind, parse_request
from targets.config import ServeConfig
from targets.model import ModelEngine, configure_threads, load_engine
from targets.serving import PROMETHEUS_CONTENT_TYPE, Job, Stats

_END = object()


def create_app(cfg: ServeConfig) -> FastAPI:
    configure_threads(cfg.torch_threads)
    replicas = cfg.int_opt("replicas", 1)
    workers = cfg.int_opt("workers", replicas)
    engines: list[ModelEngine] = [load_engine(cfg.model, cfg.device) for _ in range(replicas)]
    first = engines[0]
    next_replica = itertools.cycle(engines).__next__  # round-robin, shared like real code does
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="model")
    stats = Stats(cfg.name)
    app = FastAPI(title=cfg.name)

    def run(job: Job, loop: asyncio.AbstractEventLoop, out: asyncio.Queue[object]) -> None:
        """In a worker thread: generate on a replica, push each token into the loop."""
        engine = next_replica()
        try:
            for token in engine.generate(job.ids, job.params, job.cancel):
                loop.call_soon_threadsafe(out.put_nowait, token)
        except BaseException as exc:  # surfaced on the loop side
            loop.call_soon_threadsafe(out.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(out.put_nowait, _END)

    async def tokens(job: Job) -> AsyncIterator[int]:
        loop = asyncio.get_running_loop()
        out: asyncio.Queue[object] = asyncio.Queue()
        stats.in_flight.inc()
        loop.run_in_executor(pool, run, job, loop, out)
        try:
            while (item := await out.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, int)
                stats.tokens.inc()
                yield item
        finally:
            job.cancel.set()  # a disconnected client stops its generation at the next token
            stats.in_flight.dec()

    async def handle(request: Request, kind: Kind) -> Response:
        try:
            req = parse_request(await request.body(), kind, cfg.limits)
            job = Job.create(kind, req, first, cfg.limits)
        except APIError as exc:
            return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)
        if not job.stream:
            async for token in tokens(job):
                job.on_token(token)
            stats.requests.labels("ok").inc()
            return JSONResponse(job.response(first.eos_token_id))

        async def events() -> AsyncIterator[bytes]:
            async for token in tokens(job):
                yield job.on_token(token)
            yield job.tail(first.eos_token_id)
            stats.requests.labels("ok").inc()

        return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await handle(request, "completions")

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await handle(request, "chat")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(stats.render(), media_type=PROMETHEUS_CONTENT_TYPE)

    return app


def serve(cfg: ServeConfig) -> None:
    import uvicorn

    uvicorn.run(create_app(cfg), host=cfg.host, port=cfg.port, log_level="warning",
                timeout_graceful_shutdown=int(cfg.drain_timeout_s))
