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
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.samples import STATUSES, Sample

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Distribution:
    """Summary of one metric, in the unit its name states (`ttft_ms` → milliseconds)."""

    count: int
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution | None:
        data = sorted(v for v in values if v is not None and math.isfinite(v))
        if not data:
            return None
        return cls(
            count=len(data),
            mean=sum(data) / len(data),
            p50=percentile(data, 50),
            p90=percentile(data, 90),
            p95=percentile(data, 95),
            p99=percentile(data, 99),
            max=data[-1],
        )

    def to_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of already sorted values."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    pos = (len(sorted_values) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _dist(values: Iterable[float]) -> dict[str, Any] | None:
    d = Distribution.of(values)
    return d.to_dict() if d else None


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
) -> dict[str, Any]:
    """Metrics of one target × load point, shaped as a `points[]` entry of summary.json.

    `warmup_end` is on the run clock; samples that finished before it are excluded.
    """
    counted = measured(samples, warmup_end)
    ok = [s for s in counted if s.ok]
    statuses = Counter(s.status for s in counted)
    requests: dict[str, int] = {status: statuses.get(status, 0) for status in STATUSES}
    requests["total"] = len(counted)
    http_codes = Counter(str(s.http_status) for s in counted if s.status == "http_error")

    ms = 1000.0
    ttft = [v * ms for s in ok if (v := ttft_s(s)) is not None]
    ttft_sched = [(s.first_token_at - s.scheduled_at) * ms for s in ok
                  if s.first_token_at is not None]
    ttfb = [(s.first_byte_at - s.sent_at) * ms for s in ok if s.first_byte_at is not None]
    tpot = [v * ms for s in ok if (v := tpot_s(s)) is not None]
    itl = [g * ms for s in ok for g in itl_s(s)]
    e2e = [(s.done_at - s.sent_at) * ms for s in ok if s.done_at is not None]
    e2e_sched = [(s.done_at - s.scheduled_at) * ms for s in ok if s.done_at is not None]
    lag = [(s.sent_at - s.scheduled_at) * ms for s in counted]

    ends = [s.done_at for s in ok if s.done_at is not None]
    window = (max(ends) - warmup_end) if ends else 0.0
    out_tokens = sum(tokens_in_window(s, warmup_end) for s in ok)
    in_tokens = sum(s.prompt_tokens for s in ok if s.sent_at >= warmup_end)
    throughput: dict[str, float | None] = {
        "window_s": round(window, 4) if window > 0 else None,
        "req_s": len(ok) / window if window > 0 else None,
        "output_tok_s": out_tokens / window if window > 0 else None,
        "input_tok_s": in_tokens / window if window > 0 else None,
    }
    goodput = None
    if slo:
        good = [s for s in ok if meets_slo(s, slo)]
        goodput = {
            "slo": dict(slo),
            "good_requests": len(good),
            "req_s": len(good) / window if window > 0 else None,
            "fraction": len(good) / len(counted) if counted else None,
        }
    busy = sum((s.done_at - max(s.sent_at, warmup_end)) for s in ok if s.done_at is not None)
    return {
        "requests": requests,
        "http_errors": dict(http_codes),
        "ttft_ms": _dist(ttft),
        "ttft_sched_ms": _dist(ttft_sched),
        "ttfb_ms": _dist(ttfb),
        "tpot_ms": _dist(tpot),
        "itl_ms": _dist(itl),
        "e2e_ms": _dist(e2e),
        "e2e_sched_ms": _dist(e2e_sched),
        "dispatch_lag_ms": _dist(lag),
        "output_tokens": _dist(float(s.output_tokens) for s in ok),
        "throughput": {k: (round(v, 4) if isinstance(v, float) else v)
                       for k, v in throughput.items()},
        "goodput": goodput,
        "achieved_concurrency": round(busy / window, 3) if window > 0 else None,
        "token_counts_from": sorted({s.tokens_source for s in ok}),
    }
