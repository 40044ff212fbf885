"""Metrics: percentile against numpy, Distribution, and summarize on hand-built samples.

Every expected number below was worked out by hand from the sample times in `run()`, whose
samples have the shapes the builtin driver writes: a failed request has no `done_at` and a
`failed_at`, a 503 is `refused`. `tests/unit/test_metrics_window.py` sweeps the window.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from harness.metrics.quantiles import percentile
from harness.metrics.requests import summarize
from harness.records.typed_json import encode
from harness.samples import Sample, SampleExtra
from harness.summary.record import Distribution, PointMetrics
from tests.summaries import rates

WARMUP_END = 10.0
LOAD_END = 16.0  # a 6 s measured window


def sample(request_id: str, scheduled_at: float, sent_at: float, status: Any = "ok",
           **kw: Any) -> Sample:
    return Sample(request_id=request_id, target="t", point="c1", scheduled_at=scheduled_at,
                  sent_at=sent_at, status=status, **kw)


def run() -> list[Sample]:
    """Seven samples: one in warm-up, three ok (3, 1 and 4 tokens), three failed.

    ok requests, in ms from sent / scheduled:
      a: ttft 100 / 200, ttfb 50, tpot (10.5-10.2)/2 = 150, itl 100 200, e2e 400 / 500, lag 100
      b: ttft 200 / 200, ttfb 100, one token: no tpot, no itl, e2e 200 / 200, lag 0
      e: ttft 100 / 100, ttfb 50, tpot 0.9/3 = 300, itl 300 300 300, e2e 1000 / 1000, lag 0
    failed: c refused (503 read at 12.6, lag 500), d a first-token timeout fired at 15.0,
    f a 500 read at 14.6. The window is WARMUP_END → LOAD_END = 6 s, whatever ended last.
    """
    return [
        # Finished just before the end of warm-up: it must change nothing.
        sample("w", 9.0, 9.0, first_byte_at=9.05, first_token_at=9.1,
               token_times=(9.1, 9.99), done_at=9.99, output_tokens=2, prompt_tokens=999,
               tokens_source="requested"),
        sample("a", 10.0, 10.1, first_byte_at=10.15, first_token_at=10.2,
               token_times=(10.2, 10.3, 10.5), done_at=10.5, output_tokens=3, prompt_tokens=100,
               tokens_source="usage"),
        sample("b", 11.0, 11.0, first_byte_at=11.1, first_token_at=11.2, token_times=(11.2,),
               done_at=11.2, output_tokens=1, prompt_tokens=100, tokens_source="usage"),
        sample("c", 12.0, 12.5, "refused", http_status=503, first_byte_at=12.55,
               failed_at=12.6, error="overloaded"),
        sample("d", 13.0, 13.0, "timeout", failed_at=15.0, error="timeout (first_token)",
               extra=SampleExtra(timeout="first_token", after_s=2.0)),
        sample("e", 14.0, 14.0, first_byte_at=14.05, first_token_at=14.1,
               token_times=(14.1, 14.4, 14.7, 15.0), done_at=15.0, output_tokens=4,
               prompt_tokens=100, tokens_source="counted"),
        sample("f", 14.5, 14.5, "http_error", http_status=500, first_byte_at=14.55,
               failed_at=14.6, error="boom"),
    ]


def close(value: float) -> Any:
    return pytest.approx(value, abs=1e-3)


# --- percentile and Distribution -----------------------------------------------------------------

def test_percentile_by_hand() -> None:
    data = [10.0, 20.0, 30.0, 40.0]
    assert percentile(data, 0) == 10.0
    assert percentile(data, 50) == 25.0  # halfway between 20 and 30
    assert percentile(data, 90) == pytest.approx(37.0)  # position 2.7: 30 + 0.7 * 10
    assert percentile(data, 100) == 40.0
    assert percentile([7.0], 99) == 7.0


_rng = random.Random(7)
ARRAYS = [
    [1.0, 2.0],
    [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0],
    [float(i) for i in range(11)],
    [_rng.expovariate(0.1) for _ in range(101)],
    [_rng.gauss(0, 1) for _ in range(1000)],
]


@pytest.mark.parametrize("values", ARRAYS, ids=lambda v: f"n{len(v)}")
@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 95, 99, 99.9, 100])
def test_percentile_matches_numpy_linear(values: list[float], q: float) -> None:
    expected = float(np.percentile(np.array(values), q, method="linear"))
    assert percentile(sorted(values), q) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_percentile_of_nothing_raises() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


def test_distribution_of_nothing_is_none() -> None:
    assert Distribution.of([]) is None
    assert Distribution.of(iter(())) is None
    assert Distribution.of([float("nan"), float("inf")]) is None


def test_distribution_sorts_and_skips_non_finite() -> None:
    d = Distribution.of(iter([5.0, float("nan"), 1.0, 3.0]))
    assert d is not None
    assert (d.count, d.mean, d.p50, d.max) == (3, 3.0, 3.0, 5.0)
    # positions 1.8, 1.9 and 1.98 between 3 and 5
    assert [d.p90, d.p95, d.p99] == pytest.approx([4.6, 4.8, 4.96])


def test_distribution_json_rounds_floats_only() -> None:
    d = Distribution.of([1.0, 2.0, 2.0])
    assert d is not None
    assert encode(d) == {"count": 3, "mean": 1.6667, "p50": 2.0, "p90": 2.0, "p95": 2.0,
                         "p99": 2.0, "max": 2.0,
                         "ci95": {"p50": None, "p90": None, "p95": None, "p99": None},
                         "too_few": ["p50", "p90", "p95", "p99"], "effective_count": None}


def point_json(*args: Any, **kwargs: Any) -> Any:
    """`summarize`'s result as the JSON a point carries in summary.json."""
    metrics = summarize(*args, **kwargs)
    assert isinstance(metrics, PointMetrics)
    return encode(metrics)


# --- summarize ------------------------------------------------------------------------------------

def test_requests_counted_by_status_after_warmup() -> None:
    s = point_json(run(), warmup_end=WARMUP_END, load_end=LOAD_END)
    assert s["requests"] == {"ok": 3, "http_error": 1, "refused": 1, "timeout": 1,
                             "truncated": 0, "conn_error": 0, "total": 6, "abandoned": 0}
    assert s["http_errors"] == {"500": 1}  # the 503 is `refused`, not an http_error


def test_warmup_end_is_inclusive_and_earlier_samples_count_without_it() -> None:
    assert point_json(run(), warmup_end=WARMUP_END)["requests"]["total"] == 6
    assert point_json(run(), warmup_end=10.5)["requests"]["total"] == 6  # "a" done at 10.5
    assert point_json(run(), warmup_end=10.5001)["requests"]["total"] == 5  # drops "a"
    assert point_json(run())["requests"]["total"] == 7


def test_request_running_across_warmup_end_counts_with_only_its_later_tokens() -> None:
    # Sent at 8, tokens at 9, 11, 12, 13; done at 13. Warm-up ends at 10, the load at 14.
    spanning = sample("s", 8.0, 8.0, first_byte_at=8.5, first_token_at=9.0,
                      token_times=(9.0, 11.0, 12.0, 13.0), done_at=13.0, output_tokens=4,
                      prompt_tokens=50, tokens_source="usage")
    s = point_json([spanning], warmup_end=10.0, load_end=14.0)
    assert s["requests"]["ok"] == 1  # it ended after warm-up: an outcome of the point
    assert s["e2e_ms"] is None and s["ttft_ms"] is None  # sent in warm-up: no latency
    # window 10 → 14 = 4 s: it completed inside (1 request, its 50 prompt tokens) and 3 of its
    # 4 tokens arrived inside.
    assert rates(s["throughput"]) == {"window_s": close(4.0), "req_s": close(0.25),
                               "output_tok_s": close(0.75), "input_tok_s": close(12.5)}
    assert s["achieved_concurrency"] == close(0.75)  # in flight 10 → 13 of 4 s


def test_non_streaming_tokens_are_prorated_over_the_window() -> None:
    whole = sample("n", 6.0, 6.0, done_at=14.0, output_tokens=80, stream=False)
    s = point_json([whole], warmup_end=10.0, load_end=18.0)
    assert s["throughput"]["output_tok_s"] == close(40 / 8)  # half its time, half its tokens
    cut = point_json([whole], warmup_end=10.0, load_end=12.0)["throughput"]
    assert cut["output_tok_s"] == close(20 / 2)  # a quarter of its time inside 10 → 12
    assert cut["req_s"] == 0.0  # it completed after the load's end


def test_ttft_from_sent_and_from_scheduled() -> None:
    s = point_json(run(), warmup_end=WARMUP_END)
    ttft = s["ttft_ms"]
    assert ttft["count"] == 3
    assert (ttft["p50"], ttft["mean"], ttft["max"]) == (close(100), close(133.3333), close(200))
    sched = s["ttft_sched_ms"]
    assert (sched["count"], sched["p50"], sched["max"]) == (3, close(200), close(200))
    assert sched["mean"] == close(500 / 3)
    ttfb = s["ttfb_ms"]
    assert (ttfb["count"], ttfb["p50"], ttfb["max"]) == (3, close(50), close(100))


def test_tpot_per_request_and_none_for_one_token() -> None:
    tpot = point_json(run(), warmup_end=WARMUP_END)["tpot_ms"]
    # a: 150, e: 300; b has one token and no TPOT.
    assert tpot["count"] == 2
    assert (tpot["mean"], tpot["p50"], tpot["max"]) == (close(225), close(225), close(300))


def test_itl_pools_every_gap() -> None:
    itl = point_json(run(), warmup_end=WARMUP_END)["itl_ms"]
    # gaps 100, 200 (a) and 300, 300, 300 (e)
    assert itl["count"] == 5
    assert (itl["mean"], itl["p50"], itl["max"]) == (close(240), close(300), close(300))
    assert itl["p90"] == close(300)


def test_e2e_from_sent_and_from_scheduled() -> None:
    s = point_json(run(), warmup_end=WARMUP_END)
    e2e = s["e2e_ms"]
    assert (e2e["count"], e2e["p50"], e2e["max"]) == (3, close(400), close(1000))
    assert e2e["mean"] == close(1600 / 3)
    sched = s["e2e_sched_ms"]
    assert (sched["p50"], sched["mean"], sched["max"]) == (close(500), close(1700 / 3),
                                                          close(1000))


def test_dispatch_lag_counts_every_request_sent_after_warmup() -> None:
    lag = point_json(run(), warmup_end=WARMUP_END)["dispatch_lag_ms"]
    # a 100, c 500, and 0 for b, d, e, f
    assert (lag["count"], lag["p50"], lag["max"]) == (6, close(0), close(500))
    assert lag["mean"] == close(100)


def test_throughput_window_runs_from_warmup_end_to_load_end() -> None:
    s = point_json(run(), warmup_end=WARMUP_END, load_end=LOAD_END)
    # 3 completions, 3 + 1 + 4 tokens and 3 × 100 prompt tokens over 6 s
    assert rates(s["throughput"]) == {"window_s": close(6.0), "req_s": close(0.5),
                               "output_tok_s": close(8 / 6), "input_tok_s": close(50.0)}
    # in flight: a 0.4, b 0.2, c 0.1, d 2.0 (until its timeout), e 1.0, f 0.1 = 3.8 s of 6
    assert s["achieved_concurrency"] == close(3.8 / 6)
    assert s["output_tokens"]["count"] == 3
    assert s["output_tokens"]["mean"] == close(8 / 3)
    assert s["token_counts_from"] == ["counted", "usage"]


def test_goodput_fraction_over_all_measured_requests() -> None:
    s = point_json(run(), warmup_end=WARMUP_END, load_end=LOAD_END,
                   slo={"ttft_ms": 250, "tpot_ms": 200})
    # a meets both; b has one token (its TPOT is unknown); e's TPOT is 300 ms; failures fail.
    assert rates(s["goodput"]) == {"slo": {"ttft_ms": 250, "tpot_ms": 200}, "good_requests": 1,
                            "req_s": close(1 / 6), "fraction": close(1 / 6), "counted": 6,
                            "unknown": None}


def test_goodput_ttft_slo_is_measured_from_scheduled() -> None:
    # TTFT from scheduled: a 200, b 200, e 100. From sent, a (100) would pass 150 too.
    goodput = point_json(run(), warmup_end=WARMUP_END, slo={"ttft_ms": 150})["goodput"]
    assert goodput["good_requests"] == 1


def test_goodput_one_token_request_fails_a_tpot_slo() -> None:
    goodput = point_json(run(), warmup_end=WARMUP_END, slo={"tpot_ms": 200})["goodput"]
    assert goodput["good_requests"] == 1  # a (150 ms); not b (no TPOT), nor e (300 ms)
    assert goodput["unknown"] is None  # a and e have a TPOT: the limit could be checked


def test_goodput_e2e_slo_is_measured_from_scheduled() -> None:
    # e2e from scheduled: a 500, b 200, e 1000. From sent, a would be 400 and pass 450.
    goodput = point_json(run(), warmup_end=WARMUP_END, slo={"e2e_ms": 450})["goodput"]
    assert goodput["good_requests"] == 1


def test_no_slo_no_goodput() -> None:
    assert point_json(run(), warmup_end=WARMUP_END)["goodput"] is None


def test_empty_run_gives_none_not_zero() -> None:
    s = point_json([], slo={"ttft_ms": 100})
    assert s["requests"]["total"] == 0
    for key in ("ttft_ms", "ttft_sched_ms", "ttfb_ms", "tpot_ms", "itl_ms", "e2e_ms",
                "e2e_sched_ms", "dispatch_lag_ms", "output_tokens", "achieved_concurrency"):
        assert s[key] is None, key
    assert rates(s["throughput"]) == {"window_s": None, "req_s": None, "output_tok_s": None,
                               "input_tok_s": None}
    assert rates(s["goodput"]) == {"slo": {"ttft_ms": 100}, "good_requests": 0, "req_s": None,
                            "fraction": None, "counted": 0, "unknown": None}
    assert s["throughput"]["ci95"] == {} and s["goodput"]["ci95"]["fraction"] is None


def test_only_failures_give_no_latencies_but_zero_rates_and_goodput() -> None:
    failed = [s for s in run() if s.request_id in ("c", "d", "f")]
    s = point_json(failed, warmup_end=WARMUP_END, load_end=LOAD_END, slo={"ttft_ms": 100})
    assert s["requests"]["total"] == 3
    assert s["ttft_ms"] is None and s["e2e_ms"] is None
    # the window is known: nothing completed in 6 s is a measured 0, not a missing value
    assert rates(s["throughput"]) == {"window_s": 6.0, "req_s": 0.0, "output_tok_s": 0.0,
                               "input_tok_s": 0.0}
    assert s["goodput"]["fraction"] == 0.0 and s["goodput"]["unknown"] is None
    assert s["dispatch_lag_ms"]["count"] == 3
