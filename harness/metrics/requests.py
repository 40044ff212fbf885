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
  `good_requests`/`fraction` are over the counted outcomes of the requests *sent* at or after
  `warmup_end` (like the percentiles: the warm-up's cold first wave of slow successes stays
  out), plus those sent during it that failed in the window (a hang's timeouts are misses);
  `req_s` over W's completions of the good ones.

An empty metric is `None`, never a silent 0.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from harness.metrics.quantiles import wilson
from harness.metrics.sections import Timed, Window, hull, mean_interval, rate_interval
from harness.samples import Sample
from harness.summary.record import Distribution, Goodput, PointMetrics, Requests, Throughput


def ttft_s(s: Sample) -> float | None:
    return None if s.first_token_at is None else s.first_token_at - s.sent_at


def tpot_s(s: Sample) -> float | None:
    if s.first_token_at is None or s.done_at is None or s.output_tokens < 2:
        return None
    return (s.done_at - s.first_token_at) / (s.output_tokens - 1)


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


def section_output_tokens(samples: Iterable[Sample], w: Window) -> list[float]:
    """`window_output_tokens` of each section of the window: chunk times binned in one pass,
    the pro-rata share of a sample without them computed per section."""
    ok = [s for s in samples if s.ok]
    chunked = w.binned((t, s.output_tokens / len(s.token_times) if s.output_tokens > 0 else 1.0)
                       for s in ok if s.token_times for t in s.token_times)
    pro_rata = [s for s in ok if not s.token_times]
    if not pro_rata:
        return chunked
    return [a + b for a, b in zip(chunked, w.amounts(
        lambda lo, hi: window_output_tokens(pro_rata, lo, hi)), strict=True)]


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
    the last counted request ended, success or failure. Every interval is a within-run one that
    sees the values move together (`harness.metrics.sections`), cut into `Window.k` sections.
    """
    ended = measured(samples, warmup_end)
    if load_end is None:
        load_end = max((ended_at(s) for s in ended), default=warmup_end)
    w = Window(warmup_end, load_end, span_s=_median_duration(samples, warmup_end))
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
        **_latencies([s for s in sent if s.ok], sent, w),
        output_tokens=w.distribution([(s.done_at or s.sent_at, float(s.output_tokens))
                                      for s in sent if s.ok]),
        throughput=_throughput(samples, w),
        goodput=_goodput([s for s in counted if s.sent_at >= warmup_end or not s.ok], slo, w)
        if slo else None,
        achieved_concurrency=busy / w.length if w.length > 0 else None,
        token_counts_from=tuple(sorted({s.tokens_source for s in counted if s.ok})),
    )


def _median_duration(samples: Sequence[Sample], warmup_end: float) -> float | None:
    spans = sorted(s.done_at - s.sent_at for s in samples
                   if s.ok and s.done_at is not None and s.sent_at >= warmup_end)
    return spans[len(spans) // 2] if spans else None


def _latencies(ok: Sequence[Sample], sent: Sequence[Sample],
               w: Window) -> dict[str, Distribution | None]:
    """The latency distributions of a point, in ms, keyed by their `PointMetrics` field; each
    value placed at the time it was observed (first token, completion, each token)."""
    ms = 1000.0
    return {
        "ttft_ms": w.distribution([(s.first_token_at, v * ms) for s in ok
                                   if s.first_token_at is not None and (v := ttft_s(s))
                                   is not None]),
        "ttft_sched_ms": w.distribution([(s.first_token_at, (s.first_token_at - s.scheduled_at)
                                          * ms) for s in ok if s.first_token_at is not None]),
        "ttfb_ms": w.distribution([(s.first_byte_at, (s.first_byte_at - s.sent_at) * ms)
                                   for s in ok if s.first_byte_at is not None]),
        "tpot_ms": w.distribution([(s.done_at, v * ms) for s in ok if s.done_at is not None
                                   and (v := tpot_s(s)) is not None]),
        "itl_ms": w.distribution([(b, (b - a) * ms) for s in ok
                                  for a, b in itertools.pairwise(s.token_times)]),
        "e2e_ms": w.distribution([(s.done_at, (s.done_at - s.sent_at) * ms) for s in ok
                                  if s.done_at is not None]),
        "e2e_sched_ms": w.distribution([(s.done_at, (s.done_at - s.scheduled_at) * ms)
                                        for s in ok if s.done_at is not None]),
        "dispatch_lag_ms": w.distribution([(s.sent_at, (s.sent_at - s.scheduled_at) * ms)
                                           for s in sent]),
    }


def _throughput(samples: Sequence[Sample], w: Window) -> Throughput:
    if w.length <= 0:
        return Throughput(window_s=None, req_s=None, output_tok_s=None, input_tok_s=None)
    done = completed_in(samples, w.start, w.end)
    return Throughput(
        window_s=w.length, req_s=len(done) / w.length,
        output_tok_s=window_output_tokens(samples, w.start, w.end) / w.length,
        input_tok_s=sum(s.prompt_tokens for s in done) / w.length,
        ci95={"req_s": _rate_ci(w, lambda lo, hi: len(_done_in(done, lo, hi))),
              "output_tok_s": rate_interval(section_output_tokens(samples, w), w.start, w.end),
              "input_tok_s": _rate_ci(w, lambda lo, hi: sum(s.prompt_tokens
                                                            for s in _done_in(done, lo, hi)))},
        sections=w.k)


def _done_in(done: Sequence[Sample], lo: float, hi: float) -> list[Sample]:
    """Of the samples completed in the window, those completed in the section [lo, hi)."""
    return [s for s in done if s.done_at is not None and lo <= s.done_at < hi]


def _rate_ci(w: Window, amount: Callable[[float, float], float]) -> tuple[float, float] | None:
    return rate_interval(w.amounts(amount), w.start, w.end)


def _goodput(counted: Sequence[Sample], slo: Mapping[str, float], w: Window) -> Goodput:
    unknown = unmeasurable(counted, slo)
    good = [s for s in counted if meets_slo(s, slo)]
    if unknown is not None:
        return Goodput(slo=dict(slo), good_requests=len(good), req_s=None, fraction=None,
                       unknown=unknown)
    done = completed_in(good, w.start, w.end)
    marks = [(ended_at(s), 1.0 if meets_slo(s, slo) else 0.0) for s in counted]
    fraction = len(good) / len(counted) if counted else None
    return Goodput(
        slo=dict(slo), good_requests=len(good), counted=len(counted),
        req_s=len(done) / w.length if w.length > 0 else None, fraction=fraction,
        ci95={"fraction": _fraction_ci(len(good), len(counted), marks, w),
              "req_s": _rate_ci(w, lambda lo, hi: len(_done_in(done, lo, hi)))
              if w.length > 0 else None})


def _fraction_ci(good: int, counted: int, marks: Sequence[Timed],
                 w: Window) -> tuple[float, float] | None:
    """The within-SLO share's 95% interval: Wilson's, widened to the sectioned one where the
    window has the sections (misses come in bursts: a slow second fails several requests)."""
    binomial = wilson(good, counted)
    sectioned = mean_interval(marks, w.start, w.end, w.k)
    return binomial if sectioned is None else hull(binomial, sectioned)


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
