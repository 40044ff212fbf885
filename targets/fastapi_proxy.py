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

It takes the same request flow as every local target (`targets.server.flow`: API key, body limit,
backpressure with 503, outcome counting, OpenAI-shaped errors) on the same FastAPI
adapter (`targets.server.asgi`: `/health`, `/metrics`, drain on SIGTERM), with forwarding in place
of a model job: a gateway parses nothing and passes the upstream's bytes, status codes and errors
through untouched.

Options: `upstream_url` (required; the launcher starts the upstream target named by the scenario
option `upstream` and fills this in), `pool_size` (connections, default 100 like aiohttp),
`upstream_api_key` (sent upstream as a Bearer token), `connect_timeout_s` (default 10), and the
shared `max_concurrency` (default 1024: requests wait in the pool, not here), `max_queue`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

import aiohttp
from fastapi import FastAPI

from targets.proxy_pool import Forwarded, PoolMetrics, trace_config
from targets.server.admission import AsyncAdmission
from targets.server.api import APIError, Kind, check_api_key, error_event
from targets.server.asgi import AsyncReply, build_app, serve_app
from targets.server.config import ServeConfig, positive
from targets.server.exchange import Call, Events, Reply
from targets.server.stats import Stats

PATHS: dict[Kind, str] = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}


@dataclass(frozen=True)
class ProxyOptions:
    upstream_url: str  # http(s) base URL of the upstream server
    pool_size: int = positive(100)  # pooled upstream connections (aiohttp's default)
    upstream_api_key: str | None = None  # sent upstream as a Bearer token
    connect_timeout_s: float = positive(10.0)

    def __post_init__(self) -> None:
        if not self.upstream_url.startswith(("http://", "https://")):
            raise ValueError("target option upstream_url must be an http(s) URL, "
                             f"got {self.upstream_url!r}")


class Gateway:
    """The request flow with forwarding in place of a model job (`targets.server.asgi.Handler`)."""

    def __init__(self, cfg: ServeConfig, opts: ProxyOptions, stats: Stats) -> None:
        self.cfg, self.opts, self.stats = cfg, opts, stats
        self.upstream = opts.upstream_url.rstrip("/")
        self.metrics = PoolMetrics(stats, opts.pool_size)
        # Its parallelism is the pool's queue: by default it admits far more than the pool
        # holds and lets them wait there.
        self.admission = AsyncAdmission(cfg.shared.concurrency(1024), cfg.shared.max_queue, stats)
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """The one shared client (created inside the server's event loop)."""
        connector = aiohttp.TCPConnector(limit=self.opts.pool_size, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.opts.connect_timeout_s)
        self.session = aiohttp.ClientSession(connector=connector, timeout=timeout,
                                             trace_configs=[trace_config(self.metrics)])

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def respond(self, call: Call, kind: Kind) -> AsyncReply:
        return await self.forward(call, PATHS[kind])

    async def models(self, call: Call) -> AsyncReply:
        return await self.forward(call, "/v1/models")

    async def forward(self, call: Call, path: str) -> AsyncReply:
        check_api_key(call.header("authorization"), self.cfg.api_key)
        body = await call.body(self.cfg.limits) if call.method == "POST" else b""
        headers = {"Content-Type": call.header("content-type") or "application/json"}
        if self.opts.upstream_api_key:
            headers["Authorization"] = f"Bearer {self.opts.upstream_api_key}"
        request = Forwarded(await self.admission.acquire(), self.stats, self.metrics)
        assert self.session is not None, "open() runs at startup"
        try:
            resp = await self.session.request(call.method, self.upstream + path, data=body,
                                              headers=headers, trace_request_ctx=request)
        except aiohttp.ClientError as exc:
            request.end("upstream_error")
            raise APIError(502, f"upstream {self.upstream} failed: {type(exc).__name__}: {exc}",
                           type="upstream_error") from None
        except BaseException:  # cancelled (client gone) while waiting for a connection
            request.end("cancelled")
            raise
        ctype = resp.headers.get("Content-Type", "application/json")
        if ctype.startswith("text/event-stream"):
            return Events(relay(resp, request), on_close=lambda: finish(resp, request))
        try:
            data = await resp.read()
        finally:
            resp.release()
            request.end("ok" if resp.status == 200 else "upstream_status")
        retry = resp.headers.get("Retry-After")
        return Reply(resp.status, data, media_type=ctype.split(";")[0],
                     headers={"Retry-After": retry} if retry else {})


async def relay(resp: aiohttp.ClientResponse, request: Forwarded) -> AsyncGenerator[bytes, None]:
    """The upstream's stream, chunk by chunk as it arrives."""
    try:
        async for chunk in resp.content.iter_any():
            yield chunk
        request.outcome = "ok"
    except aiohttp.ClientError as exc:  # headers are sent: report it inside the stream
        request.outcome = "upstream_error"
        yield error_event(APIError(502, f"upstream stream broke: {exc}", type="upstream_error"))


def finish(resp: aiohttp.ClientResponse, request: Forwarded) -> None:
    if request.outcome == "ok":
        resp.release()
    else:  # drop the upstream stream so the upstream stops generating
        resp.close()
    request.end()


def create_app(cfg: ServeConfig) -> FastAPI:
    gateway = Gateway(cfg, cfg.pattern_options(ProxyOptions), Stats(cfg.name))
    return build_app(cfg, gateway, stats=gateway.stats, on_startup=[gateway.open],
                     on_shutdown=[gateway.close])


def serve(cfg: ServeConfig) -> None:
    serve_app(create_app(cfg), cfg)
