"""Gate decisions on realistic points: closed-loop streaming samples through `summarize`."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import pytest

from harness.gate.check import Baseline, GateResult, check_gates, decide
from harness.gate.command import exit_code
from harness.gate.spec import parse_gate
from harness.metrics.quantiles import wilson
from harness.summary.record import Goodput, PointSummary, TargetRun
from tests.summaries import run_summary, streamed_point


@cache  # each point is built once: summarize over ~12k token gaps takes a while
def point(target: str = "fastapi_batching", tpot_ms: float = 5.0, seed: int = 1,
          requests: int = 150) -> PointSummary:
    return streamed_point(target, "c8", concurrency=8, ttft_ms=50.0, tpot_ms=tpot_ms,
                          requests=requests, seed=seed, tokens=8)


def one(key: str, expr: str, current: list[PointSummary],
        base: list[PointSummary] | None = None) -> GateResult:
    baseline = Baseline(run_summary(base)) if base is not None else None
    results = check_gates([parse_gate(key, expr)], run_summary(current), baseline)
    assert len(results) == 1
    return results[0]


def test_decide_reads_the_whole_interval() -> None:
    assert decide("<", 100, 80, 99) == "pass"
    assert decide("<", 100, 101, 120) == "fail"
    assert decide("<", 100, 90, 105) == "inconclusive"
    assert decide("<=", 0, 0, 0) == "pass"  # an exact counter: its interval is its value


def baseline_runs(tpot_ms: float = 5.0, requests: int = 150) -> list[PointSummary]:
    """A baseline saved from three runs: the same point measured three times (repeats)."""
    return [replace(point(tpot_ms=tpot_ms, seed=s, requests=requests), repeat=i)
            for i, s in enumerate((1, 3, 4))]


def test_absolute_gate_on_a_percentile_uses_its_interval() -> None:
    ok = one("fastapi_batching.c8.ttft_ms.p50", "< 60", [point()])
    assert ok.verdict == "pass" and ok.basis == "within"
    assert ok.ci is not None and ok.ci[0] <= ok.value <= ok.ci[1] < 60  # type: ignore[operator]
    assert one("fastapi_batching.c8.ttft_ms.p50", "< 40", [point()]).verdict == "fail"
    edge = one("fastapi_batching.c8.ttft_ms.p50", f"< {ok.value}", [point()])
    assert edge.verdict == "inconclusive"


def test_relative_gate_passes_an_unchanged_rerun_and_fails_a_slower_one() -> None:
    key, expr = "*.c8.tpot_ms.p50", "<= +10%"
    same = one(key, expr, [point(seed=2)], baseline_runs())
    assert same.verdict == "pass" and same.basis == "prediction"
    assert same.change_pct is not None and abs(same.change_pct) < 3
    # what this noise lets the gate see: a change past +10% by its interval's lower half-width
    assert same.fails_beyond_pct is not None and same.change_ci_pct is not None
    half = 1 + same.change_pct / 100 - (1 + same.change_ci_pct[0] / 100)
    assert 10 < same.fails_beyond_pct < 10 + 200 * half
    slower = one(key, expr, [point(tpot_ms=6.0, seed=2)], baseline_runs())
    assert slower.verdict == "fail" and slower.change_ci_pct is not None
    assert slower.change_ci_pct[0] > 10
    assert slower.baseline == pytest.approx(same.baseline)


def test_a_single_run_baseline_cannot_judge_a_change_between_runs() -> None:
    result = one("*.c8.tpot_ms.p50", "<= +10%", [point(seed=2)], [point(seed=1)])
    assert result.verdict == "cannot_judge"
    assert result.reason is not None and result.reason.startswith("run-to-run noise unknown")


def test_relative_gate_straddling_the_bound_is_inconclusive() -> None:
    result = one("*.c8.tpot_ms.p50", "<= +10%", [point(tpot_ms=5.5, seed=2, requests=40)],
                 baseline_runs(requests=40))
    assert result.verdict == "inconclusive"
    lo, hi = result.change_ci_pct or (0.0, 0.0)
    assert lo < 10 < hi


def test_relative_throughput_gate_predicts_from_the_baseline_runs() -> None:
    result = one("*.c8.throughput.output_tok_s", ">= -30%", [point(seed=2)], baseline_runs())
    assert result.basis == "prediction" and result.verdict == "pass"
    slower = one("*.c8.throughput.output_tok_s", ">= -30%", [point(tpot_ms=20, seed=2)],
                 baseline_runs())
    assert slower.verdict == "fail" and slower.higher_is_better


def test_a_counter_zero_before_and_after_is_unchanged() -> None:
    result = one("*.c8.requests.http_error", "<= +10%", [point(seed=2)], [point(seed=1)])
    assert (result.verdict, result.basis, result.change_pct) == ("pass", "count", 0.0)


def test_a_mean_is_judged_on_its_interval_and_a_max_is_refused() -> None:
    mean = one("fastapi_batching.c8.tpot_ms.mean", "< 20", [point()])
    assert mean.verdict == "pass" and mean.ci is not None
    largest = one("fastapi_batching.c8.tpot_ms.max", "< 20", [point()])
    assert largest.verdict == "cannot_judge" and "one value" in (largest.reason or "")


def test_eleven_passes_of_twelve_is_no_proof_of_ninety_percent() -> None:
    p = point()
    good = replace(p.goodput or Goodput(slo={}, good_requests=0, req_s=None, fraction=None),
                   good_requests=11, fraction=11 / 12, ci95={"fraction": wilson(11, 12)})
    twelve = replace(p, requests=replace(p.requests, total=12, ok=12), goodput=good)
    assert one("*.c8.goodput.fraction", ">= 0.9", [twelve]).verdict == "inconclusive"


def test_an_interrupted_run_and_a_failed_target_are_never_a_pass() -> None:
    current = run_summary([point("a")])
    stopped = replace(current, interrupted=True)
    result = check_gates([parse_gate("*.*.requests.http_error", "<= 0")], stopped)
    assert [r.verdict for r in result] == ["cannot_judge"] and "interrupted" in (
        result[0].reason or "")
    died = replace(current, targets={**current.targets, "b": TargetRun(
        name="b", options={}, status="failed", error="exit 1: CUDA out of memory")})
    results = check_gates([parse_gate("*.*.requests.http_error", "<= 0")], died)
    assert [(r.subject, r.verdict) for r in results] == [
        ("b.*.requests.http_error", "cannot_judge"), ("a.c8.requests.http_error", "pass")]
    assert exit_code(results) == 2
    later = replace(current, targets={**current.targets, "a": TargetRun(
        name="a", options={}, status="failed", error="died", failed_point="c16",
        skipped=("c32",))})
    verdicts = {r.subject: r.verdict
                for r in check_gates([parse_gate("a.*.ttft_ms.p50", "< 1000")], later)}
    assert verdicts == {"a.c16.ttft_ms.p50": "cannot_judge", "a.c32.ttft_ms.p50": "cannot_judge",
                        "a.c8.ttft_ms.p50": "pass"}


def test_in_run_ratio_of_two_targets() -> None:
    fast, slow = point("fastapi_batching"), point("flask_threads", tpot_ms=40.0, seed=3)
    key = "fastapi_batching.c8.throughput.output_tok_s / flask_threads.c8.throughput.output_tok_s"
    result = one(key, ">= 2", [fast, slow])  # (50 + 7·40) / (50 + 7·5) ms per request: 3.9
    assert result.verdict == "pass" and result.value is not None and 3.5 < result.value < 4.3
    assert one(key, ">= 20", [fast, slow]).verdict == "fail"


def test_wildcards_expand_to_every_target() -> None:
    current = run_summary([point("a"), point("b", tpot_ms=9.0)])
    results = check_gates([parse_gate("*.*.tpot_ms.p50", "< 7")], current)
    assert [(r.subject, r.verdict) for r in results] == [
        ("a.c8.tpot_ms.p50", "pass"), ("b.c8.tpot_ms.p50", "fail")]


def test_too_few_driver_bound_and_missing_cannot_be_judged() -> None:
    few = one("fastapi_batching.c8.ttft_ms.p99", "< 1000", [point()])
    assert few.verdict == "cannot_judge" and few.reason is not None
    assert few.reason.startswith("too_few: ttft_ms.p99") and "662" in few.reason
    bound = replace(point(), flags=("driver_bound",))
    bound_reason = one("fastapi_batching.c8.ttft_ms.p50", "< 1000", [bound]).reason
    assert bound_reason is not None and bound_reason.startswith("driver_bound")
    missing = one("nobody.c8.ttft_ms.p50", "< 1000", [point()])
    assert missing.verdict == "cannot_judge" and "missing metric" in (missing.reason or "")
    no_slo = one("fastapi_batching.c8.goodput.fraction", ">= 0.9", [point()])
    assert no_slo.verdict == "cannot_judge" and "goodput" in (no_slo.reason or "")


def test_a_mismatched_baseline_is_unjudged_or_skipped() -> None:
    gate = [parse_gate("*.c8.tpot_ms.p50", "<= +10%")]
    current = run_summary([point(seed=2)])
    why = "baseline from another machine kind: x (this run: y)"
    judged = check_gates(gate, current, Baseline(run_summary([point()]), problem=why))
    skipped = check_gates(gate, current, Baseline(None, problem=why, skip=True))
    assert [(r.verdict, r.reason) for r in judged] == [("cannot_judge", why)]
    assert [(r.verdict, r.reason) for r in skipped] == [("skipped", why)]
    assert exit_code(judged) == 2 and exit_code(skipped) == 0


def test_repeats_use_the_per_repeat_values() -> None:
    base = baseline_runs()
    after = [replace(point(tpot_ms=6.5, seed=10 + s), repeat=s) for s in range(3)]
    result = one("*.c8.tpot_ms.p50", "<= +10%", after, base)
    assert result.basis == "repeats" and result.verdict == "fail"


def test_exit_codes() -> None:
    def r(verdict: str) -> GateResult:
        return GateResult("g", "g", "absolute", "< 1", verdict, 0.5)  # type: ignore[arg-type]

    assert exit_code([r("pass"), r("skipped")]) == 0
    assert exit_code([r("pass"), r("fail"), r("cannot_judge")]) == 1
    assert exit_code([r("pass"), r("inconclusive")]) == 2
    assert exit_code([r("inconclusive")], "pass") == 0
    assert exit_code([r("inconclusive")], "fail") == 1
    assert exit_code([r("cannot_judge")], "pass") == 2


def test_a_ratio_of_two_points_of_one_target() -> None:
    c8 = point()
    c1 = replace(streamed_point("fastapi_batching", "c1", concurrency=1, ttft_ms=50.0,
                                tpot_ms=4.0, requests=60, tokens=16, seed=4), point="c1")
    key = ("fastapi_batching.c8.throughput.output_tok_s / "
           "fastapi_batching.c1.throughput.output_tok_s")
    result = one(key, ">= 2", [c8, c1])
    assert result.subject == key and result.verdict == "pass"
    assert result.value is not None and 4 < result.value < 9


def test_error_counters_are_judged_on_a_driver_bound_point() -> None:
    bound = replace(point(), flags=("driver_bound",))
    assert one("*.c8.requests.conn_error", "<= 0", [bound]).verdict == "pass"


def test_abandoned_streams_are_a_counter_a_gate_can_bound() -> None:
    left = replace(point(), requests=replace(point().requests, abandoned=3))
    assert one("*.c8.requests.abandoned", "<= 4", [left]).verdict == "pass"
    result = one("*.c8.requests.abandoned", "<= 2", [left])
    assert (result.verdict, result.value) == ("fail", 3.0)


def test_a_counter_against_a_baseline_of_runs_counts_all_their_requests() -> None:
    def refusing(n: int, seed: int, repeat: int = 0) -> PointSummary:
        p = point(seed=seed)
        return replace(p, repeat=repeat, requests=replace(p.requests, refused=n))

    base = [refusing(n, s, i) for i, (n, s) in enumerate(((1, 1), (0, 3), (2, 4)))]
    same = one("*.c8.requests.refused", "<= +100%", [refusing(1, 2)], base)
    assert same.verdict == "inconclusive" and same.basis == "count"  # 1 vs 3 of 3×: too few
    many = one("*.c8.requests.refused", "<= +100%", [refusing(40, 2)], base)
    assert many.verdict == "fail"  # 40 of 150 against 3 of 450: far past double
