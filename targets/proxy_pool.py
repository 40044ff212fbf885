"""`fastapi_proxy`'s private helper: where a forwarded request's time goes in the pool.

aiohttp's trace hooks (`trace_config`) mark when a request starts and stops waiting for a pooled
connection and when it gets one; `Forwarded` — the request's `Outcome`, passed to aiohttp as its
`trace_request_ctx` — keeps those times and, when the request ends, records them in
`PoolMetrics` on the target's Prometheus registry:

- `patternbench_proxy_pool_wait_seconds` (histogram): time waiting for a pooled connection,
- `patternbench_proxy_upstream_seconds` (histogram): time holding one (send to last byte),
- `patternbench_proxy_pool_in_use`, `patternbench_proxy_pool_waiting`,
  `patternbench_proxy_pool_size` (gauges).
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import aiohttp
from prometheus_client import Gauge, Histogram

from targets.server.admission import Slot
from targets.server.flow import Outcome
from targets.server.stats import Stats

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


class Forwarded(Outcome):
    """One forwarded request holding its slot, with its pool accounting (filled by aiohttp's
    trace hooks through `trace_request_ctx`) recorded in `PoolMetrics` when it ends."""

    def __init__(self, slot: Slot, stats: Stats, metrics: PoolMetrics) -> None:
        super().__init__(slot, stats, outcome="cancelled")  # what a client disconnect leaves
        self.metrics = metrics
        self.started = time.perf_counter()
        self.queued_at: float | None = None
        self.waited_s = 0.0
        self.acquired = False

    def end(self, outcome: str | None = None) -> None:
        if not self.ended:
            if self.queued_at is not None:  # cancelled in the queue: aiohttp sends no queued_end
                self.waited_s += time.perf_counter() - self.queued_at
                self.queued_at = None
                self.metrics.waiting.dec()
            if self.acquired:
                self.acquired = False
                self.metrics.in_use.dec()
            self.metrics.wait.observe(self.waited_s)
            self.metrics.upstream.observe(time.perf_counter() - self.started - self.waited_s)
        super().end(outcome)


def trace_config(metrics: PoolMetrics) -> aiohttp.TraceConfig:
    """aiohttp hooks around the connector's pool queue and connection acquisition."""
    trace = aiohttp.TraceConfig()

    async def queued_start(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: Any) -> None:
        ctx.trace_request_ctx.queued_at = time.perf_counter()
        metrics.waiting.inc()

    async def queued_end(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: Any) -> None:
        request: Forwarded = ctx.trace_request_ctx
        if request.queued_at is not None:
            request.waited_s += time.perf_counter() - request.queued_at
            request.queued_at = None
        metrics.waiting.dec()

    async def acquired(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: Any) -> None:
        request: Forwarded = ctx.trace_request_ctx
        if not request.acquired:
            request.acquired = True
            metrics.in_use.inc()

    trace.on_connection_queued_start.append(queued_start)
    trace.on_connection_queued_end.append(queued_end)
    trace.on_connection_create_end.append(acquired)
    trace.on_connection_reuseconn.append(acquired)
    return trace
