"""The capacity search: bracketing then bisection against a fake measurement whose points are
real `PointSummary` records (built like the runner builds them), and the scenario's load."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.run.capacity import (
    capacity_level,
    capacity_point,
    next_level,
    search,
    sweep_interval,
)
from harness.scenario.capacity import CapacitySpec
from harness.scenario.decode import ScenarioError
from harness.scenario.load import parse_scenario
from harness.summary.record import Goodput, Load, PointSummary, Requests
from tests.summaries import typed_point

SLO = {"ttft_ms": 1000.0, "tpot_ms": 100.0}


def point_at(level: float, good_fraction: float, *, closed: bool = True,
             total: int = 40) -> PointSummary:
    """A point whose requests met the SLO in `good_fraction` of `total` (as summarize counts)."""
    good = round(good_fraction * total)
    load = (Load(kind="closed", concurrency=int(level)) if closed
            else Load(kind="poisson", rate_rps=level))
    return typed_point(
        "fastapi_batching", f"c{level:g}" if closed else f"r{level:g}", load,
        requests=Requests(ok=total, http_error=0, refused=0, timeout=0, truncated=0,
                          conn_error=0, total=total),
        goodput=Goodput(slo=SLO, good_requests=good, req_s=good / 5.0,
                        fraction=good / total))


class FakeServer:
    """Meets the SLO for every request up to `knee`, for half of them above; counts calls and
    advances a fake clock by one point's time per measurement."""

    def __init__(self, knee: float, point_s: float = 6.5, closed: bool = True) -> None:
        self.knee, self.point_s, self.closed = knee, point_s, closed
        self.measured: list[float] = []
        self.now = 0.0

    def measure(self, level: float) -> PointSummary:
        self.measured.append(level)
        self.now += self.point_s
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
    cap = search(CapacitySpec(max_level=8, budget_s=600), SLO, 0.5, server.measure,
                 server.clock)
    assert cap.stopped == "max_level"  # 50% is enough at share 0.5


def test_interrupt_stops_with_what_was_measured() -> None:
    calls: list[float] = []

    def measure(level: float) -> PointSummary | None:
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
    assert capacity_point(parse_scenario(_capacity_toml(arrival="poisson")).points[0], spec,
                          2.5).rate_rps == 2.5


def test_goodput_unknown_never_passes() -> None:
    point = point_at(4, 1.0)
    unknown = Goodput(slo=SLO, good_requests=0, req_s=None, fraction=None,
                      unknown="ttft_ms: no request has a first-token time")
    interval = sweep_interval([point_at(1, 1.0), replace(point, goodput=unknown)], 0.9)
    assert interval[0] is not None and interval[0].level == 1
    assert interval[1] is not None and interval[1].level == 4


def test_next_level_never_repeats_a_level() -> None:
    spec = CapacitySpec()
    low = point_at(4, 1.0)
    assert next_level(spec, capacity_level(low, 4, 0.9),
                      capacity_level(point_at(5, 0.5), 5, 0.9)) is None


def test_sweep_interval_of_a_plain_sweep() -> None:
    points = [point_at(1, 1.0), point_at(4, 0.95), point_at(8, 0.4)]
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
     "kind, max_level, max_requests, ramp_up_s, resolution, start, warmup_s"),
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
