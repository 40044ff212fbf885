"""Pure metrics: samples (and telemetry) in, numbers out. Nothing here prints or plots.

Definitions (the report's glossary maps them to vLLM / GuideLLM / AIPerf names):

- TTFT: first token − sent (service) and first token − scheduled (what the user waited).
- TPOT: per request, (E2E − TTFT) / (output tokens − 1); requests with one token have none.
- ITL: every gap between consecutive token arrivals, pooled over requests.
- E2E: done − sent, and done − scheduled (`e2e_sched_ms`, queueing in the client included).
- When a request ended (`ended_at`): `done_at`, else `failed_at` (the timeout fired, the error
  body was read, the connection broke), else — old samples only — `sent_at`.

Which requests count where, with the measured window W = [warmup_end, load_end]:

- Outcomes (`requests`): every request that ended at or after `warmup_end`, also those that end
  after `load_end` while the driver drains (a hanging target's timeouts count). A stream its
  client abandoned (`[fault] disconnect`) is counted apart (`abandoned`), outside `total`: it
  is no error, no failure and no request the target was asked to complete, so it is in no
  error rate and no goodput denominator.
- Latency distributions: ok requests *sent* at or after `warmup_end` (the cold, all-at-once
  first wave of warm-up stays out); `dispatch_lag_ms` takes every request sent then.
- Throughput, over W only (`window_s` = load_end − warmup_end, whatever happened last):
  `req_s` and `input_tok_s` count ok requests completed inside W; `output_tok_s` counts the
  output tokens of ok requests that arrived inside W (streaming: by their chunk times, each chunk
  carrying output_tokens / chunks tokens when usage says a chunk held several; non-streaming:
  pro rata over the request's time in W). In a steady state req_s × mean output tokens equals
  output_tok_s, wherever the request waves fall against the boundaries.
- Goodput: a request passes when it is ok and every SLO metric is known and within its limit;
  `good_requests`/`fraction` are over the counted outcomes, `req_s` over W's completions.

An empty metric is `None`, never a silent 0.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from harness.samples import Sample
from harness.summary.record import Distribution, Goodput, PointMetrics, Requests, Throughput


def ttft_s(s: Sample) -> float | None:
    return None if s.first_token_at is None else s.first_token_at - s.sent_at


def tpot_s(s: Sample) -> float | None:
    if s.first_token_at is None or s.done_at is None or s.output_tokens < 2:
        return None
    return (s.done_at - s.first_token_at) / (s.output_tokens - 1)


def itl_s(s: Sample) -> list[float]:
    t = s.token_times
    return [b - a for a, b in itertools.pairwise(t)]


def ended_at(s: Sample) -> float:
    """When a request ended: its completion, else when its failure was seen, else (old samples
    without `failed_at`) when it was sent."""
    if s.done_at is not None:
        return s.done_at
    return s.failed_at if s.failed_at is not None else s.sent_at


def measured(samples: Iterable[Sample], warmup_end: float) -> list[Sample]:
    """Samples that ended at or after the end of warm-up: the outcomes a point counts."""
    return [s for s in samples if ended_at(s) >= warmup_end]


def completed_in(samples: Iterable[Sample], start: float, end: float) -> list[Sample]:
    """Ok samples completed inside [start, end]: what `req_s` counts."""
    return [s for s in samples if s.ok and s.done_at is not None and start <= s.done_at <= end]


def tokens_in_window(s: Sample, start: float, end: float = float("inf")) -> float:
    """Output tokens of `s` that arrived inside [start, end].

    With chunk times, each chunk carries output_tokens / chunks tokens (usage may count several
    tokens in one SSE chunk); without, tokens are pro rata over [sent, done].
    """
    if s.token_times:
        per_chunk = s.output_tokens / len(s.token_times) if s.output_tokens > 0 else 1.0
        return per_chunk * sum(1 for t in s.token_times if start <= t <= end)
    if s.done_at is None:
        return 0.0
    if s.done_at <= s.sent_at:
        return float(s.output_tokens) if start <= s.done_at <= end else 0.0
    inside = (min(s.done_at, end) - max(s.sent_at, start)) / (s.done_at - s.sent_at)
    return s.output_tokens * min(1.0, max(0.0, inside))


def window_output_tokens(samples: Iterable[Sample], start: float, end: float) -> float:
    """Output tokens of ok samples that arrived inside [start, end] (`output_tok_s` × window)."""
    return sum(tokens_in_window(s, start, end) for s in samples if s.ok)


def slo_values(s: Sample) -> dict[str, float | None]:
    """A sample's SLO metrics in seconds, None when unknown: `ttft_ms` and `e2e_ms` from
    `scheduled_at` (goodput is what the user waited, client queueing included), `tpot_ms`."""
    return {"ttft_ms": None if s.first_token_at is None else s.first_token_at - s.scheduled_at,
            "tpot_ms": tpot_s(s),
            "e2e_ms": None if s.done_at is None else s.done_at - s.scheduled_at}


def meets_slo(s: Sample, slo: Mapping[str, float]) -> bool:
    """Whether `s` is ok and every SLO given (`ttft_ms`, `tpot_ms`, `e2e_ms`) is known and met.

    A metric the request cannot show (no first-token time from k6 or without streaming; fewer
    than 2 tokens under a TPOT limit) fails it: an SLO nobody checked is not met.
    """
    if not s.ok:
        return False
    values = slo_values(s)
    for key, limit in slo.items():
        value = values.get(key)
        if value is None or value * 1000 > limit:
            return False
    return True


def summarize(
    samples: Sequence[Sample],
    *,
    warmup_end: float = 0.0,
    load_end: float | None = None,
    slo: Mapping[str, float] | None = None,
) -> PointMetrics:
    """Metrics of one target × load point (`harness.summary.PointMetrics`).

    `warmup_end` and `load_end` are on the run clock: the measured window (see the module
    docstring). Without `load_end` (stored samples of unknown span, tests) the window ends when
    the last counted request ended, success or failure.
    """
    ended = measured(samples, warmup_end)
    if load_end is None:
        load_end = max((ended_at(s) for s in ended), default=warmup_end)
    window = load_end - warmup_end
    sent = [s for s in samples if s.sent_at >= warmup_end]
    statuses = Counter(s.status for s in ended)
    counted = [s for s in ended if s.status != "abandoned"]
    http_codes = Counter(str(s.http_status) for s in counted if s.status == "http_error")
    busy = sum(max(0.0, min(ended_at(s), load_end) - max(s.sent_at, warmup_end))
               for s in samples)
    return PointMetrics(
        requests=Requests(ok=statuses["ok"], http_error=statuses["http_error"],
                          refused=statuses["refused"], timeout=statuses["timeout"],
                          truncated=statuses["truncated"], conn_error=statuses["conn_error"],
                          total=len(counted), abandoned=statuses["abandoned"]),
        http_errors=dict(http_codes),
        **_latencies([s for s in sent if s.ok], sent),
        output_tokens=Distribution.of(float(s.output_tokens) for s in sent if s.ok),
        throughput=_throughput(samples, warmup_end, load_end),
        goodput=_goodput(counted, slo, warmup_end, load_end) if slo else None,
        achieved_concurrency=busy / window if window > 0 else None,
        token_counts_from=tuple(sorted({s.tokens_source for s in counted if s.ok})),
    )


def _latencies(ok: Sequence[Sample], sent: Sequence[Sample]) -> dict[str, Distribution | None]:
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
        "dispatch_lag_ms": Distribution.of((s.sent_at - s.scheduled_at) * ms for s in sent),
    }


def _throughput(samples: Sequence[Sample], start: float, end: float) -> Throughput:
    window = end - start
    if window <= 0:
        return Throughput(window_s=None, req_s=None, output_tok_s=None, input_tok_s=None)
    done = completed_in(samples, start, end)
    return Throughput(window_s=window, req_s=len(done) / window,
                      output_tok_s=window_output_tokens(samples, start, end) / window,
                      input_tok_s=sum(s.prompt_tokens for s in done) / window)


def _goodput(counted: Sequence[Sample], slo: Mapping[str, float], start: float,
             end: float) -> Goodput:
    unknown = unmeasurable(counted, slo)
    good = [s for s in counted if meets_slo(s, slo)]
    if unknown is not None:
        return Goodput(slo=dict(slo), good_requests=len(good), req_s=None, fraction=None,
                       unknown=unknown)
    window = end - start
    return Goodput(slo=dict(slo), good_requests=len(good),
                   req_s=len(completed_in(good, start, end)) / window if window > 0 else None,
                   fraction=len(good) / len(counted) if counted else None)


def unmeasurable(counted: Sequence[Sample], slo: Mapping[str, float]) -> str | None:
    """Why goodput cannot be judged: an SLO metric no ok request of the point has (k6 sees no
    first token, nor does a non-streaming request); None when every limit could be checked or
    no request succeeded (then goodput is 0, not unknown)."""
    ok = [s for s in counted if s.ok]
    if not ok:
        return None
    values = [slo_values(s) for s in ok]
    missing = [key for key in slo if all(v.get(key) is None for v in values)]
    if not missing:
        return None
    why = {"ttft_ms": "no request has a first-token time (" + _mode(ok) + ")",
           "tpot_ms": "no request has a first token and 2 or more output tokens",
           "e2e_ms": "no request has a completion time"}
    return "; ".join(f"{key}: {why.get(key, 'not a metric patternbench measures')}"
                     for key in missing)


def _mode(ok: Sequence[Sample]) -> str:
    drivers = ", ".join(sorted({s.driver for s in ok}))
    streams = {s.stream for s in ok}
    return f"driver {drivers}, " + ("streaming" if streams == {True} else
                                    "non-streaming" if streams == {False} else "mixed")
