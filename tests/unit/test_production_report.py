"""The report's "Production behaviour" table, fed typed summary points shaped like the runner's:
a blocked loop's censored probes, a target killed during its second point, refusals, a drain,
and spike points with and without retrying clients."""

from __future__ import annotations

from harness.report.production import production_section
from harness.report.run_data import RunData
from harness.summary.fault import FaultSummary
from harness.summary.record import (
    SCHEMA_VERSION,
    Distribution,
    Load,
    PointFailure,
    PointSummary,
    ProbeSummary,
    Requests,
    RunSummary,
    TargetRun,
)
from harness.summary.spike import SpikePhase, SpikeSummary
from tests.manifests import manifest, scenario
from tests.summaries import typed_point


def run_of(points: list[PointSummary], targets: dict[str, TargetRun]) -> RunData:
    summary = RunSummary(schema_version=SCHEMA_VERSION, run="r", scenario="s", interrupted=False,
                         targets=targets, points=tuple(points))
    return RunData("r", None, summary)


def test_a_blocked_loop_and_a_dead_target_each_get_a_row() -> None:
    waits = [1.8, 2.1, 2.4, 10000.0, 10000.0]  # two probes censored at the 10 s timeout
    probe = ProbeSummary(latency_ms=Distribution.of(waits), sent=5, answered=3, censored=2,
                         missed_ticks=98, timeout_ms=10000.0)
    blocked = typed_point("fastapi_blocking", "c4", Load("closed", concurrency=4), probe=probe)
    failure = PointFailure(reason="the target process exited with code -9", detected_at_s=12.6,
                           first_error_at_s=12.35, failed_requests=7)
    died = typed_point("fastapi_threadpool", "c2", Load("closed", concurrency=2),
                       failure=failure, flags=("target_failed",))
    targets = {"fastapi_blocking": TargetRun("fastapi_blocking", {}, "ok"),
               "fastapi_threadpool": TargetRun("fastapi_threadpool", {}, "failed",
                                               error=failure.reason, failed_point="c2",
                                               skipped=("c3",))}
    html = production_section(run_of([blocked, died], targets))
    assert html.startswith("<h2 id='production'>Production behaviour</h2>")
    assert html.count("<tr><td>") == 2
    assert "2 of 5 got no answer within 10 s" in html
    assert "noticed 0.25 s after the first failed request" in html
    assert "7 failed requests recorded; points skipped: c3" in html


def test_a_run_without_fault_experiments_has_no_section() -> None:
    plain = typed_point("flask_threads", "c1", Load("closed", concurrency=1))
    assert production_section(run_of([plain], {})) == ""


def test_refusals_and_timeouts_get_their_rows() -> None:
    ttft = Distribution.of([40.0, 42.0, 45.0, 51.0])
    refused = typed_point("fastapi_threadpool", "c20", Load("closed", concurrency=20),
                          requests=Requests(ok=4, http_error=0, refused=12, timeout=0,
                                            truncated=0, conn_error=0, total=16), ttft_ms=ttft)
    slow = typed_point("fastapi_threadpool", "c2", Load("closed", concurrency=2),
                       requests=Requests(ok=0, http_error=0, refused=0, timeout=6, truncated=0,
                                         conn_error=0, total=6))
    html = production_section(run_of([refused, slow], {}))
    assert "75% of requests were refused (503)" in html and "12 refused, 4 ok of 16" in html
    assert "6 of 6 requests hit a client timeout" in html


def test_a_sigterm_point_gets_a_shutdown_row() -> None:
    fault = FaultSummary(kind="sigterm", signal_at_s=4.1, exit_at_s=5.35, drain_s=1.25,
                         in_flight_at_signal=8, completed=7, cut=1, sent_after=24,
                         refused_after=24)
    point = typed_point("fastapi_threadpool", "c8", Load("closed", concurrency=8), fault=fault,
                        requests=Requests(ok=7, http_error=0, refused=3, timeout=0,
                                          truncated=1, conn_error=21, total=32))
    html = production_section(run_of([point], {}))
    assert "shutdown: SIGTERM mid-load" in html
    assert "overload" not in html  # the drain's 503s are not backpressure
    assert "of 8 streams in flight at the SIGTERM, 7 completed and 1 were cut" in html
    assert "24 of 24 requests sent afterwards were refused" in html
    assert "drain (signal → process exit): 1.25 s" in html


def test_a_disconnect_point_gets_a_row_with_the_clean_up_and_the_waste() -> None:
    fault = FaultSummary(kind="disconnect", completed=14, after_tokens=4, requests=28,
                         abandoned=14, last_abandon_at_s=7.1, load_end_at_s=7.9,
                         cleanup_wait_s=10.0, metrics_source="patternbench",
                         in_flight_zero_at_s=7.95, in_flight_zero_after_s=0.85,
                         in_flight_zero_after_load_s=0.05, in_flight_left=0,
                         generated_tokens=1868, received_tokens=1848, wasted_tokens=20,
                         wasted_per_abandoned=20 / 14)
    point = typed_point("fastapi_batching", "c8", Load("closed", concurrency=8), fault=fault,
                        requests=Requests(ok=14, http_error=0, refused=0, timeout=0,
                                          truncated=0, conn_error=0, total=14, abandoned=14))
    html = production_section(run_of([point], {}))
    assert html.count("<tr><td>") == 1 and "disconnect: clients abandon streams" in html
    assert ("14 of 28 streams abandoned after 4 tokens; the server was idle again 0.85 s "
            "after the last one (0.05 s after the load&#x27;s end)") in html
    assert "14 completed ok; 20 tokens generated that nobody read (1.4 per abandoned" in html


def test_a_disconnect_row_says_what_the_target_does_not_export() -> None:
    blind = FaultSummary(kind="disconnect", completed=3, after_tokens=4, requests=6,
                         abandoned=3, cleanup_wait_s=10.0, received_tokens=396)
    busy = FaultSummary(kind="disconnect", completed=3, after_tokens=4, requests=6,
                        abandoned=3, cleanup_wait_s=10.0, metrics_source="patternbench",
                        in_flight_left=2, generated_tokens=700, received_tokens=396,
                        wasted_tokens=304, wasted_per_abandoned=304 / 3)
    # a proxy's upstream counter read one token short of what its clients counted
    short = FaultSummary(kind="disconnect", completed=24, after_tokens=4, requests=40,
                         abandoned=16, cleanup_wait_s=10.0, metrics_source="patternbench",
                         in_flight_left=0, generated_tokens=3136, received_tokens=3137)
    points = [typed_point(name, "c8", Load("closed", concurrency=8), fault=fault)
              for name, fault in (("external", blind), ("fastapi_blocking", busy),
                                  ("fastapi_proxy", short))]
    html = production_section(run_of(points, {}))
    assert ("the server counted 3136 generated tokens, 1 fewer than the clients read (3137)"
            in html.replace("&#x27;", "'"))
    assert "in-flight requests not exported" in html
    assert "tokens generated: not exported" in html
    assert "the server still had 2 requests in flight 10 s after the load" in html
    assert "304 tokens generated that nobody read (101.3 per abandoned stream)" in html


def spike_phase(start: float, end: float, *, rate: float, sent: int, refused: int,
                ttft: list[float], answered: int, gave_up: int, attempts: float = 1.0,
                most: int = 1, waits: list[float] | None = None) -> SpikePhase:
    users = answered + gave_up
    return SpikePhase(start_s=start, end_s=end, offered_rps=rate, sent_rps=sent / (end - start),
                      sent=sent, refused=refused, refused_share=refused / sent,
                      ttft_ms=Distribution.of(ttft), users=users, answered=answered,
                      gave_up=gave_up, failed=0, attempts_mean=attempts, attempts_max=most,
                      wait_ms=Distribution.of(waits if waits is not None else ttft))


def spike_record(retries: int, recovery_s: float | None) -> SpikeSummary:
    return SpikeSummary(
        start_s=14.0, end_s=16.0, retry_refused=retries,
        before=spike_phase(11.0, 14.0, rate=11.0, sent=33, refused=0, ttft=[20.4, 20.9, 21.7],
                           answered=33, gave_up=0),
        during=spike_phase(14.0, 16.0, rate=110.0, sent=300, refused=210,
                           ttft=[21.0, 23.5, 40.2], answered=90, gave_up=130, attempts=1.36,
                           most=5, waits=[23.0, 410.0, 1250.0]),
        after=spike_phase(16.0, 25.0, rate=11.0, sent=99, refused=0, ttft=[20.5, 21.0],
                          answered=99, gave_up=0),
        bin_s=0.5, recovery_s=recovery_s,
        not_recovered=None if recovery_s is not None else (
            "not back by the end of the load: attempts sent 8.5-9 s after the spike had a TTFT "
            "p50 of 950 ms (before the spike: 21 ms, limit 1.5×)"),
        rss_start_mb=180.25, rss_peak_mb=188.75, rss_growth_mb=8.5)


def test_a_spike_point_gets_an_overload_row_with_its_phases_and_recovery() -> None:
    load = Load("spike", rate_rps=11.0, params={"spike_rate_rps": 110.0})
    retrying = typed_point("limited_retry", "r11", load, spike=spike_record(4, 0.5),
                           requests=Requests(ok=222, http_error=0, refused=210, timeout=0,
                                             truncated=0, conn_error=0, total=432))
    queued = typed_point("queued", "r11", load, spike=spike_record(0, None))  # never refused
    summary = run_of([retrying, queued], {}).summary
    data = summary.to_json()
    assert RunSummary.from_json(data).to_json() == data  # the record reads back
    html = production_section(run_of([retrying, queued], {}))
    assert html.count("overload: a spike to 10.0× the arrival rate") == 2
    assert "during the spike 70% of requests were refused (503; before it 0%)" in html
    assert "admitted TTFT p50 / p99 23.5 / 39.9 ms during vs 20.9 / 21.7 ms before" in html
    assert "users (clients retrying each 503 up to 4 times) waited 410.0 / 1,233.2 ms" in html
    assert "back to the pre-spike state 0.5 s after the spike&#x27;s end" in html
    assert "users (clients that do not retry)" in html
    assert "not recovered: not back by the end of the load: attempts sent 8.5-9 s" in html
    assert "of 220 users due in the spike 90 got an answer, 130 gave up" in html
    assert "1.36 attempts per user (most 5)" in html
    assert "target RSS +8.5 MiB (180.2 → 188.8)" in html
    assert "offered 11.00 → 110.0 → 11.00 req/s" in html


def test_a_closed_loop_overload_row_says_when_its_clients_retried() -> None:
    point = typed_point("limited_retry", "c20", Load("closed", concurrency=20),
                        requests=Requests(ok=40, http_error=0, refused=60, timeout=0,
                                          truncated=0, conn_error=0, total=100))
    retrying = manifest(scenario(targets=[{"name": "fastapi_threadpool", "label": "limited_retry",
                                           "client": {"retry_refused": 4}}]))
    summary = run_of([point], {}).summary
    html = production_section(RunData("r", retrying, summary))
    assert "60% of requests were refused (503)" in html
    assert "clients retried each 503 up to 4 times" in html
