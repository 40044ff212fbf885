"""The load loop's reaction to failing requests: per-user back-off and the dead-target streak.

Samples are shaped as the builtin driver builds them: a refused connection is `conn_error` with
`failed_at` and no HTTP status; a 503 is `refused` with its status; a success has `done_at`.
"""

from __future__ import annotations

import pytest

from harness.drivers.backoff import BASE_S, LIMIT, MAX_S, Backoff, ErrorStreak
from harness.run.liveness import point_failure
from harness.samples import Sample


def refused_connection(sent_at: float, took_s: float = 0.0004) -> Sample:
    return Sample("t-p-1", "t", "p", sent_at, sent_at, "conn_error", failed_at=sent_at + took_s,
                  error="Cannot connect to host 127.0.0.1:8123 [Connect call failed]")


def ok(sent_at: float, took_s: float = 0.2) -> Sample:
    return Sample("t-p-2", "t", "p", sent_at, sent_at, "ok", first_byte_at=sent_at + 0.01,
                  first_token_at=sent_at + 0.02, done_at=sent_at + took_s, output_tokens=16,
                  tokens_source="usage", http_status=200)


def overloaded(sent_at: float) -> Sample:
    return Sample("t-p-3", "t", "p", sent_at, sent_at, "refused", first_byte_at=sent_at + 0.001,
                  failed_at=sent_at + 0.002, http_status=503,
                  error='{"error": {"message": "server busy", "type": "overloaded"}}')


def test_immediate_failures_back_off_exponentially_up_to_the_cap() -> None:
    backoff = Backoff()
    waits = [backoff.after(refused_connection(float(i))) for i in range(12)]
    assert waits[:4] == [BASE_S, 2 * BASE_S, 4 * BASE_S, 8 * BASE_S]
    assert waits[-1] == MAX_S and max(waits) == MAX_S


def test_a_success_or_a_slow_failure_resets_the_back_off() -> None:
    backoff = Backoff()
    backoff.after(refused_connection(0.0))
    backoff.after(refused_connection(0.1))
    assert backoff.after(ok(0.2)) == 0.0
    assert backoff.after(refused_connection(0.5)) == BASE_S
    after_work = Sample("t-p-5", "t", "p", 0.6, 0.6, "http_error", first_byte_at=2.6,
                        failed_at=2.6, http_status=500, error="Internal Server Error")
    assert backoff.after(after_work) == 0.0  # the server worked on it: no back-off


def test_refusals_and_connection_errors_back_off_whatever_they_took() -> None:
    backoff = Backoff()
    slow_503 = Sample("t-p-6", "t", "p", 1.0, 1.0, "refused", first_byte_at=1.04,
                      failed_at=1.04, http_status=503, error='{"error": {"type": "overloaded"}}')
    assert backoff.after(slow_503) == BASE_S
    assert backoff.after(refused_connection(2.0, took_s=0.3)) == 2 * BASE_S


def test_a_fast_503_backs_off_too() -> None:
    assert Backoff().after(overloaded(1.0)) == BASE_S


def test_the_streak_trips_after_limit_dead_server_failures_in_a_row() -> None:
    streak = ErrorStreak()
    reasons = [streak.observe(refused_connection(float(i))) for i in range(LIMIT)]
    assert reasons[:-1] == [None] * (LIMIT - 1)
    assert reasons[-1] is not None and "Connect call failed" in reasons[-1]
    assert reasons[-1].startswith(f"{LIMIT} requests in a row")


def test_a_success_resets_the_streak_and_refusals_do_not_count() -> None:
    streak = ErrorStreak()
    for i in range(LIMIT - 1):
        assert streak.observe(refused_connection(float(i))) is None
    assert streak.observe(ok(30.0)) is None
    for i in range(3 * LIMIT):
        assert streak.observe(overloaded(40.0 + i)) is None  # backpressure is not death
    assert streak.count == 0


@pytest.mark.parametrize(("status", "counts"), [(500, True), (502, True), (400, False)])
def test_http_errors_count_only_when_the_server_broke(status: int, counts: bool) -> None:
    sample = Sample("t-p-4", "t", "p", 1.0, 1.0, "http_error", first_byte_at=1.001,
                    failed_at=1.002, http_status=status, error="Internal Server Error")
    streak = ErrorStreak(limit=1)
    assert (streak.observe(sample) is not None) is counts


def test_the_point_failure_dates_the_first_error_after_the_last_success() -> None:
    samples = [refused_connection(0.1), ok(1.0, took_s=0.5), refused_connection(2.0),
               refused_connection(2.01)]
    failure = point_failure("the target process exited with code -9", 2.3, samples)
    assert failure.first_error_at_s == pytest.approx(2.0004)
    assert failure.failed_requests == 3
    assert failure.detected_at_s == 2.3
