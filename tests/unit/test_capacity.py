"""The capacity search: bracketing then bisection against a fake measurement whose points are
real `PointSummary` records (built like the runner builds them: goodput with its interval), the
judgement of a level with confidence, and the scenario's load."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.metrics.quantiles import wilson
from harness.run.capacity import (
    capacity_level,
    capacity_point,
    judge,
    measured_again,
    next_level,
    search,
    sweep_interval,
)
from harness.run.console import point_line
from harness.scenario.capacity import CapacitySpec
from harness.scenario.decode import ScenarioError
from harness.scenario.load import parse_scenario
from harness.summary.record import Goodput, Load, PointFailure, PointSummary, Requests
from tests.summaries import typed_point

SLO = {"ttft_ms": 1000.0, "tpot_ms": 100.0}


def point_at(level: float, good_fraction: float, *, closed: bool = True,
             total: int = 40, **fields: object) -> PointSummary:
    """A point whose requests met the SLO in `good_fraction` of `total` (as summarize counts),
    its goodput interval the Wilson one (a window too short for sections)."""
    good = round(good_fraction * total)
    load = (Load(kind="closed", concurrency=int(level)) if closed
            else Load(kind="poisson", rate_rps=level))
    return typed_point(
        "fastapi_batching", f"c{level:g}" if closed else f"r{level:g}", load,
        requests=Requests(ok=total, http_error=0, refused=0, timeout=0, truncated=0,
                          conn_error=0, total=total),
        goodput=Goodput(slo=SLO, good_requests=good, req_s=good / 5.0,
                        fraction=good / total, ci95={"fraction": wilson(good, total)}),
        **fields)


class FakeServer:
    """Meets the SLO for every request up to `knee`, for half of them above; counts calls and
    advances a fake clock by one point's time per measurement."""

    def __init__(self, knee: float, point_s: float = 6.5, closed: bool = True) -> None:
        self.knee, self.point_s, self.closed = knee, point_s, closed
        self.measured: list[float] = []
        self.now = 0.0

    def measure(self, level: float, attempt: int = 0) -> PointSummary:
        self.measured.append(level)
        self.now += self.point_s * 2 ** attempt
        return point_at(level, 1.0 if level <= self.knee else 0.5, closed=self.closed)

    def clock(self) -> float:
        return self.now


def test_brackets_then_bisects_to_the_knee() -> None:
    server = FakeServer(knee=6)
    cap = search(CapacitySpec(max_level=64, budget_s=600), SLO, 0.9, server.measure,
                 server.clock)
    assert server.measured == [1, 2, 4, 8, 6, 7]  # doubling to the first fail, then bisection
    assert cap.last_pass is not None and cap.first_fail is not None
    assert (cap.last_pass.level, cap.first_fail.level) == (6, 7)
    assert cap.stopped == "resolved"
    assert cap.first_fail.good_fraction == 0.5 and cap.last_pass.goodput_req_s == 8.0
    assert [lv.level for lv in cap.levels] == server.measured
    assert cap.elapsed_s == 6 * 6.5


def test_budget_stops_the_search_with_a_wide_interval() -> None:
    server = FakeServer(knee=6)
    cap = search(CapacitySpec(budget_s=30, duration_s=5, warmup_s=1.5), SLO, 0.9,
                 server.measure, server.clock)
    assert server.measured == [1, 2, 4, 8]  # a fifth point would end at 32.5 s > 30 s
    assert cap.stopped == "budget"
    assert cap.last_pass is not None and cap.first_fail is not None
    assert (cap.last_pass.level, cap.first_fail.level) == (4, 8)


def test_max_level_reached_while_passing() -> None:
    server = FakeServer(knee=100)
    cap = search(CapacitySpec(max_level=12, budget_s=600), SLO, 0.9, server.measure,
                 server.clock)
    assert server.measured == [1, 2, 4, 8, 12]
    assert cap.stopped == "max_level" and cap.first_fail is None
    assert cap.last_pass is not None and cap.last_pass.level == 12


def test_fails_at_the_first_level() -> None:
    server = FakeServer(knee=0)
    cap = search(CapacitySpec(), SLO, 0.9, server.measure, server.clock)
    assert server.measured == [1]
    assert cap.stopped == "fails_at_start" and cap.last_pass is None


def test_share_sets_what_passes() -> None:
    server = FakeServer(knee=3)  # above the knee half the requests meet the SLO
    cap = search(CapacitySpec(max_level=8, budget_s=600), SLO, 0.3, server.measure,
                 server.clock)
    assert cap.stopped == "max_level"  # 50% of 40 ([35%, 65%]) is surely above 30%


def test_interrupt_stops_with_what_was_measured() -> None:
    calls: list[float] = []

    def measure(level: float, attempt: int) -> PointSummary | None:
        calls.append(level)
        return point_at(level, 1.0) if len(calls) < 3 else None

    cap = search(CapacitySpec(budget_s=600), SLO, 0.9, measure)
    assert cap.stopped == "interrupted" and [lv.level for lv in cap.levels] == [1, 2]


def test_open_loop_bisects_rates_to_the_resolution() -> None:
    server = FakeServer(knee=3.3, closed=False)
    spec = CapacitySpec(arrival="poisson", start=0.5, max_level=20, resolution=0.25,
                        budget_s=600)
    cap = search(spec, SLO, 0.9, server.measure, server.clock)
    assert server.measured[:4] == [0.5, 1.0, 2.0, 4.0]
    assert cap.last_pass is not None and cap.first_fail is not None
    assert cap.last_pass.level <= 3.3 < cap.first_fail.level
    assert cap.first_fail.level - cap.last_pass.level <= 0.25
    template = parse_scenario(_capacity_toml(arrival="poisson")).points[0]
    assert capacity_point(template, spec, 2.5).rate_rps == 2.5
    again = capacity_point(template, spec, 2.5, attempt=2)  # the third try: 4× as long
    assert (again.name, again.duration_s) == ("r2.5.3", template.duration_s * 4)


def test_open_loop_levels_are_exact_so_resolved_is_true() -> None:
    """Rates are not rounded to 3 significant digits: 150 → 151 at resolution 0.1 is not a
    resolved interval (the old search stopped there)."""
    spec = CapacitySpec(arrival="poisson", start=100, max_level=400, resolution=0.1)
    level = next_level(spec, capacity_level(point_at(150, 1.0, closed=False), 150, 0.9),
                       capacity_level(point_at(151, 0.5, closed=False), 151, 0.9))
    assert level == 150.5


def test_goodput_unknown_never_passes() -> None:
    point = point_at(4, 1.0)
    unknown = Goodput(slo=SLO, good_requests=0, req_s=None, fraction=None,
                      unknown="ttft_ms: no request has a first-token time")
    interval = sweep_interval([point_at(1, 1.0), replace(point, goodput=unknown)], 0.9)
    assert interval[0] is not None and interval[0].level == 1
    assert interval[1] is not None and interval[1].level == 4
    assert interval[1].judged == "unjudged" and "first-token" in (interval[1].why or "")


def test_a_level_passes_or_fails_only_with_confidence() -> None:
    # 11 of 12 is 92%, but its Wilson interval [0.65, 0.99] holds 0.9: unsure, not a pass
    assert judge(point_at(4, 11 / 12, total=12), 0.9).judged == "unsure"
    assert judge(point_at(4, 1.0, total=200), 0.9).judged == "pass"
    assert judge(point_at(4, 0.5, total=40), 0.9).judged == "fail"


def test_an_unsure_level_is_measured_again_longer_and_counts_as_a_fail_if_still_unsure(
        ) -> None:
    tries: list[tuple[float, int]] = []

    def measure(level: float, attempt: int) -> PointSummary:
        tries.append((level, attempt))
        return point_at(level, 1.0 if level <= 2 else 0.92, total=50 * 2 ** attempt)

    cap = search(CapacitySpec(max_level=4, budget_s=600, retries=2), SLO, 0.9, measure)
    # 4 and then 3: 0.92 of 50, 100, 200 requests, never surely above or below 0.9
    assert tries == [(1, 0), (2, 0), (4, 0), (4, 1), (4, 2), (3, 0), (3, 1), (3, 2)]
    assert cap.first_fail is not None and cap.first_fail.judged == "unsure"
    assert cap.first_fail.level == 3 and cap.first_fail.tries == 3
    assert not cap.first_fail.passed and cap.stopped == "resolved"
    assert cap.last_pass is not None and cap.last_pass.level == 2


def test_a_dead_target_or_a_driver_bound_point_ends_the_search_without_a_capacity() -> None:
    death = PointFailure(reason="the target process exited with code -9", detected_at_s=12.0,
                         first_error_at_s=11.8, failed_requests=4)

    def measure(level: float, attempt: int) -> PointSummary:
        return point_at(level, 1.0) if level < 4 else point_at(level, 0.0, failure=death,
                                                               flags=("target_failed",))

    cap = search(CapacitySpec(max_level=16, budget_s=600), SLO, 0.9, measure)
    assert cap.stopped == "target_died" and [lv.level for lv in cap.levels] == [1, 2, 4]
    assert cap.levels[-1].judged == "died" and "-9" in (cap.levels[-1].why or "")
    bound = search(CapacitySpec(max_level=16, budget_s=600), SLO, 0.9,
                   lambda level, _: point_at(level, 1.0, flags=("driver_bound",) * (level > 2)))
    assert bound.stopped == "unjudged" and bound.last_pass is not None
    assert bound.last_pass.level == 2 and not bound.levels[-1].passed


def test_a_retry_is_told_from_a_rate_with_a_decimal_point() -> None:
    assert not measured_again(point_at(6, 1.0)) and not measured_again(point_at(2.5, 1.0,
                                                                                closed=False))
    assert measured_again(replace(point_at(6, 1.0), point="c6.2"))
    assert measured_again(replace(point_at(2.5, 1.0, closed=False), point="r2.5.3"))


def test_the_progress_line_says_a_point_whose_target_died_died() -> None:
    """What a user watching `patternbench capacity` sees: not 'ok 0/0' for the level the
    server died in."""
    death = PointFailure(reason="/health failed 3 times in a row", detected_at_s=12.0,
                         first_error_at_s=None, failed_requests=0)
    assert point_line(point_at(2, 1.0)).startswith("  [fastapi_batching c2] ok ")
    assert point_line(point_at(4, 0.0, failure=death)).startswith("  [fastapi_batching c4] died ")


def test_the_budget_counts_what_points_really_took() -> None:
    """Points that take 3× their warm-up + window (start-up, drain): the search stops when the
    next one would pass the budget at that pace, not at the nominal 6.5 s."""
    server = FakeServer(knee=100, point_s=19.5)
    cap = search(CapacitySpec(budget_s=60, duration_s=5, warmup_s=1.5), SLO, 0.9,
                 server.measure, server.clock)
    assert server.measured == [1, 2, 4] and cap.stopped == "budget"


def test_next_level_never_repeats_a_level() -> None:
    spec = CapacitySpec()
    low = point_at(4, 1.0)
    assert next_level(spec, capacity_level(low, 4, 0.9),
                      capacity_level(point_at(5, 0.5), 5, 0.9)) is None


def test_sweep_interval_of_a_plain_sweep() -> None:
    points = [point_at(1, 1.0), point_at(4, 1.0), point_at(8, 0.4)]
    last_pass, first_fail, count = sweep_interval(points, 0.9)
    assert last_pass is not None and first_fail is not None
    assert (last_pass.level, first_fail.level, count) == (4, 8, 3)
    last_pass, first_fail, _ = sweep_interval(points[:2], 0.9)
    assert last_pass is not None and last_pass.level == 4 and first_fail is None


def _capacity_toml(**load: object) -> dict[str, object]:
    return {"name": "cap", "targets": ["fastapi_batching"], "slo": {"ttft_ms": 500},
            "load": {"kind": "capacity", "start": 1, "budget_s": 60, **load}}


def test_scenario_capacity_load() -> None:
    scenario = parse_scenario(_capacity_toml(max_level=16, duration_s=3) | {
        "slo": {"ttft_ms": 500, "share": 0.8}})
    assert scenario.capacity is not None
    assert (scenario.capacity.max_level, scenario.capacity.budget_s) == (16, 60)
    assert scenario.slo == {"ttft_ms": 500} and scenario.slo_share == 0.8
    (first,) = scenario.points
    assert (first.name, first.kind, first.concurrency, first.duration_s) == ("c1", "closed", 1, 3)


@pytest.mark.parametrize(("data", "message"), [
    ({"slo": {}}, "slo: load.kind 'capacity' needs at least one [slo] limit to search against, "
     "e.g. ttft_ms = 1000"),
    ({"slo": {"ttft_ms": 500, "share": 1.5}}, "slo.share: must be in (0, 1], got 1.5"),
    ({"load": {"kind": "capacity", "concurrency": [1, 2]}}, "load: unknown key 'concurrency' "
     "for kind 'capacity'; expected one of arrival, budget_s, burstiness, duration_s, factor, "
     "kind, max_level, max_requests, ramp_up_s, resolution, retries, start, warmup_s"),
    ({"load": {"kind": "capacity", "arrival": "ramp"}}, "load.arrival: must be one of 'closed', "
     "'constant', 'poisson', 'gamma', got 'ramp'"),
    ({"load": {"kind": "capacity", "start": 1.5}}, "load.start: must be a whole number ≥ 1 for "
     "arrival 'closed' (a concurrency), got 1.5"),
    ({"load": {"kind": "capacity", "start": 8, "max_level": 4}},
     "load.max_level: must be ≥ load.start (8), got 4"),
    ({"load": {"kind": "capacity", "factor": 1}}, "load.factor: must be ≥ 1.1, got 1"),
    ({"load": {"kind": "capacity", "resolution": 0.5}},
     "load.resolution: must be ≥ 1 for arrival 'closed', got 0.5"),
])
def test_scenario_capacity_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(_capacity_toml() | data)
    assert str(info.value) == message
