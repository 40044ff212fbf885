"""Why a pattern loses: one sentence per cause the data of its failing point shows.

Each check reads one kind of evidence and returns a sentence text with its numbers, or None
when the point does not carry that evidence (no proxy pool, no probe, no server gauges ...):

- the SLO limit that broke (the share's percentile of TTFT/TPOT/E2E against its limit);
- 503s (refused: backpressure) and other failures (timeouts, errors);
- a gateway's exhausted connection pool (`proxy.pool_wait_share`);
- `/health` stalled (a tenth of its probes unanswered, or its p90 at half the probe timeout):
  on an asyncio server the event loop was blocked, on a threaded one every thread was busy;
- queueing for the models: the server's queue filled while its batch gauge shows one
  request at a time; without that gauge, only that requests waited (TTFT grew with the load
  while throughput stayed flat, against the target's lowest level);
- head-of-line blocking: a request-level batching target (a batch runs to its longest answer)
  at a point whose answers had different lengths (natural lengths, or drawn ones).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from harness.run.capacity import judge, measured_again
from harness.summary.record import Distribution, PointSummary
from harness.verdict.text import ms, pct, ratio, share_percentile, share_text, short_level
from targets import TARGETS

POOL_BOUND_SHARE = 0.5
"""A gateway whose requests spend at least half of their time waiting for a pooled connection
(wait / (wait + upstream)) is bound by its pool, not by the upstream model."""
HEALTH_STALL_SHARE = 0.5
"""A /health probe p90 at half its timeout is a stall (a free server answers in ~1 ms)."""
HEALTH_CENSORED_SHARE = 0.1
"""A tenth of the probes unanswered within the timeout is a stall; one of fifty is not."""
SPREAD_LENGTHS = 1.5
"""Answers whose p90 length is at least this many times their median differ enough for a batch
run to its longest answer to leave most of its rows idle for a good part of it."""
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
    judged = judge(point, share)
    if judged.judged == "unsure" and judged.ci is not None:
        outcome = (": measured again it stayed unsure, so it counts as a fail."
                   if measured_again(point)  # a sweep measures a level once
                   else "; it does not count as a pass (a longer point, or a capacity search, "
                   "which runs a level until it can tell, would).")
        return (f"At {short_level(point)} {share_text(good.fraction, share)} of {target}'s "
                f"requests met the SLO ({good.good_requests} of {good.counted}), too few to "
                f"show {pct(share)} with confidence (95% interval {pct(judged.ci[0])}–"
                f"{pct(judged.ci[1])}){outcome}")
    name = share_percentile(share)
    over: list[tuple[str, float]] = []
    within: list[tuple[str, float]] = []
    for key, limit in good.slo.items():
        source = SLO_SOURCES.get(key)
        dist = getattr(point, source[0]) if source else None
        if not source or not isinstance(dist, Distribution):
            continue
        value = f"{source[1]} {name} {ms(getattr(dist, name))}"
        (over if getattr(dist, name) > limit else within).append((value, limit))
    failed = _failed(point)
    if over:
        broke = ": " + "; ".join(f"{value} against {ms(limit)}" for value, limit in over)
        broke += f" ({failed} too)" if failed else ""
    elif failed:
        broke = f": {failed}, and a failed request meets no limit"
    elif not within:
        broke = (": none of the requests it sent after the warm-up finished within the point, "
                 "so it has no latency percentile to show (a longer duration_s measures them)")
    else:
        broke = (f": {', '.join(value for value, _ in within)} each within its limit, so the "
                 "misses are requests no single percentile shows: over different limits each, "
                 "or without the value a limit needs (fewer than 2 tokens give no TPOT)")
    of = f" ({good.good_requests} of {good.counted})" if good.counted is not None else ""
    return (f"At {short_level(point)} only {share_text(good.fraction, share)} of {target}'s "
            f"requests met the SLO{of}{broke}.")


def _failed(point: PointSummary) -> str:
    """'30 of 100 refused with 503, 2 timed out', or '' when none failed."""
    req = point.requests
    kinds = {"refused with 503": req.refused, "timed out": req.timeout,
             "HTTP errors": req.http_error, "connection errors": req.conn_error,
             "truncated": req.truncated}
    parts = [f"{n} {what}" for what, n in kinds.items() if n]
    return f"{sum(kinds.values())} of {req.total} failed: {', '.join(parts)}" if parts else ""


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
    if probe is None or probe.latency_ms is None or not probe.sent:
        return None
    p90 = probe.latency_ms.p90
    if probe.censored < HEALTH_CENSORED_SHARE * probe.sent and (
            p90 < HEALTH_STALL_SHARE * probe.timeout_ms):
        return None
    waited = (f"{probe.censored} of {probe.sent} probes unanswered within "
              f"{ms(probe.timeout_ms)}" if probe.censored
              else f"{probe.sent} probe{'' if probe.sent == 1 else 's'} answered in the point")
    missed = (f", {probe.missed_ticks} probe ticks missed while one waited"
              if probe.missed_ticks else "")
    info = TARGETS.get(point.target_name)
    why = ("the model blocks the event loop" if info is not None and info.event_loop
           else "every request thread was busy" if info is not None and info.local
           else "the server answered late")
    return (f"{target}'s /health stalled at {short_level(point)}: probe p90 {ms(p90)}, "
            f"{waited}{missed}; {why}.")


def queueing(target: str, point: PointSummary, base: PointSummary) -> str | None:
    server = point.telemetry.server if point.telemetry is not None else None
    if (server is not None and server.queue_depth_max and server.batch_size_max is not None
            and server.batch_size_max <= 1 and server.in_flight_max):
        running = server.in_flight_max  # requests admitted to a model slot at once
        models = "its one model" if running <= 1 else f"its {running:g} models, one request each"
        return (f"Requests queue in {target} at {short_level(point)} for {models}: "
                f"up to {server.queue_depth_max:g} waited in the server's queue while at most "
                f"{running:g} ran at once and its batch gauge never passed "
                f"{server.batch_size_max:g}.")
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
    server = point.telemetry.server if point.telemetry is not None else None
    batches = (f"; batches of up to {server.batch_size_max:g} ran, so the model itself was the "
               "limit" if server is not None and server.batch_size_max is not None
               and server.batch_size_max > 1 else "")
    return (f"Requests waited in {target}: from {short_level(base)} to {short_level(point)} "
            f"TTFT p50 grew {ratio(t1, t0)} ({ms(t0)} → {ms(t1)}) while output throughput "
            f"grew {ratio(k1, k0)} ({k0:,.0f} → {k1:,.0f} tok/s){conc}{batches}.")


def head_of_line(target: str, point: PointSummary, base: PointSummary) -> str | None:
    """A request-level batch runs until its longest answer ends: with spread lengths, short
    answers' rows idle and newcomers wait for the whole batch."""
    info = TARGETS.get(point.target_name)
    lengths = point.output_tokens
    if (info is None or info.module != "targets.fastapi_dynamic_batching" or lengths is None
            or lengths.count < 2 or lengths.p50 <= 0
            or lengths.p90 < SPREAD_LENGTHS * lengths.p50):
        return None
    server = point.telemetry.server if point.telemetry is not None else None
    batch = (f"; its batches held up to {server.batch_size_max:g} requests"
             if server is not None and server.batch_size_max else "")
    ttft = _ttft_p50(point)
    waited = (f", and a request arriving meanwhile waited for the whole batch (TTFT p50 "
              f"{ms(ttft)})" if ttft is not None else "")
    return (f"Head-of-line blocking in {target} at {short_level(point)}: a batch runs until its "
            f"longest answer ends, and its answers ranged widely (median {lengths.p50:,.0f} "
            f"tokens, p90 {lengths.p90:,.0f}, longest {lengths.max:,.0f}){batch}: a short "
            f"answer's row idled up to {lengths.max / lengths.p50:.1f}× its own length"
            f"{waited}.")


def _ttft_p50(point: PointSummary) -> float | None:
    return point.ttft_sched_ms.p50 if point.ttft_sched_ms is not None else None


def _level(point: PointSummary) -> float | None:
    load = point.load
    return float(load.concurrency) if load.concurrency is not None else load.rate_rps


CAUSES: Mapping[str, Cause] = {"refused": refused, "failures": failures,
                               "pool": pool_exhausted, "health": health_stalled,
                               "queueing": queueing, "head_of_line": head_of_line}


def causes(target: str, point: PointSummary, base: PointSummary) -> list[str]:
    """Every cause the failing `point` shows (`base`: the target's lowest measured level)."""
    return [text for cause in CAUSES.values() if (text := cause(target, point, base))]
