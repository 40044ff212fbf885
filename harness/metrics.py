"""Pure metrics: samples (and telemetry) in, numbers out. Nothing here prints or plots.

Definitions (the report's glossary maps them to vLLM / GuideLLM / AIPerf names):

- TTFT: first token − sent (service) and first token − scheduled (what the user waited).
- TPOT: per request, (E2E − TTFT) / (output tokens − 1); requests with one token have none.
- ITL: every gap between consecutive token arrivals, pooled over requests.
- E2E: done − sent, and done − scheduled (`e2e_sched_ms`, queueing in the client included).
- Which requests count: those that finish (or fail) after warm-up ends. A request sent during
  warm-up that is still running when it ends counts, so a slow pattern at high concurrency, whose
  first wave outlasts the whole point, still yields latencies instead of nothing.
- Throughput: completions per second over the measured window, which runs from the end of
  warm-up to the last completion of a counted request; output tokens per second counts only the
  tokens that arrived inside that window (streaming: by their arrival times; non-streaming:
  pro rata over the request's time in the window).

An empty metric is `None`, never a silent 0.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from harness.samples import Sample
from harness.summary import Distribution, Goodput, PointMetrics, Requests, Throughput


def ttft_s(s: Sample) -> float | None:
    return None if s.first_token_at is None else s.first_token_at - s.sent_at


def tpot_s(s: Sample) -> float | None:
    if s.first_token_at is None or s.done_at is None or s.output_tokens < 2:
        return None
    return (s.done_at - s.first_token_at) / (s.output_tokens - 1)


def itl_s(s: Sample) -> list[float]:
    t = s.token_times
    return [b - a for a, b in itertools.pairwise(t)]


def finished_at(s: Sample) -> float:
    """When a request ended: its completion, else (timeouts, connection errors) when sent."""
    return s.done_at if s.done_at is not None else s.sent_at


def measured(samples: Iterable[Sample], warmup_end: float) -> list[Sample]:
    """Samples that finished at or after the end of warm-up: the ones metrics count."""
    return [s for s in samples if finished_at(s) >= warmup_end]


def tokens_in_window(s: Sample, start: float) -> float:
    """Output tokens of `s` that arrived at or after `start` (pro rata without token times)."""
    if s.token_times:
        return float(sum(1 for t in s.token_times if t >= start))
    if s.done_at is None or s.done_at <= s.sent_at:
        return float(s.output_tokens)
    inside = (s.done_at - max(s.sent_at, start)) / (s.done_at - s.sent_at)
    return s.output_tokens * min(1.0, max(0.0, inside))


def meets_slo(s: Sample, slo: Mapping[str, float]) -> bool:
    """Whether an ok sample meets every SLO given (keys `ttft_ms`, `tpot_ms`, `e2e_ms`).

    TTFT and E2E count from `scheduled_at`: goodput is about what the user waited, so queueing
    in the client counts against the SLO.
    """
    if not s.ok:
        return False
    ttft = None if s.first_token_at is None else s.first_token_at - s.scheduled_at
    checks = {"ttft_ms": ttft, "tpot_ms": tpot_s(s),
              "e2e_ms": None if s.done_at is None else s.done_at - s.scheduled_at}
    for key, limit in slo.items():
        value = checks.get(key)
        if value is not None and value * 1000 > limit:
            return False
    return True


def summarize(
    samples: Sequence[Sample],
    *,
    warmup_end: float = 0.0,
    slo: Mapping[str, float] | None = None,
) -> PointMetrics:
    """Metrics of one target × load point (`harness.summary.PointMetrics`).

    `warmup_end` is on the run clock; samples that finished before it are excluded.
    """
    counted = measured(samples, warmup_end)
    ok = [s for s in counted if s.ok]
    statuses = Counter(s.status for s in counted)
    http_codes = Counter(str(s.http_status) for s in counted if s.status == "http_error")
    ends = [s.done_at for s in ok if s.done_at is not None]
    window = (max(ends) - warmup_end) if ends else 0.0
    busy = sum((s.done_at - max(s.sent_at, warmup_end)) for s in ok if s.done_at is not None)
    return PointMetrics(
        requests=Requests(ok=statuses["ok"], http_error=statuses["http_error"],
                          refused=statuses["refused"], timeout=statuses["timeout"],
                          truncated=statuses["truncated"], conn_error=statuses["conn_error"],
                          total=len(counted)),
        http_errors=dict(http_codes),
        **_latencies(ok, counted),
        output_tokens=Distribution.of(float(s.output_tokens) for s in ok),
        throughput=_throughput(ok, warmup_end, window),
        goodput=_goodput(ok, counted, slo, window) if slo else None,
        achieved_concurrency=busy / window if window > 0 else None,
        token_counts_from=tuple(sorted({s.tokens_source for s in ok})),
    )


def _latencies(ok: Sequence[Sample], counted: Sequence[Sample]) -> dict[str, Distribution | None]:
    """The latency distributions of a point, in ms, keyed by their `PointMetrics` field."""
    ms = 1000.0
    return {
        "ttft_ms": Distribution.of(v * ms for s in ok if (v := ttft_s(s)) is not None),
        "ttft_sched_ms": Distribution.of((s.first_token_at - s.scheduled_at) * ms for s in ok
                                         if s.first_token_at is not None),
        "ttfb_ms": Distribution.of((s.first_byte_at - s.sent_at) * ms for s in ok
                                   if s.first_byte_at is not None),
        "tpot_ms": Distribution.of(v * ms for s in ok if (v := tpot_s(s)) is not None),
        "itl_ms": Distribution.of(g * ms for s in ok for g in itl_s(s)),
        "e2e_ms": Distribution.of((s.done_at - s.sent_at) * ms for s in ok
                                  if s.done_at is not None),
        "e2e_sched_ms": Distribution.of((s.done_at - s.scheduled_at) * ms for s in ok
                                        if s.done_at is not None),
        "dispatch_lag_ms": Distribution.of((s.sent_at - s.scheduled_at) * ms for s in counted),
    }


def _throughput(ok: Sequence[Sample], warmup_end: float, window: float) -> Throughput:
    if window <= 0:
        return Throughput(window_s=None, req_s=None, output_tok_s=None, input_tok_s=None)
    out_tokens = sum(tokens_in_window(s, warmup_end) for s in ok)
    in_tokens = sum(s.prompt_tokens for s in ok if s.sent_at >= warmup_end)
    return Throughput(window_s=window, req_s=len(ok) / window,
                      output_tok_s=out_tokens / window, input_tok_s=in_tokens / window)


def _goodput(ok: Sequence[Sample], counted: Sequence[Sample], slo: Mapping[str, float],
             window: float) -> Goodput:
    good = [s for s in ok if meets_slo(s, slo)]
    return Goodput(slo=dict(slo), good_requests=len(good),
                   req_s=len(good) / window if window > 0 else None,
                   fraction=len(good) / len(counted) if counted else None)
