"""The report's "Production behaviour" table, fed typed summary points shaped like the runner's:
a blocked loop's censored probes and a target killed during its second point."""

from __future__ import annotations

from harness.report.production import production_section
from harness.report.run_data import RunData
from harness.summary import (
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
from harness.summary_fault import FaultSummary
from tests.summaries import typed_point


def run_of(points: list[PointSummary], targets: dict[str, TargetRun]) -> RunData:
    summary = RunSummary(schema_version=SCHEMA_VERSION, run="r", scenario="s", interrupted=False,
                         targets=targets, points=tuple(points))
    return RunData("r", {}, summary)


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
    points = [typed_point(name, "c8", Load("closed", concurrency=8), fault=fault)
              for name, fault in (("external", blind), ("fastapi_blocking", busy))]
    html = production_section(run_of(points, {}))
    assert "in-flight requests not exported" in html
    assert "tokens generated: not exported" in html
    assert "the server still had 2 requests in flight 10 s after the load" in html
    assert "304 tokens generated that nobody read (101.3 per abandoned stream)" in html
