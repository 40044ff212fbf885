"""fastapi_proxy — an async gateway forwarding to an upstream LLM server through one pooled client.

The pattern: a FastAPI service in front of a model API (an inference server, a hosted LLM API)
that forwards each request through ONE shared `aiohttp.ClientSession` and streams the answer back
chunk by chunk as it arrives. It holds no model; its cost is I/O, and its limit is the client's
connection pool: a request that finds every pooled connection busy waits for one, and for
streaming LLM calls a connection stays busy for the whole generation.

Choose it when: you add auth, routing, quotas or logging in front of a model server.

Pitfall: the pool, not the upstream, becomes the binding constraint. aiohttp's default (100) or a
small hand-set value (`limit=4`) caps concurrent upstream streams; everything beyond it queues
inside the gateway, invisible to the upstream's own metrics. `/metrics` here shows it:
`patternbench_proxy_pool_wait_seconds` (time waiting for a pooled connection) beside
`patternbench_proxy_upstream_seconds` (time holding one: upstream TTFT, generation and streaming),
and the gauges `patternbench_proxy_pool_in_use` / `patternbench_proxy_pool_waiting`.

It uses the shared FastAPI layer's parts (`targets.asgi`: body limit, API key, OpenAI-shaped
errors, backpressure with 503, drain on SIGTERM) but not its `build_app`, which is built around a
`Job` on a local engine: a gateway parses nothing and passes the upstream's bytes, status codes
and errors through untouched.

Options: `upstream_url` (required; the launcher starts the upstream target named by the scenario
option `upstream` and fills this in), `pool_size` (connections, default 100 like aiohttp),
`upstream_api_key` (sent upstream as a Bearer token), `connect_timeout_s` (default 10), and the
shared `max_concurrency` (default 1024: requests wait in the pool, not here), `max_queue`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import Gauge, Histogram

from targets.admission import AsyncAdmission, Slot
from targets.api import APIError, check_api_key, error_event
from targets.asgi import SSEResponse, add_error_handlers, read_body, serve_app
from targets.config import ServeConfig
from targets.serving import PROMETHEUS_CONTENT_TYPE, Stats

# Buckets in seconds: pool waits span ~0 to the length of a whole queued generation.
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class PoolMetrics:
    """Where a proxied request's time goes, on the target's Prometheus registry."""

    def __init__(self, stats: Stats, pool_size: int) -> None:
        reg = stats.registry
        self.wait = Histogram("patternbench_proxy_pool_wait_seconds",
                              "time a request waited for a pooled upstream connection",
                              buckets=BUCKETS, registry=reg)
        self.upstream = Histogram("patternbench_proxy_upstream_seconds",
                                  "time a request held an upstream connection (send to last byte)",
                                  buckets=BUCKETS, registry=reg)
        self.in_use = Gauge("patternbench_proxy_pool_in_use", "pooled connections held by requests",
                            registry=reg)
        self.waiting = Gauge("patternbench_proxy_pool_waiting",
                             "requests waiting for a pooled connection", registry=reg)
        Gauge("patternbench_proxy_pool_size", "connection pool limit",
              registry=reg).set(pool_size)


@dataclass
class Timing:
    """One request's pool accounting, filled by aiohttp trace callbacks (`trace_request_ctx`)."""

    started: float = field(default_factory=time.perf_counter)
    queued_at: float | None = None
    waited_s: float = 0.0
    acquired: bool = False


def trace_config(metrics: PoolMetrics) -> aiohttp.TraceConfig:
    """aiohttp hooks around the connector's pool queue and connection acquisition."""
    trace = aiohttp.TraceConfig()

    async def queued_start(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: Any) -> None:
        ctx.trace_request_ctx.queued_at = time.perf_counter()
        metrics.waiting.inc()

    async def queued_end(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: Any) -> None:
        timing: Timing = ctx.trace_request_ctx
        if timing.queued_at is not None:
            timing.waited_s += time.perf_counter() - timing.queued_at
            timing.queued_at = None
        metrics.waiting.dec()

    async def acquired(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: Any) -> None:
        timing: Timing = ctx.trace_request_ctx
        if not timing.acquired:
            timing.acquired = True
            metrics.in_use.inc()

    trace.on_connection_queued_start.append(queued_start)
    trace.on_connection_queued_end.append(queued_end)
    trace.on_connection_create_end.append(acquired)
    trace.on_connection_reuseconn.append(acquired)
    return trace


OWN_OPTIONS = ("upstream_url", "pool_size", "upstream_api_key", "connect_timeout_s")


def create_app(cfg: ServeConfig) -> FastAPI:
    cfg.check_options(OWN_OPTIONS)
    upstream = str(cfg.opt("upstream_url", "")).rstrip("/")
    if not upstream.startswith(("http://", "https://")):
        raise ValueError(f"fastapi_proxy needs option upstream_url (http://...), got {upstream!r}")
    pool_size = cfg.int_opt("pool_size", 100)
    connect_timeout = float(cfg.opt("connect_timeout_s", 10.0))
    upstream_key = cfg.opt("upstream_api_key", None)
    stats = Stats(cfg.name)
    metrics = PoolMetrics(stats, pool_size)
    # The gateway's own backpressure (shared semantics): its parallelism is the pool's queue,
    # so by default it admits far more than the pool holds and lets them wait there.
    admission = AsyncAdmission(cfg.max_concurrency(1024), cfg.max_queue(), stats)
    client: dict[str, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=pool_size, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                         trace_configs=[trace_config(metrics)]) as session:
            client["session"] = session
            yield

    app = FastAPI(title=cfg.name, docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)

    def finish(timing: Timing, slot: Slot, outcome: str) -> None:
        if timing.queued_at is not None:  # cancelled in the queue: aiohttp sends no queued_end
            timing.waited_s += time.perf_counter() - timing.queued_at
            timing.queued_at = None
            metrics.waiting.dec()
        if timing.acquired:
            timing.acquired = False
            metrics.in_use.dec()
        metrics.wait.observe(timing.waited_s)
        metrics.upstream.observe(time.perf_counter() - timing.started - timing.waited_s)
        slot.release()
        stats.requests.labels(outcome).inc()

    async def forward(request: Request, path: str) -> Response:
        check_api_key(request.headers.get("authorization"), cfg.api_key)
        body = await read_body(request, cfg.limits) if request.method == "POST" else b""
        headers = {"Content-Type": request.headers.get("content-type", "application/json")}
        if upstream_key:
            headers["Authorization"] = f"Bearer {upstream_key}"
        slot = await admission.acquire()
        timing = Timing()
        try:
            resp = await client["session"].request(request.method, upstream + path, data=body,
                                                   headers=headers, trace_request_ctx=timing)
        except aiohttp.ClientError as exc:
            finish(timing, slot, "upstream_error")
            raise APIError(502, f"upstream {upstream} failed: {type(exc).__name__}: {exc}",
                           type="upstream_error") from None
        except BaseException:  # cancelled (client gone) while waiting for a connection
            finish(timing, slot, "cancelled")
            raise
        ctype = resp.headers.get("Content-Type", "application/json")
        if not ctype.startswith("text/event-stream"):
            try:
                data = await resp.read()
            finally:
                resp.release()
                finish(timing, slot, "ok" if resp.status == 200 else "upstream_status")
            return Response(data, status_code=resp.status, media_type=ctype.split(";")[0],
                            headers=retry_after(resp))
        outcome = ["cancelled"]  # what a client disconnect leaves

        async def relay() -> AsyncGenerator[bytes, None]:
            try:
                async for chunk in resp.content.iter_any():
                    yield chunk
                outcome[0] = "ok"
            except aiohttp.ClientError as exc:  # headers are sent: report it inside the stream
                outcome[0] = "upstream_error"
                yield error_event(APIError(502, f"upstream stream broke: {exc}",
                                           type="upstream_error"))

        def close() -> None:
            if outcome[0] == "ok":
                resp.release()
            else:  # drop the upstream stream so the upstream stops generating
                resp.close()
            finish(timing, slot, outcome[0])

        return SSEResponse(relay(), on_close=close)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await forward(request, "/v1/completions")

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await forward(request, "/v1/chat/completions")

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        return await forward(request, "/v1/models")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(stats.render(), media_type=PROMETHEUS_CONTENT_TYPE)

    add_error_handlers(app)
    return app


def retry_after(resp: aiohttp.ClientResponse) -> dict[str, str]:
    value = resp.headers.get("Retry-After")
    return {"Retry-After": value} if value else {}


def serve(cfg: ServeConfig) -> None:
    serve_app(create_app(cfg), cfg)
