"""Spike accounting (`harness.metrics.spike`) on sample lists shaped like the builtin driver's: an
ok stream has its 32 token times, done_at and usage counts; a 503 has its status, first byte and
failed_at (no done_at, no tokens); a retry keeps the request's id and scheduled time and carries
`extra.attempt`. The point's load began at 100 s; warm-up ends at 101 s, the spike runs
103-105 s, the load ends at 110 s."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.metrics.spike import spike_summary
from harness.samples import NO_EXTRA, Sample, SampleExtra
from harness.scenario.types import LoadPoint
from harness.summary.spike import SpikeSummary
from harness.telemetry.store import Record

POINT = LoadPoint("r10", "spike", duration_s=9, warmup_s=1, rate_rps=10,
                  params={"spike_rate_rps": 50, "spike_start_s": 3, "spike_duration_s": 2})
LAG_S = 0.001  # the driver's dispatch lag


def ok(index: int, due: float, ttft_s: float, *, sent: float | None = None,
       attempt: int = 1) -> Sample:
    sent_at = due + LAG_S if sent is None else sent
    first = sent_at + ttft_s
    times = tuple(first + 0.005 * k for k in range(32))
    return Sample(request_id=f"t-r10-{index}", target="t", point="r10", scheduled_at=due,
                  sent_at=sent_at, status="ok", first_byte_at=first - 0.0005,
                  first_token_at=first, token_times=times, done_at=times[-1] + 0.0002,
                  prompt_tokens=16, output_tokens=32, tokens_source="usage", http_status=200,
                  extra=SampleExtra(attempt=attempt) if attempt > 1 else NO_EXTRA)


def refused(index: int, due: float, *, sent: float | None = None, attempt: int = 1) -> Sample:
    sent_at = due + LAG_S if sent is None else sent
    return Sample(request_id=f"t-r10-{index}", target="t", point="r10", scheduled_at=due,
                  sent_at=sent_at, status="refused", first_byte_at=sent_at + 0.0015,
                  failed_at=sent_at + 0.002, tokens_source="counted", http_status=503,
                  error='{"error":{"message":"server busy","type":"server_busy",'
                        '"param":null,"code":"server_busy"}}',
                  extra=SampleExtra(attempt=attempt) if attempt > 1 else NO_EXTRA)


def steady(start: float, end: float, gap: float, first_index: int,
           make: Callable[[int, float], Sample]) -> list[Sample]:
    count = round((end - start) / gap)
    return [make(first_index + k, round(start + k * gap, 6)) for k in range(count)]


def summary(samples: list[Sample], records: list[Record] | None = None,
            retries: int = 0) -> SpikeSummary:
    record = spike_summary(samples, POINT, started_at=100.0, warmup_end=101.0, load_end=110.0,
                           retry_refused=retries, records=records or [])
    assert record is not None
    return record


def slow_after_spike(index: int, due: float) -> Sample:
    """After the spike: slow while the backlog drains (105-105.5 and again 106-106.5)."""
    lagging = 105.0 <= due < 105.5 or 106.0 <= due < 106.5
    return ok(index, due, 0.300 if lagging else 0.021)


def test_recovery_is_the_first_bin_from_which_every_later_bin_is_back() -> None:
    samples = [
        *steady(100.0, 103.0, 0.1, 0, lambda i, t: ok(i, t, 0.020)),  # warm-up + before
        *steady(103.0, 105.0, 0.02, 100, lambda i, t: (refused if i % 2 else
                                                       lambda i, t: ok(i, t, 0.200))(i, t)),
        *steady(105.0, 110.0, 0.1, 300, slow_after_spike),
    ]
    record = summary(samples, [{"kind": "host", "t": 100.6, "target_rss_mb": 200.0},
                               {"kind": "gpu", "t": 101.0, "util_pct": 0.0},
                               {"kind": "host", "t": 104.1, "target_rss_mb": 260.5},
                               {"kind": "host", "t": 108.0, "target_rss_mb": 241.0}])
    assert (record.start_s, record.end_s, record.retry_refused) == (103.0, 105.0, 0)
    before, during, after = record.before, record.during, record.after
    assert (before.start_s, before.end_s, before.sent, before.refused) == (101.0, 103.0, 20, 0)
    assert before.offered_rps == pytest.approx(10.0)
    assert before.ttft_ms is not None and before.ttft_ms.p50 == pytest.approx(20.0)
    assert (during.sent, during.refused, during.refused_share) == (100, 50, 0.5)
    assert during.offered_rps == pytest.approx(50.0) and during.sent_rps == pytest.approx(50.0)
    assert during.ttft_ms is not None and during.ttft_ms.p99 == pytest.approx(200.0)
    assert (during.users, during.answered, during.gave_up, during.failed) == (100, 50, 50, 0)
    assert (during.attempts_mean, during.attempts_max) == (1.0, 1)
    assert (after.sent, after.refused) == (50, 0)
    # 105.0-105.5 slow, 105.5-106.0 back (a lull), 106.0-106.5 slow again, back from 106.5 on
    assert record.recovery_s == pytest.approx(1.5) and record.not_recovered is None
    assert (record.rss_start_mb, record.rss_peak_mb, record.rss_growth_mb) == (200.0, 260.5,
                                                                               60.5)


def test_a_target_still_refusing_at_the_end_never_recovered() -> None:
    samples = [
        *steady(101.0, 103.0, 0.1, 0, lambda i, t: ok(i, t, 0.020)),
        *steady(103.0, 110.0, 0.05, 100, lambda i, t: (refused(i, t) if i % 4 == 0
                                                       else ok(i, t, 0.022))),
    ]
    record = summary(samples)
    assert record.recovery_s is None
    assert record.not_recovered is not None and "\n" not in record.not_recovered
    assert record.not_recovered.startswith("not back by the end of the load: attempts sent "
                                           "4.5-5 s after the spike had 2 of 10 refused")
    assert (record.rss_start_mb, record.rss_growth_mb) == (None, None)  # no host telemetry


def test_retries_are_grouped_into_users_and_a_late_retry_delays_recovery() -> None:
    users = [
        refused(200, 103.2), refused(200, 103.2, sent=103.25, attempt=2),
        ok(200, 103.2, 0.020, sent=103.31, attempt=3),  # answered at 103.33: waited 130 ms
        *(refused(201, 103.4, sent=t, attempt=k + 1)
          for k, t in enumerate((103.401, 103.5, 103.8, 104.5, 105.1))),  # gave up at 105.102
    ]
    samples = [*steady(101.0, 103.0, 0.1, 0, lambda i, t: ok(i, t, 0.020)), *users,
               *steady(105.0, 110.0, 0.1, 300, lambda i, t: ok(i, t, 0.020))]
    record = summary(samples, retries=4)
    during = record.during
    assert (during.users, during.answered, during.gave_up) == (2, 1, 1)
    assert (during.attempts_mean, during.attempts_max) == (4.0, 5)
    assert (during.sent, during.refused) == (7, 6)  # the fifth attempt went out after the spike
    assert during.wait_ms is not None
    assert during.wait_ms.p50 == pytest.approx((130.0 + 1702.0) / 2)
    assert during.wait_ms.max == pytest.approx(1702.0)
    assert (record.after.sent, record.after.refused, record.after.users) == (51, 1, 50)
    assert record.after.attempts_max == 1
    assert record.recovery_s == pytest.approx(0.5)  # the late retry's bin was refused
    assert record.retry_refused == 4


def test_only_a_spike_point_gets_a_record() -> None:
    constant = LoadPoint("r10", "constant", duration_s=9, warmup_s=1, rate_rps=10)
    assert spike_summary([ok(0, 101.0, 0.02)], constant, started_at=100.0, warmup_end=101.0,
                         load_end=110.0) is None


def test_without_an_admitted_request_before_the_spike_recovery_cannot_be_judged() -> None:
    record = summary([*steady(103.0, 110.0, 0.1, 0, lambda i, t: refused(i, t))])
    assert record.recovery_s is None
    assert record.not_recovered == "no admitted request before the spike to compare with"
    assert record.before.ttft_ms is None and record.before.refused_share is None


def test_a_target_back_in_every_bin_after_the_spike_recovered_at_once() -> None:
    samples = [*steady(101.0, 103.0, 0.1, 0, lambda i, t: ok(i, t, 0.020)),
               *steady(103.0, 105.0, 0.1, 100, lambda i, t: refused(i, t)),
               *steady(105.6, 110.0, 0.2, 300, lambda i, t: ok(i, t, 0.022))]  # 105-105.5: none
    record = summary(samples)
    assert (record.recovery_s, record.not_recovered) == (0.0, None)
    assert record.during.refused_share == 1.0 and record.during.ttft_ms is None
