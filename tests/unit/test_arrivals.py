"""Arrival schedules: closed has none; the open-loop kinds are seeded offsets over the point."""

from __future__ import annotations

import collections
import itertools
import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from harness.arrivals import Arrival, plan, rate_curve, schedule
from harness.scenario.decode import ScenarioError
from harness.scenario.load import load_scenario
from harness.scenario.types import LoadPoint, Workload
from harness.workload.request_pool import RequestPool
from tests.jobs import job_for


def point(kind: str, rate_rps: float | None = None, duration_s: float = 4.0,
          warmup_s: float = 1.0, max_requests: int = 0) -> LoadPoint:
    return LoadPoint(name="p", kind=kind, duration_s=duration_s, warmup_s=warmup_s,
                     concurrency=4 if kind == "closed" else None, rate_rps=rate_rps,
                     max_requests=max_requests)


def test_closed_has_no_schedule() -> None:
    assert schedule(point("closed"), seed=1) is None


def test_constant_rate_count_and_spacing() -> None:
    # 4 req/s over 1 s warm-up + 4 s measured: 20 requests, one every 0.25 s from 0.
    offsets = schedule(point("constant", rate_rps=4), seed=1)
    assert offsets == pytest.approx([i * 0.25 for i in range(20)])
    assert offsets is not None and offsets[-1] < 5.0


def test_constant_rate_does_not_depend_on_seed() -> None:
    assert schedule(point("constant", rate_rps=3), 1) == schedule(point("constant", rate_rps=3), 2)


def test_constant_rate_count_survives_float_rounding() -> None:
    # 0.57 req/s for 100 s is exactly 57 requests (at 0, 1/0.57, ... 56/0.57 = 98.2 s);
    # 100 * 0.57 is 56.99999999999999 in floating point.
    offsets = schedule(point("constant", rate_rps=0.57, duration_s=100, warmup_s=0), seed=1)
    assert offsets is not None
    assert len(offsets) == 57


def test_constant_max_requests_caps_the_schedule() -> None:
    offsets = schedule(point("constant", rate_rps=4, max_requests=7), seed=1)
    assert offsets == pytest.approx([i * 0.25 for i in range(7)])


def test_poisson_is_reproducible_by_seed() -> None:
    p = point("poisson", rate_rps=20, duration_s=30)
    first = schedule(p, seed=11)
    assert first is not None and len(first) > 100
    assert schedule(p, seed=11) == first
    assert schedule(p, seed=12) != first


def test_poisson_offsets_increase_within_the_point() -> None:
    offsets = schedule(point("poisson", rate_rps=20, duration_s=30), seed=3)
    assert offsets is not None
    assert all(a < b for a, b in itertools.pairwise(offsets))
    assert offsets[0] > 0.0
    assert offsets[-1] < 31.0


def test_poisson_mean_rate_and_exponential_gaps() -> None:
    # 50 req/s over 400 s: the count is Poisson(20,000), standard deviation 141; bound ±4.5 σ.
    offsets = schedule(point("poisson", rate_rps=50, duration_s=399, warmup_s=1), seed=2026)
    assert offsets is not None
    assert 19_360 <= len(offsets) <= 20_640
    gaps = [b - a for a, b in zip([0.0, *offsets], offsets, strict=False)]
    mean_gap = statistics.fmean(gaps)
    # Mean gap 1/50 = 0.02 s with standard error 0.02/sqrt(20,000) = 0.00014 s; the bound is 4 SE.
    assert 0.0194 <= mean_gap <= 0.0206
    # Exponential gaps have a coefficient of variation of 1 (a constant schedule has 0).
    assert 0.95 <= statistics.stdev(gaps) / mean_gap <= 1.05


def test_poisson_max_requests_keeps_the_first_arrivals() -> None:
    p = point("poisson", rate_rps=50, duration_s=20)
    full = schedule(p, seed=5)
    capped = schedule(point("poisson", rate_rps=50, duration_s=20, max_requests=100), seed=5)
    assert full is not None and len(full) > 100
    assert capped == full[:100]


# --- gamma, ramp, spike and trace (shapes beyond constant and poisson) -----------------------

def shaped(kind: str, rate_rps: float = 10.0, duration_s: float = 10.0, warmup_s: float = 0.0,
           **params: Any) -> LoadPoint:
    return LoadPoint(name="p", kind=kind, duration_s=duration_s, warmup_s=warmup_s,
                     rate_rps=rate_rps, params=params)


def gaps_of(offsets: list[float] | None) -> list[float]:
    assert offsets is not None
    return [b - a for a, b in itertools.pairwise(offsets)]


@pytest.mark.parametrize("burstiness", [0.25, 1.0, 4.0])
def test_gamma_keeps_the_mean_rate_and_sets_the_gap_variance(burstiness: float) -> None:
    # 40 req/s over 500 s: ~20,000 gaps. Gamma gaps with shape 1/b have CV² = b.
    offsets = schedule(shaped("gamma", rate_rps=40, duration_s=500, burstiness=burstiness), 7)
    gaps = gaps_of(offsets)
    mean = statistics.fmean(gaps)
    assert mean == pytest.approx(1 / 40, rel=0.05)
    cv2 = statistics.pvariance(gaps) / mean**2
    assert cv2 == pytest.approx(burstiness, rel=0.12)


def test_gamma_burstier_means_more_requests_in_the_busiest_second() -> None:
    def busiest(b: float) -> int:
        offsets = schedule(shaped("gamma", rate_rps=20, duration_s=200, burstiness=b), 3) or []
        return max(collections.Counter(int(t) for t in offsets).values())

    assert busiest(8.0) > busiest(1.0) > busiest(0.1)


def test_gamma_is_reproducible_by_seed_and_rejects_bad_burstiness() -> None:
    p = shaped("gamma", burstiness=2.0)
    assert schedule(p, 5) == schedule(p, 5) != schedule(p, 6)
    with pytest.raises(ScenarioError, match="burstiness"):
        schedule(shaped("gamma", burstiness=0), 1)


def test_ramp_rate_changes_linearly_from_start_to_end() -> None:
    # 10 → 30 req/s over 10 s: 200 requests, request n due where Λ(t) = 10t + t² reaches n.
    offsets = schedule(shaped("ramp", rate_rps=10, end_rate_rps=30), 1)
    assert offsets is not None and len(offsets) == 200
    per_second = collections.Counter(int(t) for t in offsets)
    assert [per_second[s] for s in (0, 5, 9)] == [11, 21, 29]  # Λ(t) = 10t + t²
    assert all(a < b for a, b in itertools.pairwise(offsets))


def test_ramp_down_and_poisson_process_on_the_curve() -> None:
    down = schedule(shaped("ramp", rate_rps=30, end_rate_rps=0), 1)
    assert down is not None and len(down) == 150
    assert down[-1] < 10.0
    # The non-homogeneous Poisson variant keeps the integrated rate on average (200 ± 4.5σ).
    counts = [len(schedule(shaped("ramp", rate_rps=10, end_rate_rps=30, process="poisson"), s)
                  or []) for s in range(20)]
    assert 200 - 14 <= statistics.fmean(counts) <= 200 + 14
    assert len(set(counts)) > 1


def test_spike_steps_to_the_spike_rate_for_its_window() -> None:
    p = shaped("spike", rate_rps=10, duration_s=9, spike_rate_rps=50, spike_start_s=3,
               spike_duration_s=3)
    offsets = schedule(p, 1) or []
    per_window = [sum(1 for t in offsets if lo <= t < lo + 3) for lo in (0, 3, 6)]
    assert per_window == [30, 150, 30]
    assert rate_curve(p) == [(0.0, 10.0), (3.0, 10.0), (3.0, 50.0), (6.0, 50.0), (6.0, 10.0),
                             (9.0, 10.0)]


def test_spike_defaults_to_the_middle_third_of_the_measured_window() -> None:
    p = shaped("spike", rate_rps=5, duration_s=9, warmup_s=3, spike_rate_rps=20)
    assert rate_curve(p)[2:4] == [(6.0, 20.0), (9.0, 20.0)]
    with pytest.raises(ScenarioError, match="spike_rate_rps"):
        schedule(shaped("spike"), 1)


def write_trace(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_trace_replays_offsets_and_token_counts_in_order(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "t.jsonl", [
        {"offset_s": 0.5, "prompt_tokens": 100, "output_tokens": 20},
        {"offset_s": 0.0, "prompt_tokens": 10, "output_tokens": 5},
        {"offset_s": 9.0, "prompt_tokens": 7, "output_tokens": 3},
    ])
    p = LoadPoint("trace", "trace", duration_s=4, warmup_s=1, params={"path": str(trace)})
    assert plan(p, 1) == [Arrival(0.0, 10, 5), Arrival(0.5, 100, 20)]  # 9.0 is past the point
    fast = LoadPoint("trace", "trace", duration_s=4, warmup_s=1,
                     params={"path": str(trace), "speed": 2.0})
    assert schedule(fast, 1) == [0.0, 0.25, 4.5]


def test_trace_token_counts_reach_the_prompt_factory(tmp_path: Path, tokenizer: Any) -> None:
    trace = write_trace(tmp_path / "t.jsonl", [
        {"offset_s": 0.0, "prompt_tokens": 12, "output_tokens": 5},
        {"offset_s": 0.1, "prompt_tokens": 40, "output_tokens": 9},
    ])
    point = LoadPoint("trace", "trace", duration_s=1, warmup_s=0, params={"path": str(trace)})
    wl = Workload(prompt_tokens=128, output_tokens=64)
    job = job_for(point, workload=wl, tokenizer=tokenizer)
    pool = RequestPool(job, plan(point, 1))
    assert [(s.prompt_tokens, s.max_tokens) for s in pool.specs] == [(12, 5), (40, 9)]
    assert len(tokenizer.encode(pool.spec(1).prompt, add_special_tokens=False)) == 40


@pytest.mark.parametrize(("line", "message"), [
    ('{"offset_s": 0, "prompt_tokens": 3}', "t.jsonl:1"),
    ("not json", "t.jsonl:1"),
    ('{"offset_s": -1, "prompt_tokens": 3, "output_tokens": 1}', ">= 0"),
])
def test_trace_errors_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "t.jsonl").write_text(line + "\n", encoding="utf-8")
    p = LoadPoint("trace", "trace", duration_s=1, warmup_s=0,
                  params={"path": str(tmp_path / "t.jsonl")})
    with pytest.raises(ScenarioError, match=message):
        plan(p, 1)
    with pytest.raises(ScenarioError, match="cannot read trace"):
        plan(LoadPoint("trace", "trace", 1, 0, params={"path": str(tmp_path / "none")}), 1)


def test_relative_trace_path_resolves_against_the_scenario_file(tmp_path: Path) -> None:
    write_trace(tmp_path / "t.jsonl", [{"offset_s": 0, "prompt_tokens": 4, "output_tokens": 2}])
    (tmp_path / "s.toml").write_text(
        '[load]\nkind = "trace"\npath = "t.jsonl"\nduration_s = 1\n[[targets]]\nname = "x"\n',
        encoding="utf-8")
    (point,) = load_scenario(tmp_path / "s.toml").points
    assert plan(point, 1) == [Arrival(0.0, 4, 2)]


def test_closed_point_has_no_rate_curve() -> None:
    with pytest.raises(ScenarioError):
        rate_curve(point("closed"))
