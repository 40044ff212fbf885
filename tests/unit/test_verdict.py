"""The verdict from realistic summaries (built from the real record types, with the shapes the
runner writes): the ranking and its ratios, the reason each pattern loses, the caveats, links,
and the escaping of its HTML."""

from __future__ import annotations

from dataclasses import replace

from harness.metrics.quantiles import wilson
from harness.report.run_data import RunData
from harness.report.verdict import sentence_html, verdict_section
from harness.summary.record import (
    SCHEMA_VERSION,
    Capacity,
    CapacityLevel,
    Distribution,
    Goodput,
    GpuTelemetry,
    HealthTelemetry,
    Load,
    PointSummary,
    PointTelemetry,
    ProbeSummary,
    ProcessTree,
    Requests,
    RunSummary,
    ServerTelemetry,
    TargetRun,
    Throughput,
)
from harness.verdict.ranking import verdict
from harness.verdict.text import Link, Sentence
from tests.manifests import MACHINE, manifest, scenario
from tests.summaries import typed_point

SLO = {"ttft_ms": 1000.0, "tpot_ms": 100.0}
CPU_MANIFEST = manifest(device="cpu", machine=replace(MACHINE, cores=2, usable_cores=2))


def point(target: str, c: int, *, good: int, total: int, ttft_ms: float, tok_s: float,
          **fields: object) -> PointSummary:
    """A closed-loop point of `total` requests, `good` of them within the SLO, with TTFTs
    spread around `ttft_ms` (from scheduled, as goodput judges them)."""
    ttft = Distribution.of(ttft_ms * (0.8 + 0.4 * i / total) for i in range(total))
    ok = total - int(str(fields.pop("failed", 0)))
    requests = Requests(ok=ok, http_error=0, refused=total - ok, timeout=0, truncated=0,
                        conn_error=0, total=total)
    return typed_point(
        target, f"c{c}", Load(kind="closed", concurrency=c), requests=requests,
        ttft_ms=ttft, ttft_sched_ms=ttft, achieved_concurrency=c * 0.97,
        throughput=Throughput(window_s=5.0, req_s=ok / 5, output_tok_s=tok_s,
                              input_tok_s=ok * 128 / 5,
                              ci95={"output_tok_s": (0.97 * tok_s, 1.03 * tok_s)}, sections=10),
        goodput=Goodput(slo=SLO, good_requests=good, req_s=good / 5, fraction=good / total,
                        counted=total, ci95={"fraction": wilson(good, total)}),
        **fields)


def summary(points: list[PointSummary], targets: dict[str, TargetRun] | None = None,
            capacity: dict[str, Capacity] | None = None) -> RunSummary:
    targets = targets or {}
    for p in points:
        targets.setdefault(p.target, TargetRun(name=p.target, options={}, status="ok"))
    return RunSummary(schema_version=SCHEMA_VERSION, run="r", scenario="default",
                      interrupted=False, targets=targets, points=tuple(points),
                      capacity=capacity or {})


def sweep() -> list[PointSummary]:
    """The default scenario's shape: batching holds c=8, threadpool queues past 4, blocking
    stalls its loop at 4."""
    stalled = ProbeSummary(latency_ms=Distribution.of([1000.0] * 9 + [2.0]), sent=10,
                           answered=1, censored=9, missed_ticks=12, timeout_ms=1000.0)
    return [
        point("fastapi_batching", 1, good=40, total=40, ttft_ms=30, tok_s=300),
        point("fastapi_batching", 4, good=120, total=120, ttft_ms=45, tok_s=1100),
        point("fastapi_batching", 8, good=200, total=200, ttft_ms=70, tok_s=1900),
        point("fastapi_threadpool", 1, good=40, total=40, ttft_ms=30, tok_s=300),
        point("fastapi_threadpool", 4, good=119, total=120, ttft_ms=400, tok_s=330),
        point("fastapi_threadpool", 8, good=10, total=45, ttft_ms=1500, tok_s=340),
        point("fastapi_blocking", 1, good=40, total=40, ttft_ms=30, tok_s=300),
        point("fastapi_blocking", 4, good=12, total=40, ttft_ms=1300, tok_s=310, probe=stalled),
    ]


ORDER = ["fastapi_threadpool", "fastapi_blocking", "fastapi_batching"]


def test_batching_wins_on_capacity_with_ratios_and_reasons() -> None:
    v = verdict(summary(sweep()), None, ORDER)
    ranking = v.of_kind("ranking")
    assert ranking[0].text.startswith(
        "Capacity under the SLO (first token ≤ 1000 ms and ≥ 10 tok/s each, for 90% of "
        "requests): 1. fastapi_batching: ≥ 8 requests at once (100% within the SLO, goodput "
        "40.00 req/s), not measured above; 2. fastapi_threadpool: 4 requests at once (99% "
        "within the SLO, goodput 23.80 req/s); 8 fails (22% within); 3. fastapi_blocking: 1 "
        "request at once")
    assert [link.anchor for link in ranking[0].links] == ["target-2", "target-0", "target-1"]
    # batching holds ≥ 8, threadpool less than 8: no ratio above 1 is supported; blocking holds
    # less than 4, so batching holds more than 8 / 4 = 2× its load
    # so the two best are set apart by their ratio where both ran, c=8
    assert [s.text for s in ranking[1:]] == [
        "fastapi_batching holds more than 2.0× the load of fastapi_blocking within the SLO "
        "(8 passes; fastapi_blocking fails at 4).",
        "fastapi_batching holds ≥ 8 requests at once and fastapi_threadpool 4 requests at once; "
        "at c=8 fastapi_batching delivered 5.59× the output tokens/s of fastapi_threadpool "
        "(1,900 vs 340 tok/s, 95% interval 5.36–5.83×), with TTFT p50 70 ms vs 1,493 ms (0.05×, "
        "0.04–0.05×)."]
    reasons = {s.text: s.links for s in v.of_kind("reason")}
    queue = next(t for t in reasons if t.startswith("Requests waited in fastapi_threadpool"))
    assert "from c=1 to c=8 TTFT p50 grew 50.0× (30 ms → 1,493 ms)" in queue
    assert "output throughput grew 1.1× (300 → 340 tok/s), 7.8 in flight" in queue
    assert reasons[queue] == (Link("fastapi_threadpool c8", "target-0-c8"),)
    stall = next(t for t in reasons if "/health stalled" in t)
    assert stall == ("fastapi_blocking's /health stalled at c=4: probe p90 1,000 ms, 9 of 10 "
                     "probes unanswered within 1,000 ms, 12 probe ticks missed while one waited; "
                     "the model blocks the event loop.")
    breach = next(t for t in reasons if t.startswith("At c=8 only 22%"))
    assert "TTFT p90 1,728 ms against 1,000 ms" in breach
    assert not any("fastapi_batching" in t for t in reasons)  # the winner has no reason


def test_failed_target_is_a_caveat_linked_to_its_section() -> None:
    failed = TargetRun(name="fastapi_processpool", options={"replicas": 2}, status="failed",
                       error="Traceback ...\nRuntimeError: replica 1 exited with code -9")
    v = verdict(summary(sweep(), {"fastapi_processpool": failed}), None,
                ["fastapi_processpool", *ORDER])
    (caveat,) = [s for s in v.of_kind("caveat") if "failed to start" in s.text]
    assert caveat.text == ("fastapi_processpool (fastapi_processpool) failed to start and is "
                           "not ranked: RuntimeError: replica 1 exited with code -9")
    assert caveat.links == (Link("fastapi_processpool", "target-0"),)
    assert "fastapi_processpool" not in v.of_kind("ranking")[0].text


def test_too_few_percentiles_are_a_caveat() -> None:
    v = verdict(summary(sweep()), None, ORDER)
    texts = [s.text for s in v.of_kind("caveat")]
    assert ("TTFT p90 is marked too few in 5 of 8 points: it needs 64 values and e.g. "
            "fastapi_batching at c=1 has 40; read those percentiles as rough, the gate refuses "
            "them.") in texts
    assert any(t.startswith("TTFT p99 is marked too few in 8 of 8 points") for t in texts)


def test_driver_bound_points_are_named_and_linked() -> None:
    points = sweep()
    points[2] = replace(points[2], flags=("driver_bound",))
    v = verdict(summary(points), CPU_MANIFEST, ORDER)
    caveats = v.of_kind("caveat")
    (bound,) = [s for s in caveats if "driver-bound" in s.text]
    assert bound.text.startswith("1 of 8 points were driver-bound (fastapi_batching at c=8)")
    assert bound.links == (Link("fastapi_batching c=8", "target-2-c8"),)
    assert any(s.text.startswith("CPU-only run (device cpu on 2 CPU cores)") for s in caveats)


def test_refused_503s_are_the_reason() -> None:
    points = [point("fastapi_batching", c, good=g, total=60, ttft_ms=40, tok_s=t)
              for c, g, t in ((1, 60, 300), (4, 60, 1000), (8, 60, 1800))]
    points += [point("fastapi_proxy", 1, good=60, total=60, ttft_ms=40, tok_s=300),
               point("fastapi_proxy", 4, good=30, total=60, ttft_ms=45, tok_s=500, failed=30)]
    v = verdict(summary(points), None, ["fastapi_batching", "fastapi_proxy"])
    texts = [s.text for s in v.of_kind("reason")]
    assert ("fastapi_proxy refused 30 of 60 requests with 503 at c=4: it sheds load "
            "(backpressure) rather than queue it.") in texts


def test_capacity_record_gives_the_interval_and_a_budget_caveat() -> None:
    points = [point("fastapi_batching", c, good=g, total=50, ttft_ms=40, tok_s=300 * c)
              for c, g in ((1, 50), (2, 50), (4, 50), (8, 20))]
    levels = tuple(CapacityLevel(level=float(p.load.concurrency or 0), point=p.point,
                                 passed=p.point != "c8", good_fraction=p.goodput.fraction
                                 if p.goodput else None, goodput_req_s=None) for p in points)
    cap = Capacity(axis="concurrency", arrival="closed", slo=SLO, share=0.9,
                   last_pass=levels[2], first_fail=levels[3], stopped="budget",
                   elapsed_s=27.3, budget_s=30.0, levels=levels)
    v = verdict(summary(points, capacity={"fastapi_batching": cap}), None, ["fastapi_batching"])
    assert "1. fastapi_batching: 4 requests at once (100% within the SLO); 8 fails (40% " \
           "within)" in v.of_kind("ranking")[0].text
    (budget,) = [s for s in v.of_kind("caveat") if "budget" in s.text]
    assert budget.text == ("fastapi_batching's capacity search stopped at its 30 s budget after "
                           "4 levels (27 s): last pass 4 requests at once, first fail 8; a "
                           "larger budget narrows it.")


def test_no_slo_gives_no_ranking() -> None:
    points = [replace(p, goodput=None) for p in sweep()]
    v = verdict(summary(points), None, ORDER)
    assert v.of_kind("ranking") == () and v.of_kind("reason") == ()


def test_labels_and_errors_are_escaped_in_the_html() -> None:
    evil = "<script>alert(1)</script>"
    html = sentence_html(Sentence("caveat", f"{evil} failed", (Link(evil, "target-0'x"),)))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; failed" in html
    assert "href='#target-0&#x27;x'" in html


def test_section_renders_each_kind_with_links() -> None:
    run = RunData(run_id="r", manifest=CPU_MANIFEST, summary=summary(sweep()))
    html = verdict_section(run)
    assert html.startswith("<section id='verdict' class='callout'><h2>Verdict</h2>")
    assert html.count("<h3>") == 3
    assert "<a href='#target-1-c8'>fastapi_threadpool c8</a>" in html  # report order


def test_no_ratio_between_two_lower_bounds() -> None:
    points = [point(t, c, good=40, total=40, ttft_ms=30 * c, tok_s=300 * c)
              for t in ("fastapi_batching", "flask_threads") for c in (1, 4, 8)]
    v = verdict(summary(points), None, ["fastapi_batching", "flask_threads"])
    ranking, tied = v.of_kind("ranking")  # both ≥ 8: no "holds 1.0×" sentence, but their ratio
    assert "2. flask_threads: ≥ 8 requests at once" in ranking.text
    assert tied.text.startswith("fastapi_batching and flask_threads both hold ≥ 8 requests at "
                                "once in this run; at c=8 fastapi_batching delivered 1.00× the "
                                "output tokens/s of flask_threads (2,400 vs 2,400 tok/s, 95% "
                                "interval 0.96–1.04×)")


def test_section_escapes_labels_and_server_errors() -> None:
    evil = "<script>alert(1)</script>"
    points = [replace(p, target=f"{evil}{p.target}") for p in sweep()]
    failed = TargetRun(name="external", options={}, status="failed", error=f"HTTP 500: {evil}")
    run = RunData(run_id="r", manifest=None, summary=summary(points, {"<b>gw</b>": failed}))
    html = verdict_section(run)
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;fastapi_batching: ≥ 8 requests" in html
    assert "&lt;b&gt;gw&lt;/b&gt; (external) failed to start and is not ranked: HTTP 500: " \
           "&lt;script&gt;" in html


def test_server_queue_in_front_of_one_model() -> None:
    points = sweep()
    queued = ServerTelemetry(source="patternbench", scrapes=8, failed=0, in_flight_max=1,
                             queue_depth_max=7, batch_size_max=0, batch_size_mean=0,
                             kv_cache_pct_max=None, prefix_cache_hit_pct=None)
    telemetry = PointTelemetry(
        window_s=5.0, gpu=GpuTelemetry(available=False, reason="no NVML"),
        target=ProcessTree(samples=10, cpu_pct=None, rss_peak_mb=300.0, pss_peak_mb=None,
                           procs_max=1),
        driver=ProcessTree(samples=10, cpu_pct=None, rss_peak_mb=90.0, pss_peak_mb=None,
                           procs_max=1),
        health=HealthTelemetry(count=5, failed=0, latency_ms=None), server=queued)
    points[5] = replace(points[5], telemetry=telemetry)
    texts = [s.text for s in verdict(summary(points), None, ORDER).of_kind("reason")]
    assert ("Requests queue in fastapi_threadpool at c=8 for its one model: up to 7 "
            "waited in the server's queue while at most 1 ran at once and its batch gauge never "
            "passed 0.") in texts


def test_ties_rank_by_goodput() -> None:
    points = [point("flask_threads", 1, good=20, total=20, ttft_ms=30, tok_s=100),
              point("flask_threads", 2, good=5, total=20, ttft_ms=900, tok_s=110),
              point("fastapi_batching", 1, good=40, total=40, ttft_ms=30, tok_s=300),
              point("fastapi_batching", 2, good=5, total=40, ttft_ms=900, tok_s=310)]
    ranking = verdict(summary(points), None, ["flask_threads", "fastapi_batching"])
    assert "1. fastapi_batching: 1 request at once" in ranking.of_kind("ranking")[0].text


def test_a_breach_without_percentiles_says_why_it_names_no_limit() -> None:
    """flask_threads at c=8 in a 4-s capacity point: all 8 requests counted were sent during the
    warm-up and missed the SLO, none sent after it finished, so the point has no TTFT."""
    points = [point("fastapi_batching", c, good=40, total=40, ttft_ms=40, tok_s=300 * c)
              for c in (1, 8)]
    points += [point("flask_threads", 1, good=40, total=40, ttft_ms=190, tok_s=50),
               replace(point("flask_threads", 8, good=0, total=8, ttft_ms=1500, tok_s=60),
                       ttft_ms=None, ttft_sched_ms=None)]
    split = replace(point("fastapi_threadpool", 8, good=30, total=40, ttft_ms=500, tok_s=60),
                    tpot_ms=Distribution.of([50.0] * 40))
    points += [point("fastapi_threadpool", 1, good=40, total=40, ttft_ms=190, tok_s=50), split]
    texts = [s.text for s in verdict(summary(points), None, ["flask_threads", "fastapi_batching",
                                                           "fastapi_threadpool"]).of_kind("reason")]
    assert ("At c=8 only 0% of flask_threads's requests met the SLO (0 of 8): none of the "
            "requests it sent after the warm-up finished within the point, so it has no latency "
            "percentile to show (a longer duration_s measures them).") in texts
    assert ("At c=8 only 75% of fastapi_threadpool's requests met the SLO (30 of 40): TTFT p90 "
            "576 ms, TPOT p90 50 ms each within its limit, so the misses are requests no single "
            "percentile shows: over different limits each, or without the value a limit needs "
            "(fewer than 2 tokens give no TPOT).") in texts


def test_an_endpoint_alone_gets_what_limits_it_and_no_cpu_caveat() -> None:
    """`patternbench capacity URL`: one `external` target served elsewhere (maybe on a GPU), the
    harness on one pinned CPU core; its device says nothing about the server."""
    points = [point("endpoint", c, good=g, total=40, ttft_ms=40 * c, tok_s=100 * c)
              for c, g in ((1, 40), (16, 40), (17, 30))]
    one_core = replace(MACHINE, cores=2, usable_cores=1)
    endpoint = manifest(scenario(targets=[{"name": "external", "label": "endpoint",
                                           "options": {"url": "http://gpu-1:8000"}}]),
                        device="cpu", machine=one_core)
    html = verdict_section(RunData(run_id="r", manifest=endpoint, summary=summary(points)))
    assert "<h3>What limits it</h3>" in html and "Why the others" not in html
    assert "CPU-only" not in html
    local = manifest(scenario(targets=[{"name": "vllm", "label": "endpoint"}]), device="cpu",
                     machine=one_core)
    texts = [s.text for s in verdict(summary(points), local, ["endpoint"]).of_kind("caveat")]
    assert any(t.startswith("CPU-only run (device cpu on 1 CPU core):") for t in texts)


def test_a_stall_whose_one_probe_was_answered_late_counts_the_ticks_it_missed() -> None:
    """make bench's fastapi_blocking at c=4: one probe sent in the point, answered after 6.3 s
    (no probe unanswered within the 10 s timeout), 12 ticks of the 0.5 s period missed."""
    late = ProbeSummary(latency_ms=Distribution.of([6267.1]), sent=1, answered=1, censored=0,
                        missed_ticks=12, timeout_ms=10000.0)
    points = sweep()
    points[-1] = replace(points[-1], probe=late)
    texts = [s.text for s in verdict(summary(points), None, ORDER).of_kind("reason")]
    assert ("fastapi_blocking's /health stalled at c=4: probe p90 6,267 ms, 1 probe answered in "
            "the point, 12 probe ticks missed while one waited; the model blocks the event "
            "loop.") in texts


def test_head_of_line_blocking_is_named_for_request_level_batching_on_spread_lengths() -> None:
    from harness.verdict.causes import head_of_line

    lengths = Distribution.of([8, 12, 20, 30, 45, 128, 128, 128, 9, 14])  # natural lengths
    base = point("fastapi_dynamic_batching", 1, good=10, total=10, ttft_ms=300, tok_s=40)
    hit = point("fastapi_dynamic_batching", 4, good=3, total=10, ttft_ms=4000, tok_s=60,
                output_tokens=lengths)
    text = head_of_line("fastapi_dynamic_batching", hit, base)
    assert text is not None and "Head-of-line blocking" in text and "c=4" in text
    assert "median 25" in text and "longest 128" in text
    # continuous batching lets a request leave at its own end; equal lengths block nothing
    other = replace(hit, target="fastapi_batching", target_name="fastapi_batching")
    assert head_of_line("fastapi_batching", other, base) is None
    even = replace(hit, output_tokens=Distribution.of([64] * 10))
    assert head_of_line("fastapi_dynamic_batching", even, base) is None
