"""Why a pattern loses: one sentence per cause the data of its failing point shows.

Each check reads one kind of evidence and returns a sentence text with its numbers, or None
when the point does not carry that evidence (no proxy pool, no probe, no server gauges ...):

- the SLO limit that broke (the share's percentile of TTFT/TPOT/E2E against its limit);
- 503s (refused: backpressure) and other failures (timeouts, errors);
- a gateway's exhausted connection pool (`proxy.pool_wait_share`);
- `/health` stalled by a blocked event loop (probe latency, censored probes);
- queueing in front of one model: the server's queue with batches of one, or TTFT growing with
  the load while throughput stays flat (compared with the target's lowest level).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from harness.summary.record import Distribution, PointSummary
from harness.verdict.text import ms, pct, ratio, share_percentile, short_level

POOL_BOUND_SHARE = 0.5
"""A gateway whose requests spend at least half of their time waiting for a pooled connection
(wait / (wait + upstream)) is bound by its pool, not by the upstream model."""
HEALTH_STALL_SHARE = 0.5
"""A /health probe whose p99 reaches half its timeout is stalled (a free loop answers in ~1 ms)."""
FLAT_THROUGHPUT = 1.5
"""Throughput that grew by less than this factor while the load grew at least twice as much is
flat: the extra requests only waited."""
SLO_SOURCES = {"ttft_ms": ("ttft_sched_ms", "TTFT"), "tpot_ms": ("tpot_ms", "TPOT"),
               "e2e_ms": ("e2e_sched_ms", "E2E")}
"""The distribution each SLO limit is judged on (from scheduled: what the user waited)."""

Cause = Callable[[str, PointSummary, PointSummary], str | None]


def slo_breach(target: str, point: PointSummary, share: float) -> str | None:
    """'At c=8 only 45% of X's requests met the SLO: TTFT p90 1,234 ms against 1,000 ms.'"""
    good = point.goodput
    if good is None or good.fraction is None:
        return None
    name = share_percentile(share)
    over: list[tuple[str, float]] = []
    within: list[tuple[str, float]] = []
    counts: list[int] = []
    for key, limit in good.slo.items():
        source = SLO_SOURCES.get(key)
        dist = getattr(point, source[0]) if source else None
        if not source or not isinstance(dist, Distribution):
            continue
        counts.append(dist.count)
        value = f"{source[1]} {name} {ms(getattr(dist, name))}"
        (over if getattr(dist, name) > limit else within).append((value, limit))
    if over:
        broke = ": " + "; ".join(f"{value} against {ms(limit)}" for value, limit in over)
    elif not within:  # every request that ended in the window was sent during the warm-up
        broke = (": none of the requests it sent after the warm-up finished within the point, "
                 "so it has no latency percentile to show (a longer duration_s measures them)")
    else:  # goodput counts every request ended in the window, percentiles those sent after
        broke = (f": over the {max(counts)} requests sent after the warm-up, "
                 f"{', '.join(value for value, _ in within)} are within the limits, so the "
                 "misses are among those sent during the warm-up, or split across limits")
    return (f"At {short_level(point)} only {pct(good.fraction)} of {target}'s requests met the "
            f"SLO ({good.good_requests} of {point.requests.total}){broke}.")


def refused(target: str, point: PointSummary, base: PointSummary) -> str | None:
    n = point.requests.refused
    if not n:
        return None
    return (f"{target} refused {n} of {point.requests.total} requests with 503 at "
            f"{short_level(point)}: it sheds load (backpressure) rather than queue it.")


def failures(target: str, point: PointSummary, base: PointSummary) -> str | None:
    req = point.requests
    kinds = {"timed out": req.timeout, "HTTP errors": req.http_error,
             "connection errors": req.conn_error, "truncated": req.truncated}
    parts = [f"{n} {what}" for what, n in kinds.items() if n]
    if not parts:
        return None
    return (f"{sum(kinds.values())} of {req.total} requests to {target} failed at "
            f"{short_level(point)} ({', '.join(parts)}).")


def pool_exhausted(target: str, point: PointSummary, base: PointSummary) -> str | None:
    pool = point.proxy
    if pool is None or pool.pool_wait_share is None or pool.pool_wait_share < POOL_BOUND_SHARE:
        return None
    size = f" of {pool.pool_size} connections" if pool.pool_size is not None else ""
    times = ""
    if pool.pool_wait_ms_mean is not None and pool.upstream_ms_mean is not None:
        times = (f" ({ms(pool.pool_wait_ms_mean)} mean wait vs {ms(pool.upstream_ms_mean)} "
                 "upstream)")
    return (f"{target}'s gateway pool{size} is exhausted at {short_level(point)}: requests "
            f"spent {pct(pool.pool_wait_share)} of their gateway time waiting for a "
            f"connection{times}.")


def health_stalled(target: str, point: PointSummary, base: PointSummary) -> str | None:
    probe = point.probe
    if probe is None or probe.latency_ms is None:
        return None
    p99 = probe.latency_ms.p99
    if not probe.censored and p99 < HEALTH_STALL_SHARE * probe.timeout_ms:
        return None
    waited = (f"{probe.censored} of {probe.sent} probes unanswered within "
              f"{ms(probe.timeout_ms)}" if probe.censored
              else f"{probe.sent} probe{'' if probe.sent == 1 else 's'} answered in the point")
    missed = (f", {probe.missed_ticks} probe ticks missed while one waited"
              if probe.missed_ticks else "")
    return (f"{target}'s /health stalled at {short_level(point)}: probe p99 {ms(p99)}, "
            f"{waited}{missed}; the model blocks the event loop.")


def queueing(target: str, point: PointSummary, base: PointSummary) -> str | None:
    server = point.telemetry.server if point.telemetry is not None else None
    if (server is not None and server.queue_depth_max and (server.batch_size_max or 0) <= 1):
        batches = (" while batches held one request" if server.batch_size_max == 1 else "")
        return (f"Requests queue in front of one model in {target} at {short_level(point)}: "
                f"up to {server.queue_depth_max:g} waited in the server's queue{batches}.")
    return _flat_throughput(target, point, base)


def _flat_throughput(target: str, point: PointSummary, base: PointSummary) -> str | None:
    values = (_level(base), _level(point), _ttft_p50(base), _ttft_p50(point),
              base.throughput.output_tok_s, point.throughput.output_tok_s)
    known = [v for v in values if v is not None and v > 0]
    if len(known) < len(values):
        return None
    l0, l1, t0, t1, k0, k1 = known
    load_growth = l1 / l0
    if load_growth < 2 or k1 / k0 >= FLAT_THROUGHPUT or t1 / t0 < load_growth / 2:
        return None
    conc = (f", {point.achieved_concurrency:.1f} in flight on average"
            if point.achieved_concurrency is not None else "")
    return (f"Requests queue in front of one model in {target}: from {short_level(base)} to "
            f"{short_level(point)} TTFT p50 grew {ratio(t1, t0)} ({ms(t0)} → {ms(t1)}) while "
            f"output throughput grew {ratio(k1, k0)} ({k0:,.0f} → {k1:,.0f} tok/s){conc}.")


def _ttft_p50(point: PointSummary) -> float | None:
    return point.ttft_sched_ms.p50 if point.ttft_sched_ms is not None else None


def _level(point: PointSummary) -> float | None:
    load = point.load
    return float(load.concurrency) if load.concurrency is not None else load.rate_rps


CAUSES: Mapping[str, Cause] = {"refused": refused, "failures": failures,
                               "pool": pool_exhausted, "health": health_stalled,
                               "queueing": queueing}


def causes(target: str, point: PointSummary, base: PointSummary) -> list[str]:
    """Every cause the failing `point` shows (`base`: the target's lowest measured level)."""
    return [text for cause in CAUSES.values() if (text := cause(target, point, base))]
