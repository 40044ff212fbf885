"""A gateway's connection pool per load point: where its time went, from its `/metrics`.

The `fastapi_proxy` target exports two histograms: time a request waited for a pooled upstream
connection, and time it held one (upstream TTFT, generation and streaming). Scraped before and
after a load point, their sums and counts give means over that point — warm-up included, since
the scrape brackets the whole point — which the runner stores in the summary point as `proxy`::

    "proxy": {"requests": 412, "pool_size": 4, "pool_wait_ms_mean": 1830.5,
              "upstream_ms_mean": 611.2, "pool_wait_share": 0.75}

`pool_wait_share` is wait ÷ (wait + upstream): the part of the gateway's time spent queueing for a
connection rather than being served. The scrape and the parse are the telemetry scraper's
(`harness.telemetry.scrape`); only the totals kept differ.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass

from harness.summary.record import ProxyPool
from harness.telemetry.scrape import SCRAPE_TIMEOUT_S, parse_metrics
from harness.telemetry.target_http import Endpoint

POOL_WAIT = "patternbench_proxy_pool_wait_seconds"
UPSTREAM = "patternbench_proxy_upstream_seconds"
POOL_SIZE = "patternbench_proxy_pool_size"
TOTALS = frozenset({f"{POOL_WAIT}_sum", f"{UPSTREAM}_sum", f"{UPSTREAM}_count", POOL_SIZE})


@dataclass(frozen=True)
class PoolTotals:
    """Cumulative histogram sums (seconds) and counts at one scrape."""

    wait_s: float
    upstream_s: float
    count: int
    pool_size: int | None = None


def parse_pool_totals(text: str) -> PoolTotals | None:
    """The pool totals in a Prometheus text exposition, or None if it has none. Raises
    ValueError on text that is not Prometheus format."""
    values = parse_metrics(text, TOTALS)
    needed = (f"{POOL_WAIT}_sum", f"{UPSTREAM}_sum", f"{UPSTREAM}_count")
    if not all(name in values for name in needed):
        return None
    size = values.get(POOL_SIZE)
    return PoolTotals(wait_s=values[f"{POOL_WAIT}_sum"], upstream_s=values[f"{UPSTREAM}_sum"],
                      count=int(values[f"{UPSTREAM}_count"]),
                      pool_size=int(size) if size is not None else None)


def read_pool_totals(base_url: str, timeout_s: float = SCRAPE_TIMEOUT_S) -> PoolTotals | None:
    """Scrape `base_url/metrics`; None when it cannot be read or has no pool metrics."""
    try:
        status, body = Endpoint(base_url, "/metrics", timeout_s).get()
        if status != 200:
            return None
        return parse_pool_totals(body.decode("utf-8", errors="replace"))
    except (OSError, http.client.HTTPException, ValueError):
        return None


def pool_point(before: PoolTotals, after: PoolTotals) -> ProxyPool:
    """Means (ms) over the requests finished between two scrapes; None where none finished."""
    n = after.count - before.count
    wait = after.wait_s - before.wait_s
    upstream = after.upstream_s - before.upstream_s
    total = wait + upstream
    return ProxyPool(
        requests=n,
        pool_size=after.pool_size,
        pool_wait_ms_mean=wait / n * 1000 if n > 0 else None,
        upstream_ms_mean=upstream / n * 1000 if n > 0 else None,
        pool_wait_share=wait / total if n > 0 and total > 0 else None,
    )
