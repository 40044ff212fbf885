"""The FastAPI / uvicorn adapter: puts the request flow (`targets.server.flow`) on an ASGI server.

It only translates and adds what never reaches a model:

- a Starlette request becomes the flow's `Call` (headers, the body read through a
  `BodyReader`, disconnect detection); a `Reply` becomes a Response, an `Events` an SSE
  response that closes its generator as soon as the client leaves (which cancels the job),
- `/health` (never touches the model), `/metrics` (Prometheus text),
- `APIError`, 404 / 405 and unexpected exceptions as OpenAI-shaped JSON,
- startup / shutdown hooks, and the graceful drain (`serve_app`): on SIGTERM uvicorn closes the
  listening socket, lets in-flight requests — streams included — finish for up to
  `drain_timeout_s`, cancels what is left, runs the shutdown hooks, and the process exits 0.

A model pattern writes only how tokens are produced for a `Job` and calls `model_app`:

    async def generate(job: Job) -> AsyncIterator[int]:
        for token in engine.generate(job.ids, job.params, job.cancel):  # inline: blocks the loop
            yield token

    serve_app(model_app(cfg, engine, generate, stats=Stats(cfg.name), concurrency=1), cfg)

A gateway builds the flow with its own strategy and passes it to `build_app`
(`targets.fastapi_proxy`).
"""

from __future__ import annotations

import inspect
import math
import signal
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from targets.server.api import SSE_HEADERS, APIError, Limits
from targets.server.config import ServeConfig
from targets.server.drain import Drain
from targets.server.exchange import (
    AsyncReply,
    BodyReader,
    Events,
    Reply,
    internal_error,
    route_error,
)
from targets.server.flow import AsyncFlow, Down
from targets.server.generation import AsyncJobs
from targets.server.job import ModelInfo, TokenStream
from targets.server.openapi import install_openapi
from targets.server.stats import PROMETHEUS_CONTENT_TYPE, Stats

Hook = Callable[[], "Awaitable[None] | None"]
"""A startup or shutdown callable, sync or async, run inside the server's event loop."""

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


class _RequestCall:
    """A Starlette request as the flow's `Call`."""

    def __init__(self, request: Request) -> None:
        self.request = request

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    async def body(self, limits: Limits) -> bytes:
        reader = BodyReader(limits, self.request.headers.get("content-length"))
        async for chunk in self.request.stream():
            if not reader.feed(chunk):
                break
        return reader.body()

    async def disconnected(self) -> None:
        while (await self.request.receive())["type"] != "http.disconnect":
            pass


def _response(reply: AsyncReply) -> Response:
    if isinstance(reply, Events):
        return SSEResponse(reply.chunks, on_close=reply.on_close)
    return Response(reply.body, status_code=reply.status, media_type=reply.media_type,
                    headers=dict(reply.headers))


async def _run_hooks(hooks: Sequence[Hook]) -> None:
    for hook in hooks:
        result = hook()
        if inspect.isawaitable(result):
            await result


def model_app(cfg: ServeConfig, model: ModelInfo, generate: TokenStream, *, stats: Stats,
              concurrency: int, on_startup: Sequence[Hook] = (),
              on_shutdown: Sequence[Hook] = (), counts_tokens: bool = False,
              drain: Drain | None = None, down: Down | None = None) -> FastAPI:
    """The OpenAI-compatible app around `generate`: the flow with the model-job strategy (see
    `AsyncFlow` for `concurrency`, `drain` and `down`, `AsyncJobs` for `counts_tokens`).
    `on_startup` hooks run before the first request, `on_shutdown` after the drain (so a pool can
    still finish in-flight streams)."""
    jobs = AsyncJobs(cfg, model, generate, stats, counts_tokens=counts_tokens)
    flow = AsyncFlow(cfg, jobs, stats, concurrency=concurrency, drain=drain, down=down)
    return build_app(cfg, flow, stats=stats, on_startup=on_startup, on_shutdown=on_shutdown)


def build_app(cfg: ServeConfig, flow: AsyncFlow, *, stats: Stats,
              on_startup: Sequence[Hook] = (), on_shutdown: Sequence[Hook] = ()) -> FastAPI:
    """The app serving `flow` on the OpenAI routes, plus `/health` (503 with the reason once
    the flow's `down()` gives one), `/metrics` and `/openapi.json`. `serve_app` begins the
    flow's drain on SIGTERM."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await _run_hooks(on_startup)
        yield
        await _run_hooks(on_shutdown)

    app = FastAPI(title=cfg.name, docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  lifespan=lifespan)
    app.state.drain = flow.drain
    down = flow.down

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return _response(await flow.respond(_RequestCall(request), "completions"))

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return _response(await flow.respond(_RequestCall(request), "chat"))

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        return _response(await flow.respond(_RequestCall(request), "models"))

    @app.get("/health")
    async def health() -> Response:
        reason = down() if down is not None else None
        if reason is not None:
            return _response(Reply.json({"status": "down", "reason": reason}, status=503))
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(stats.render(), media_type=PROMETHEUS_CONTENT_TYPE)

    _add_error_handlers(app)
    install_openapi(app, max_tokens_cap=cfg.limits.max_tokens_cap)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Render `APIError`, 404/405 and unexpected exceptions as OpenAI-shaped JSON."""

    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError) -> Response:
        return _response(Reply.error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        error = route_error(exc.status_code, request.method, request.url.path, exc.detail)
        error.headers.update(exc.headers or {})
        return _response(Reply.error(error))

    @app.exception_handler(Exception)
    async def server_error(_: Request, exc: Exception) -> Response:
        return _response(Reply.error(internal_error(exc)))


def serve_app(app: Any, cfg: ServeConfig) -> None:
    """Run `app` on uvicorn in the foreground until SIGTERM/SIGINT, then drain and return.

    uvicorn's graceful shutdown is the drain: it stops accepting at once, waits for open
    connections — streaming responses included — for up to `timeout_graceful_shutdown` seconds,
    then cancels the rest and runs the lifespan shutdown. uvicorn re-raises the signal when it is
    done; a no-op handler installed here turns that into a normal return (exit code 0).
    """
    import uvicorn

    config = uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level="warning",
                            lifespan="on",
                            timeout_graceful_shutdown=math.ceil(cfg.shared.drain_timeout_s))
    drain = getattr(getattr(app, "state", None), "drain", None)

    class DrainingServer(uvicorn.Server):
        """uvicorn, telling the flow's `Drain` when SIGTERM arrives (kept-alive connections
        then get a 503 with `Connection: close`; the queue is refused before the timeout)."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if isinstance(drain, Drain):
                drain.begin()
            super().handle_exit(sig, frame)

    server = DrainingServer(config)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server.run()
    if not server.started:
        raise SystemExit(3)
