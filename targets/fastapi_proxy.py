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

It runs the same request flow as every local target (`targets.server.flow`: API key, drain and
serving check, body limit, backpressure with 503, outcome counting, OpenAI-shaped errors) on the
same FastAPI adapter (`targets.server.asgi`: `/health`, `/metrics`, drain on SIGTERM), with the
strategy `Forward` in place of a model job: a gateway parses nothing and passes the upstream's
bytes, status codes and errors through untouched. Its own answers are the flow's: 401, 413, 503
when its queue is full or it drains (at the drain's cutoff, requests still waiting for a pooled
connection get that 503 too), and 502 when the upstream cannot be reached.

Options: `upstream_url` (required; the launcher starts the upstream target named by the scenario
option `upstream` and fills this in), `pool_size` (connections, default 100 like aiohttp),
`upstream_api_key` (sent upstream as a Bearer token), `connect_timeout_s` (default 10), and the
shared `max_concurrency` (default 1024: requests wait in the pool, not here), `max_queue`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import aiohttp
from fastapi import FastAPI

from targets.proxy_pool import Forwarded, PoolMetrics, trace_config
from targets.server.admission import Slot
from targets.server.api import APIError, error_event
from targets.server.asgi import build_app, serve_app
from targets.server.config import ServeConfig, positive
from targets.server.exchange import AsyncReply, Call, Events, Reply
from targets.server.flow import AsyncFlow, Route
from targets.server.stats import Stats

PATHS: dict[Route, str] = {"completions": "/v1/completions", "chat": "/v1/chat/completions",
                           "models": "/v1/models"}


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


class Forward:
    """The flow's strategy for a gateway: forward each request upstream through ONE pooled
    client session (`targets.server.flow.Strategy`)."""

    def __init__(self, opts: ProxyOptions, stats: Stats) -> None:
        self.opts, self.stats = opts, stats
        self.upstream = opts.upstream_url.rstrip("/")
        self.metrics = PoolMetrics(stats, opts.pool_size)
        self.session: aiohttp.ClientSession | None = None
        self.sending: set[Forwarding] = set()  # waiting for a connection or the headers

    async def open(self) -> None:
        """The one shared client (created inside the server's event loop)."""
        connector = aiohttp.TCPConnector(limit=self.opts.pool_size, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.opts.connect_timeout_s)
        self.session = aiohttp.ClientSession(connector=connector, timeout=timeout,
                                             trace_configs=[trace_config(self.metrics)])

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def listing(self) -> None:
        """None: `/v1/models` is the upstream's, forwarded like any request."""

    def prepare(self, route: Route, content_type: str | None, body: bytes) -> Forwarding:
        return Forwarding(self, route, content_type, body)  # a gateway parses nothing

    def refuse_waiting(self, error: APIError) -> None:
        """The drain's cutoff: requests still queued for a pooled connection get `error`."""
        for request in list(self.sending):
            if request.forwarded is not None and request.forwarded.queued_at is not None:
                request.refuse(error)


class Forwarding:
    """One request on its way upstream; once admitted its `Forwarded` outcome keeps the pool
    accounting (aiohttp's trace hooks fill it in)."""

    def __init__(self, gateway: Forward, route: Route, content_type: str | None,
                 body: bytes) -> None:
        self.gateway = gateway
        self.method = "GET" if route == "models" else "POST"
        self.url = gateway.upstream + PATHS[route]
        self.body = body
        self.headers = {"Content-Type": content_type or "application/json"}
        if gateway.opts.upstream_api_key:
            self.headers["Authorization"] = f"Bearer {gateway.opts.upstream_api_key}"
        self.forwarded: Forwarded | None = None
        self.sent: asyncio.Future[aiohttp.ClientResponse] | None = None
        self.refusal: APIError | None = None

    def begin(self, slot: Slot) -> Forwarded:
        self.forwarded = Forwarded(slot, self.gateway.stats, self.gateway.metrics)
        return self.forwarded

    def refuse(self, error: APIError) -> None:
        self.refusal = error
        if self.sent is not None:
            self.sent.cancel()

    async def run(self, call: Call) -> AsyncReply:
        request = self.forwarded
        assert request is not None, "begin() comes first"
        resp = await self._send(request)
        ctype = resp.headers.get("Content-Type", "application/json")
        if ctype.startswith("text/event-stream"):
            return Events(relay(resp, request), on_close=lambda: finish(resp, request))
        try:
            data = await resp.read()
        finally:
            resp.release()
            request.outcome = "ok" if resp.status == 200 else "upstream_status"
        retry = resp.headers.get("Retry-After")
        return Reply(resp.status, data, media_type=ctype.split(";")[0],
                     headers={"Retry-After": retry} if retry else {})

    async def _send(self, request: Forwarded) -> aiohttp.ClientResponse:
        """The upstream's response headers, through a pooled connection (502 if it fails)."""
        session = self.gateway.session
        assert session is not None, "open() runs at startup"
        self.sent = asyncio.ensure_future(session.request(
            self.method, self.url, data=self.body, headers=self.headers,
            trace_request_ctx=request))
        self.gateway.sending.add(self)
        try:
            return await self.sent
        except aiohttp.ClientError as exc:
            request.outcome = "upstream_error"
            raise APIError(502, f"upstream {self.gateway.upstream} failed: "
                           f"{type(exc).__name__}: {exc}", type="upstream_error") from None
        except asyncio.CancelledError:  # the client left, or the drain refused it in the pool
            task = asyncio.current_task()
            if self.refusal is None or (task is not None and task.cancelling()):
                raise
            request.outcome = "rejected"
            raise self.refusal from None
        finally:
            self.gateway.sending.discard(self)


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


def create_app(cfg: ServeConfig) -> FastAPI:
    stats = Stats(cfg.name)
    forward = Forward(cfg.pattern_options(ProxyOptions), stats)
    # Its parallelism is the pool's queue: by default it admits far more than the pool holds
    # and lets them wait there.
    flow = AsyncFlow(cfg, forward, stats, concurrency=1024)
    return build_app(cfg, flow, stats=stats, on_startup=[forward.open],
                     on_shutdown=[forward.close])


def serve(cfg: ServeConfig) -> None:
    serve_app(create_app(cfg), cfg)
