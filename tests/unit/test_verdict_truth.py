"""Every verdict sentence is true on the data it cites: one test per defect a review found
(issue 22), each on summaries shaped like the runner writes them (tests/unit/test_verdict.py's
`point`: goodput with its interval and denominator, throughput with its interval)."""

from __future__ import annotations

from dataclasses import replace

from harness.summary.record import (
    Distribution,
    GpuTelemetry,
    HealthTelemetry,
    PointFailure,
    PointSummary,
    PointTelemetry,
    ProbeSummary,
    ProcessTree,
    Requests,
    ServerTelemetry,
    TargetRun,
)
from harness.verdict.ranking import verdict
from harness.verdict.text import Kind, slo_text
from tests.unit.test_verdict import point, summary


def texts(points: list[PointSummary], order: list[str], kind: Kind) -> list[str]:
    return [s.text for s in verdict(summary(points), None, order).of_kind(kind)]


def test_a_ratio_divides_by_the_others_first_fail_not_its_last_pass() -> None:
    """B passes 4 and fails 8, A holds ≥ 32: A holds more than 32 / 8 = 4×, not 'at least 8×'."""
    a = [point("a", c, good=200, total=200, ttft_ms=50, tok_s=100 * c) for c in (8, 16, 32)]
    b = [point("b", 4, good=200, total=200, ttft_ms=50, tok_s=400),
         point("b", 8, good=40, total=200, ttft_ms=2000, tok_s=420)]
    ranking = texts(a + b, ["a", "b"], "ranking")
    assert ranking[1] == ("a holds more than 4.0× the load of b within the SLO (32 passes; b "
                          "fails at 8).")


def test_with_repeats_the_reason_reads_the_repeat_that_failed() -> None:
    c4 = point("b", 4, good=200, total=200, ttft_ms=50, tok_s=400)
    passing = replace(point("b", 8, good=196, total=200, ttft_ms=300, tok_s=700), repeat=0)
    failing = replace(point("b", 8, good=170, total=200, ttft_ms=1200, tok_s=650), repeat=1)
    a = [point("a", c, good=200, total=200, ttft_ms=50, tok_s=100 * c) for c in (4, 8)]
    order = ["a", "b"]
    ranking = texts([*a, c4, passing, failing], order, "ranking")[0]
    assert "2. b: 4 requests at once" in ranking and "8 fails (85% within)" in ranking
    reasons = texts([*a, c4, passing, failing], order, "reason")
    assert reasons[0].startswith("At c=8 only 85% of b's requests met the SLO (170 of 200)")


def test_a_target_that_died_mid_sweep_is_not_ranked_and_is_said_to_have_died() -> None:
    died = PointFailure(reason="the target process exited with code -9", detected_at_s=40.0,
                        first_error_at_s=39.5, failed_requests=12)
    a = [point("a", c, good=200, total=200, ttft_ms=50, tok_s=100 * c) for c in (1, 4, 8)]
    b = [point("b", 1, good=200, total=200, ttft_ms=50, tok_s=100),
         point("b", 4, good=150, total=200, ttft_ms=900, tok_s=300, failure=died,
               flags=("target_failed",))]
    dead = TargetRun(name="b", options={}, status="failed", error=died.reason,
                     failed_point="c4", skipped=("c8",))
    v = verdict(summary(a + b, {"b": dead}), None, ["a", "b"])
    ranking = [s.text for s in v.of_kind("ranking")]
    assert "b:" not in ranking[0]
    assert ranking[-1] == ("b died at c4 (the target process exited with code -9) and is not "
                           "ranked: the levels it ran before are measured, but none of them is "
                           "its capacity.")
    assert not any("failed to start" in s.text for s in v.of_kind("caveat"))


def test_a_breach_counts_the_refused_requests() -> None:
    """30 of 100 refused with 503: the misses are the refusals, not warm-up requests."""
    a = [point("a", c, good=200, total=200, ttft_ms=50, tok_s=100 * c) for c in (1, 4)]
    b = [point("b", 1, good=100, total=100, ttft_ms=50, tok_s=100),
         point("b", 4, good=70, total=100, ttft_ms=80, tok_s=280, failed=30)]
    reasons = texts(a + b, ["a", "b"], "reason")
    assert reasons[0] == ("At c=4 only 70% of b's requests met the SLO (70 of 100): 30 of 100 "
                          "failed: 30 refused with 503, and a failed request meets no limit.")
    assert "b refused 30 of 100 requests with 503 at c=4" in reasons[1]


def _server(queue: float, batch: float | None, running: float = 16) -> PointTelemetry:
    tree = ProcessTree(samples=10, cpu_pct=None, rss_peak_mb=300.0, pss_peak_mb=None,
                       procs_max=1)
    return PointTelemetry(
        window_s=5.0, gpu=GpuTelemetry(available=False, reason="no NVML"), target=tree,
        driver=tree, health=HealthTelemetry(count=5, failed=0, latency_ms=None),
        server=ServerTelemetry(source="patternbench", scrapes=8, failed=0, in_flight_max=running,
                               queue_depth_max=queue, batch_size_max=batch,
                               batch_size_mean=batch, kv_cache_pct_max=None,
                               prefix_cache_hit_pct=None))


def test_one_model_is_claimed_only_with_a_queue_and_a_batch_gauge_of_one() -> None:
    a = [point("a", c, good=200, total=200, ttft_ms=50, tok_s=100 * c) for c in (1, 8)]
    base = point("b", 1, good=200, total=200, ttft_ms=50, tok_s=100)
    slow = point("b", 8, good=20, total=200, ttft_ms=1500, tok_s=110)
    for telemetry in (_server(queue=6, batch=None), _server(queue=0, batch=16)):
        reasons = texts([*a, base, replace(slow, telemetry=telemetry)], ["a", "b"], "reason")
        assert not any("Requests queue" in r for r in reasons), reasons
        assert any(r.startswith("Requests waited in b") for r in reasons)
    batched = texts([*a, base, replace(slow, telemetry=_server(queue=0, batch=16))],
                    ["a", "b"], "reason")
    assert any("batches of up to 16 ran, so the model itself was the limit" in r
               for r in batched)


def test_the_models_a_queue_waits_for_are_counted_from_the_servers_gauge() -> None:
    """A processpool of 2 replicas as a real run reports it (capacity.toml, c=5): 2 running,
    3 queued, batch gauge 0 — two models, not one."""
    a = [point("a", c, good=200, total=200, ttft_ms=50, tok_s=100 * c) for c in (1, 8)]
    base = point("b", 1, good=200, total=200, ttft_ms=50, tok_s=100)
    slow = point("b", 8, good=20, total=200, ttft_ms=1500, tok_s=110)
    for running, models in ((2, "its 2 models, one request each"), (1, "its one model")):
        telemetry = _server(queue=3, batch=0, running=running)
        reasons = texts([*a, base, replace(slow, telemetry=telemetry)], ["a", "b"], "reason")
        assert (f"Requests queue in b at c=8 for {models}: up to 3 waited in the "
                f"server's queue while at most {running} ran at once and its batch gauge never "
                "passed 0.") in reasons


def _probe(answered: list[float], censored: int) -> ProbeSummary:
    return ProbeSummary(latency_ms=Distribution.of([*answered, *[1000.0] * censored]),
                        sent=len(answered) + censored, answered=len(answered),
                        censored=censored, missed_ticks=0, timeout_ms=1000.0)


def test_one_late_probe_of_fifty_is_no_stall_and_threads_have_no_event_loop() -> None:
    a = [point("fastapi_batching", c, good=200, total=200, ttft_ms=50, tok_s=100 * c)
         for c in (1, 8)]
    order = ["fastapi_batching", "fastapi_blocking"]
    base = point("fastapi_blocking", 1, good=200, total=200, ttft_ms=50, tok_s=100)
    slow = point("fastapi_blocking", 8, good=20, total=200, ttft_ms=1500, tok_s=110)
    one = replace(slow, probe=_probe([2.0] * 49, censored=1))
    assert not any("/health" in r for r in texts([*a, base, one], order, "reason"))
    many = replace(slow, probe=_probe([2.0] * 40, censored=10))
    stalls = [r for r in texts([*a, base, many], order, "reason") if "/health" in r]
    assert stalls and stalls[0].endswith("; the model blocks the event loop.")
    threads = [replace(p, target="flask_threads", target_name="flask_threads")
               for p in (base, many)]
    stalls = [r for r in texts([*a, *threads], ["fastapi_batching", "flask_threads"], "reason")
              if "/health" in r]
    assert stalls and stalls[0].endswith("; every request thread was busy.")


def test_a_share_just_under_the_target_is_not_written_as_the_target() -> None:
    a = [point("a", c, good=500, total=500, ttft_ms=50, tok_s=100 * c) for c in (1, 8)]
    b = [point("b", 1, good=500, total=500, ttft_ms=50, tok_s=100),
         point("b", 8, good=448, total=500, ttft_ms=900, tok_s=300)]  # 0.896, [0.866, 0.920]
    ranking = texts(a + b, ["a", "b"], "ranking")[0]
    assert "8 is unsure (89.6% within)" in ranking


def test_the_slo_is_written_as_it_is_checked() -> None:
    """A request meets a limit at it (`meets_slo`: value ≤ limit)."""
    assert slo_text({"ttft_ms": 500, "e2e_ms": 4000}, 0.9) == (
        "first token ≤ 500 ms and whole reply ≤ 4000 ms, for 90% of requests")


def test_an_unsure_level_says_it_could_not_show_the_share() -> None:
    a = [point("a", c, good=200, total=200, ttft_ms=50, tok_s=100 * c) for c in (1, 8)]
    b = [point("b", 1, good=200, total=200, ttft_ms=50, tok_s=100),
         point("b", 8, good=11, total=12, ttft_ms=300, tok_s=300)]
    reasons = texts(a + b, ["a", "b"], "reason")
    assert reasons[0] == ("At c=8 92% of b's requests met the SLO (11 of 12), too few to show "
                          "90% with confidence (95% interval 65%–99%); it does not count as a pass "
                          "(a longer point, or a capacity search, which runs a level until it can "
                          "tell, would).")


def test_make_bench_separates_the_two_best_by_their_ratio_at_the_highest_common_load() -> None:
    """The issue's case: both hold ≥ 8 requests at once; at c=8 batching delivered 3.8× the
    tokens/s of flask_threads with TTFT p50 29 vs 236 ms."""
    batching = [point("fastapi_batching", c, good=300, total=300, ttft_ms=ttft, tok_s=tok)
                for c, ttft, tok in ((1, 20, 110), (4, 24, 420), (8, 29, 760))]
    threads = [point("flask_threads", c, good=100, total=100, ttft_ms=ttft, tok_s=tok)
               for c, ttft, tok in ((1, 20, 100), (4, 120, 190), (8, 236, 199))]
    ranking = texts(batching + threads, ["flask_threads", "fastapi_batching"], "ranking")
    assert ranking[1].startswith(
        "fastapi_batching and flask_threads both hold ≥ 8 requests at once in this run; at c=8 "
        "fastapi_batching delivered 3.82× the output tokens/s of flask_threads (760 vs 199 "
        "tok/s, 95% interval 3.66–3.98×), with TTFT p50 29 ms vs 236 ms (0.12×, 0.12–0.13×).")


def test_requests_counted_are_the_goodput_denominator() -> None:
    p = point("a", 8, good=70, total=100, ttft_ms=80, tok_s=280)
    assert p.goodput is not None and p.goodput.counted == 100
    assert p.requests == Requests(ok=100, http_error=0, refused=0, timeout=0, truncated=0,
                                  conn_error=0, total=100)


def test_a_short_level_too_small_to_judge_bounds_nothing() -> None:
    """make bench's shape: 5-s points, 6 requests at c=1 (Wilson 61%–100%: unsure at 0.9).
    A level that passes above it holds; a target whose every level is unsure is 'not shown',
    gets no 'more than N×' from an unsure level, and the two are set apart by their ratio."""
    batching = [point("fastapi_batching", 1, good=12, total=12, ttft_ms=20, tok_s=128),
                point("fastapi_batching", 4, good=43, total=43, ttft_ms=24, tok_s=520),
                point("fastapi_batching", 8, good=61, total=61, ttft_ms=29, tok_s=684)]
    threads = [point("flask_threads", c, good=n, total=n, ttft_ms=20 * c, tok_s=88)
               for c, n in ((1, 6), (4, 10), (8, 15))]
    ranking = texts(batching + threads, ["flask_threads", "fastapi_batching"], "ranking")
    assert ranking[0].endswith(
        "1. fastapi_batching: ≥ 8 requests at once (100% within the SLO, goodput 12.20 req/s), "
        "not measured above; 2. flask_threads: not shown at any level measured (1 request at "
        "once: 100% within, too few requests to show the share with confidence).")
    assert not any("holds more than" in t for t in ranking)
    assert ranking[1].startswith(
        "fastapi_batching holds ≥ 8 requests at once and flask_threads no level shown within the "
        "SLO with confidence; at c=8 fastapi_batching delivered 7.77× the output tokens/s of "
        "flask_threads (684 vs 88 tok/s")


def test_an_unsure_sweep_level_is_neither_a_fail_below_a_pass_nor_said_to_be_measured_again(
        ) -> None:
    """make bench's shape: 5-s points hold 5 requests at one stream, too few to show 90%. Below
    a level that passes that bounds nothing, so no 'passes at c=4 although c=1 did not' caveat;
    and a sweep measures a level once, so its reason does not claim a second measurement."""
    a = [point("a", 1, good=5, total=5, ttft_ms=80, tok_s=60),
         *(point("a", c, good=200, total=200, ttft_ms=90, tok_s=100 * c) for c in (4, 8))]
    b = [point("b", 1, good=5, total=5, ttft_ms=80, tok_s=60),
         point("b", 4, good=20, total=100, ttft_ms=1500, tok_s=70)]
    caveats = texts([*a, *b], ["a", "b"], "caveat")
    assert not any("although" in c for c in caveats), caveats
    # b's reason is the level that clearly fails, not the short one that could not tell
    reasons = texts([*a, *b], ["a", "b"], "reason")
    assert reasons[0].startswith("At c=4 only 20% of b's requests met the SLO (20 of 100)")
    assert not any(r.startswith("At c=1") for r in reasons), reasons
    only_unsure = texts([*a, b[0]], ["a", "b"], "reason")  # no clear fail: the unsure level
    unsure = next(r for r in only_unsure if r.startswith("At c=1"))
    assert "too few to show 90% with confidence" in unsure and "measured again" not in unsure
    assert unsure.endswith("it does not count as a pass (a longer point, or a capacity search, "
                           "which runs a level until it can tell, would).")
    retried = replace(b[0], point="c1.3")  # a capacity level measured a third time
    again = texts([*a, retried], ["a", "b"], "reason")
    assert any(r.endswith("measured again it stayed unsure, so it counts as a fail.")
               for r in again), again


def test_a_fail_below_a_pass_is_still_said() -> None:
    a = [point("a", 1, good=200, total=200, ttft_ms=80, tok_s=60),
         point("a", 4, good=100, total=200, ttft_ms=1500, tok_s=300),
         point("a", 8, good=200, total=200, ttft_ms=90, tok_s=800)]
    caveats = texts(a, ["a"], "caveat")
    assert any(c.startswith("a passes at c=8 although c=4 did not") for c in caveats), caveats
