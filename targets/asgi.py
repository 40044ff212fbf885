"""The FastAPI serving layer every asyncio target shares; a pattern only supplies its tokens.

A target module builds `generate: TokenStream` — an async iterator of output token ids for one
validated `Job` — and calls `build_app(...)`, then `serve_app(app, cfg)`. Everything else is here,
written once:

- body size limit, request parsing and validation (400 / 413, OpenAI-shaped errors),
- optional bearer API key (401),
- backpressure (`AsyncAdmission`): at most `max_concurrency` running and `max_queue` waiting,
  beyond that an immediate 503 with `Retry-After`,
- streaming (SSE, one chunk per token, usage chunk, `[DONE]`) and non-streaming responses,
- a client that disconnects cancels its generation (`job.cancel` is set, the token stream is
  closed, the slot is freed) — streaming or not,
- `/health` (never touches the model), `/metrics` (Prometheus text),
- 404 / 405 / 500 as OpenAI-shaped JSON,
- graceful drain (`serve_app`): on SIGTERM uvicorn closes the listening socket, lets in-flight
  requests — streams included — finish for up to `drain_timeout_s`, cancels what is left, runs the
  shutdown hooks, and the process exits 0.

    async def generate(job: Job) -> AsyncIterator[int]:
        for token in engine.generate(job.ids, job.params, job.cancel):  # inline: blocks the loop
            yield token

    app = build_app(cfg, engine, generate, stats=Stats(cfg.name), max_concurrency=1,
                    max_queue=cfg.max_queue())
    serve_app(app, cfg)
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import signal
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from targets.admission import AsyncAdmission, Slot
from targets.api import (
    SSE_HEADERS,
    APIError,
    Kind,
    Limits,
    check_api_key,
    error_event,
    model_list,
    parse_request,
)
from targets.config import ServeConfig
from targets.serving import PROMETHEUS_CONTENT_TYPE, Job, ModelInfo, Stats

TokenStream = Callable[[Job], AsyncIterator[int]]
"""How a pattern produces the output token ids of one request. It must stop soon after
`job.cancel` is set, and release what it holds when closed early (`aclose()`)."""

Hook = Callable[[], "Awaitable[None] | None"]
"""A startup or shutdown callable, sync or async, run inside the server's event loop."""

DISCARD_LIMIT_BYTES = 16 << 20  # an oversized body up to this size is read and dropped, so
# the client reads its 413 instead of a connection reset

log = logging.getLogger("patternbench.target")


def error_response(exc: APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def read_body(request: Request, limits: Limits) -> bytes:
    """The request body, or `APIError(413)` when it is over `limits.max_body_bytes`."""
    declared = request.headers.get("content-length", "")
    too_large = APIError(413, f"request body is over the limit of {limits.max_body_bytes} bytes",
                         code="body_too_large")
    if declared.isdigit() and int(declared) > DISCARD_LIMIT_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limits.max_body_bytes:
            chunks.append(chunk)
        elif size > DISCARD_LIMIT_BYTES:
            break
    if size > limits.max_body_bytes:
        raise too_large
    return b"".join(chunks)


class SSEResponse(StreamingResponse):
    """A `text/event-stream` response that always closes its generator and runs `on_close`.

    Starlette cancels the sending task when the client disconnects; a generator suspended at a
    `yield` would then wait for garbage collection. Closing it here runs its `finally` at once.
    """

    def __init__(self, content: AsyncGenerator[bytes, None], on_close: Callable[[], None]) -> None:
        super().__init__(content, media_type="text/event-stream", headers=SSE_HEADERS)
        self._events = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._events.aclose()
            self._on_close()


async def _run_hooks(hooks: Sequence[Hook]) -> None:
    for hook in hooks:
        result = hook()
        if inspect.isawaitable(result):
            await result


def build_app(
    cfg: ServeConfig,
    model: ModelInfo,
    generate: TokenStream,
    *,
    stats: Stats,
    max_concurrency: int,
    max_queue: int,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    counts_tokens: bool = False,
) -> FastAPI:
    """The OpenAI-compatible app around `generate`. See the module docstring for what it does.

    `max_concurrency` requests run `generate` at once and `max_queue` more wait; beyond that a
    request gets 503. `on_startup` hooks run before the first request, `on_shutdown` after the
    drain (so a pool can still finish in-flight streams). `stats.tokens` counts tokens where the
    model produces them: here, as `generate` yields them, unless `counts_tokens` says that
    `generate`'s producer (a worker thread or process) counts them itself — then tokens a
    departed client never read are counted too, and a failed cancel shows.
    """
    admission = AsyncAdmission(max_concurrency, max_queue, stats)
    eos = model.eos_token_id

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await _run_hooks(on_startup)
        yield
        await _run_hooks(on_shutdown)

    app = FastAPI(title=cfg.name, docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)

    async def tokens(job: Job) -> AsyncIterator[int]:
        stream = generate(job)
        try:
            async for token in stream:
                if not counts_tokens:
                    stats.tokens.inc()
                yield token
        finally:
            job.cancel.set()  # a no-op after a normal end; stops a generation left behind
            if isinstance(stream, AsyncGenerator):
                await stream.aclose()

    async def cancel_on_disconnect(request: Request, job: Job) -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        job.cancel.set()

    async def complete(request: Request, job: Job, slot: Slot) -> Response:
        watcher = asyncio.ensure_future(cancel_on_disconnect(request, job))
        outcome = "error"
        try:
            async for token in tokens(job):
                job.add(token)
            outcome = "cancelled" if watcher.done() else "ok"
            return JSONResponse(job.response(eos))
        finally:
            watcher.cancel()
            slot.release()
            stats.requests.labels(outcome).inc()

    async def events(job: Job, slot: Slot) -> AsyncGenerator[bytes, None]:
        outcome = "cancelled"  # what a disconnect (CancelledError / GeneratorExit) leaves
        try:
            try:
                async for token in tokens(job):
                    yield job.on_token(token)
            except Exception as exc:  # headers are sent: report it inside the stream
                log.exception("generation failed mid-stream")
                outcome = "error"
                yield error_event(APIError(500, f"generation failed: {exc}", type="server_error"))
                return
            yield job.tail(eos)
            outcome = "ok"
        finally:
            slot.release()
            stats.requests.labels(outcome).inc()

    async def handle(request: Request, kind: Kind) -> Response:
        check_api_key(request.headers.get("authorization"), cfg.api_key)
        req = parse_request(await read_body(request, cfg.limits), kind, cfg.limits)
        job = Job.create(kind, req, model, cfg.limits)
        slot = await admission.acquire()
        if not job.stream:
            return await complete(request, job, slot)
        return SSEResponse(events(job, slot), on_close=slot.release)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await handle(request, "completions")

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await handle(request, "chat")

    started = int(time.time())

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        check_api_key(request.headers.get("authorization"), cfg.api_key)
        return model_list(model.name, model.max_context, started)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(stats.render(), media_type=PROMETHEUS_CONTENT_TYPE)

    add_error_handlers(app)
    return app


def add_error_handlers(app: FastAPI) -> None:
    """Render `APIError`, 404/405 and unexpected exceptions as OpenAI-shaped JSON."""

    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message = (f"no route {request.url.path}" if exc.status_code == 404
                   else f"{request.method} {request.url.path}: {exc.detail}")
        return error_response(APIError(exc.status_code, message, type=kind,
                                       headers=dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def server_error(_: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc)
        return error_response(APIError(500, f"internal error: {type(exc).__name__}",
                                       type="server_error"))


def serve_app(app: Any, cfg: ServeConfig) -> None:
    """Run `app` on uvicorn in the foreground until SIGTERM/SIGINT, then drain and return.

    uvicorn's graceful shutdown is the drain: it stops accepting at once, waits for open
    connections — streaming responses included — for up to `timeout_graceful_shutdown` seconds,
    then cancels the rest and runs the lifespan shutdown. uvicorn re-raises the signal when it is
    done; a no-op handler installed here turns that into a normal return (exit code 0).
    """
    import uvicorn

    config = uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level="warning",
                            lifespan="on", timeout_graceful_shutdown=math.ceil(cfg.drain_s()))
    server = uvicorn.Server(config)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server.run()
    if not server.started:
        raise SystemExit(3)
