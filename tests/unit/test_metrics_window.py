"""The measured window, failures dated in time, tokens per chunk and unknown goodput.

Samples here have the shapes the drivers write: the builtin driver's closed loop (each stream
sends its next request when the last one ends; ok samples with one time per SSE chunk), a
timeout or a 503 with `failed_at` and no `done_at`, k6's samples without token times.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.metrics.requests import summarize
from harness.records.typed_json import encode
from harness.samples import Sample, SampleExtra
from tests.summaries import rates

STREAMS = 16
TOKENS = 20
TTFT_S = 0.1


def closed_loop(e2e_s: float, load_end: float, streams: int = STREAMS) -> list[Sample]:
    """A steady sim-like closed loop: `streams` streams started at staggered phases (k·E/N, a
    ramp-up of one E2E), every request `e2e_s` long, TOKENS chunks of one token each evenly
    from TTFT to the end; a stream sends its next request when the last one ended, until
    `load_end`, and the requests in flight then finish (the driver drains)."""
    out: list[Sample] = []
    for k in range(streams):
        t = k * e2e_s / streams
        while t < load_end:
            first = t + TTFT_S
            step = (e2e_s - TTFT_S) / (TOKENS - 1)
            times = tuple(first + i * step for i in range(TOKENS))
            out.append(Sample(request_id=f"{k}-{t:.4f}", target="sim", point="c16",
                              scheduled_at=t, sent_at=t, status="ok", first_byte_at=first,
                              first_token_at=first, token_times=times, done_at=t + e2e_s,
                              prompt_tokens=10, output_tokens=TOKENS, tokens_source="usage"))
            t += e2e_s
    return out


def point(samples: list[Sample], **kwargs: Any) -> Any:
    """The point's metrics as summary.json has them (floats rounded to 4 decimals)."""
    return encode(summarize(samples, **kwargs))


def close(value: float) -> Any:
    return pytest.approx(value, abs=1e-4)


@pytest.mark.parametrize("e2e_s", [1.95, 2.05])  # just under / over the 2 s warm-up
@pytest.mark.parametrize("offset", [i / 12 for i in range(13)])
def test_req_s_times_tokens_equals_tok_s_wherever_the_warmup_boundary_falls(
        e2e_s: float, offset: float) -> None:
    warmup_end = 2.0 + offset * e2e_s  # sweeps one whole E2E of boundary positions
    load_end = warmup_end + 6.0
    s = point(closed_loop(e2e_s, load_end), warmup_end=warmup_end, load_end=load_end)
    tp = s["throughput"]
    assert tp["window_s"] == pytest.approx(6.0)
    mean_tokens = s["output_tokens"]["mean"]
    assert mean_tokens == TOKENS
    assert tp["req_s"] * mean_tokens == pytest.approx(tp["output_tok_s"], rel=0.02)
    steady = STREAMS / e2e_s  # 8.21 req/s at 1.95 s, 7.80 at 2.05 s
    assert tp["req_s"] == pytest.approx(steady, rel=0.02)
    assert tp["input_tok_s"] == pytest.approx(tp["req_s"] * 10, rel=1e-4)
    # latencies come from requests sent after warm-up only, all of the same shape
    assert s["e2e_ms"]["p50"] == pytest.approx(e2e_s * 1000)
    assert s["ttft_ms"]["max"] == pytest.approx(TTFT_S * 1000)
    assert s["achieved_concurrency"] == pytest.approx(STREAMS, rel=1e-4)


def test_a_slower_server_never_reports_more_requests_per_second() -> None:
    # The case: at a 2 s warm-up, E2E 2.05 s used to give 10.27 req/s against 8.21 at
    # 1.95 s. Now the slower one is slower at every boundary.
    for offset in (0.0, 0.01, 0.5, 1.0, 1.5):
        fast, slow = (point(closed_loop(e, 8.0 + offset), warmup_end=2.0 + offset,
                            load_end=8.0 + offset)["throughput"]["req_s"] for e in (1.95, 2.05))
        assert slow < fast


def hang(streams: int = STREAMS, timeout_s: float = 120.0) -> list[Sample]:
    """A target that never answers: every stream's request, sent during warm-up, is a
    first-token timeout the driver sees `timeout_s` later (while it drains)."""
    return [Sample(request_id=f"h{k}", target="hung", point="c16", scheduled_at=k * 0.01,
                   sent_at=k * 0.01, status="timeout", failed_at=k * 0.01 + timeout_s,
                   error=f"timeout (first_token): over {timeout_s:g} s",
                   extra=SampleExtra(timeout="first_token", after_s=timeout_s))
            for k in range(streams)]


def test_a_hanging_target_reports_its_timeouts() -> None:
    s = point(hang(), warmup_end=2.0, load_end=8.0, slo={"ttft_ms": 1000})
    assert s["requests"]["timeout"] == 16
    assert s["requests"]["total"] == 16
    assert s["requests"]["ok"] == 0
    assert rates(s["throughput"]) == {"window_s": 6.0, "req_s": 0.0, "output_tok_s": 0.0,
                               "input_tok_s": 0.0}
    assert s["achieved_concurrency"] == pytest.approx(16.0)  # all 16 in flight all along
    assert s["ttft_ms"] is None and s["e2e_ms"] is None
    assert s["goodput"]["fraction"] == 0.0 and s["goodput"]["good_requests"] == 0


def test_failures_are_dated_by_failed_at_and_old_samples_by_sent_at() -> None:
    refused = Sample(request_id="r", target="t", point="p", scheduled_at=1.0, sent_at=1.0,
                     status="refused", http_status=503, first_byte_at=1.002, failed_at=2.5,
                     error="overloaded")  # sent in warm-up, its 503 read after it
    old = Sample(request_id="o", target="t", point="p", scheduled_at=1.0, sent_at=1.0,
                 status="conn_error", error="reset")  # no failed_at: dated when sent
    s = point([refused, old], warmup_end=2.0, load_end=8.0)
    assert s["requests"] == {"ok": 0, "http_error": 0, "refused": 1, "timeout": 0,
                             "truncated": 0, "conn_error": 0, "total": 1, "abandoned": 0}
    assert s["http_errors"] == {}


def test_the_window_never_ends_at_the_last_success() -> None:
    # The case: 16 successes just after warm-up, then 16 timeouts; the old window
    # ran 0.0115 s to the last success (1,391 req/s).
    ok = [Sample(request_id=f"ok{k}", target="t", point="p", scheduled_at=0.5, sent_at=0.5,
                 status="ok", first_token_at=1.0, token_times=(1.0, 2.0), done_at=2.0115,
                 output_tokens=2, tokens_source="usage") for k in range(16)]
    late = [Sample(request_id=f"to{k}", target="t", point="p", scheduled_at=2.0115,
                   sent_at=2.0115, status="timeout", failed_at=122.0115) for k in range(16)]
    s = point([*ok, *late], warmup_end=2.0, load_end=8.0)
    assert s["throughput"]["window_s"] == 6.0
    assert s["throughput"]["req_s"] == close(16 / 6)
    assert (s["requests"]["ok"], s["requests"]["timeout"]) == (16, 16)


def test_a_request_finishing_while_the_driver_drains_counts_but_not_in_req_s() -> None:
    # sent at 7 (inside), 2 chunks at 7.5 and 9, done at 9: after the load's end at 8
    tail = Sample(request_id="d", target="t", point="p", scheduled_at=7.0, sent_at=7.0,
                  status="ok", first_token_at=7.5, token_times=(7.5, 9.0), done_at=9.0,
                  prompt_tokens=100, output_tokens=2, tokens_source="usage")
    s = point([tail], warmup_end=2.0, load_end=8.0)
    assert s["requests"]["ok"] == 1 and s["e2e_ms"]["p50"] == pytest.approx(2000.0)
    # not completed inside: no request, no prompt tokens; its first token arrived inside
    assert rates(s["throughput"]) == {"window_s": 6.0, "req_s": 0.0, "output_tok_s": close(1 / 6),
                               "input_tok_s": 0.0}


def test_tok_s_counts_usage_tokens_not_chunks() -> None:
    # 8 SSE chunks a second apart, usage says 32 tokens: 4 tokens per chunk.
    chunky = Sample(request_id="c", target="t", point="p", scheduled_at=0.0, sent_at=0.0,
                    status="ok", first_token_at=1.0,
                    token_times=tuple(float(t) for t in range(1, 9)), done_at=8.0,
                    output_tokens=32, tokens_source="usage")
    assert point([chunky], warmup_end=0.0, load_end=8.0)["throughput"]["output_tok_s"] == 4.0
    # half the window: chunks at 1..4 carry 16 tokens over 4 s; the request is not done yet
    half = point([chunky], warmup_end=0.0, load_end=4.0)["throughput"]
    assert (half["output_tok_s"], half["req_s"]) == (4.0, 0.0)


def k6_sample(index: int, first_byte_s: float) -> Sample:
    """A k6 record: no token times (k6 sees the body arrive, not the SSE chunks)."""
    sent = float(index)
    return Sample(request_id=f"k{index}", target="t", point="p", scheduled_at=sent,
                  sent_at=sent, status="ok", first_byte_at=sent + first_byte_s,
                  done_at=sent + first_byte_s + 1.0, output_tokens=64, tokens_source="usage",
                  driver="k6")


def test_goodput_is_unknown_when_no_request_can_show_the_slo_metric() -> None:
    # 10 s to first byte under a 1 s TTFT limit: used to be 100% goodput.
    samples = [k6_sample(i, 10.0) for i in range(3)]
    g = point(samples, warmup_end=0.0, load_end=20.0, slo={"ttft_ms": 1000})["goodput"]
    assert g["req_s"] is None and g["fraction"] is None and g["good_requests"] == 0
    assert g["unknown"].startswith("ttft_ms: no request has a first-token time (driver k6")
    # a limit it can check (E2E from scheduled: 11 s) is judged
    e2e = point(samples, warmup_end=0.0, load_end=20.0, slo={"e2e_ms": 12000})["goodput"]
    assert (e2e["unknown"], e2e["fraction"], e2e["good_requests"]) == (None, 1.0, 3)


def test_a_request_without_the_slo_metric_fails_where_others_have_it() -> None:
    timed = Sample(request_id="s", target="t", point="p", scheduled_at=1.0, sent_at=1.0,
                   status="ok", first_token_at=1.2, token_times=(1.2, 1.4), done_at=1.4,
                   output_tokens=2, tokens_source="usage")
    g = point([timed, k6_sample(2, 0.1)], warmup_end=0.0, load_end=4.0,
              slo={"ttft_ms": 500})["goodput"]
    assert (g["unknown"], g["good_requests"], g["fraction"], g["req_s"]) == (None, 1, 0.5, 0.25)


def test_goodput_leaves_out_the_warm_up_wave_of_slow_successes_but_not_its_failures() -> None:
    """The issue's c32 case: the warm-up's cold first wave finished late (TTFT 1.5 s, ok), every
    request sent after the warm-up met the SLO; goodput judges those, as the percentiles do. A
    request sent in the warm-up that failed in the window still counts as a miss."""
    cold = [Sample(request_id=f"w{i}", target="t", point="p", scheduled_at=0.1, sent_at=0.1,
                   status="ok", first_token_at=1.6, token_times=(1.6, 2.2), done_at=2.2,
                   prompt_tokens=10, output_tokens=2, tokens_source="usage") for i in range(16)]
    warm = [Sample(request_id=f"r{i}", target="t", point="p", scheduled_at=2.0 + i * 0.2,
                   sent_at=2.0 + i * 0.2, status="ok", first_token_at=2.05 + i * 0.2,
                   token_times=(2.05 + i * 0.2, 2.1 + i * 0.2), done_at=2.1 + i * 0.2,
                   prompt_tokens=10, output_tokens=2, tokens_source="usage") for i in range(30)]
    s = point(cold + warm, warmup_end=2.0, load_end=8.0, slo={"ttft_ms": 1000})
    assert s["goodput"]["fraction"] == 1.0 and s["goodput"]["counted"] == 30
    hung = Sample(request_id="h", target="t", point="p", scheduled_at=0.1, sent_at=0.1,
                  status="timeout", failed_at=5.0, error="timeout (first_token)")
    s = point([*cold, *warm, hung], warmup_end=2.0, load_end=8.0, slo={"ttft_ms": 1000})
    assert s["goodput"]["counted"] == 31 and s["goodput"]["good_requests"] == 30
