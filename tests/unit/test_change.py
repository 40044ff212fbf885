"""harness.metrics.change: the change between two measurements and its 95% interval."""

from __future__ import annotations

import math

import pytest

from harness.metrics.change import (
    Change,
    classify,
    count_change,
    higher_is_better,
    interval_change,
    p_value,
    prediction_change,
    repeats_change,
)


def test_interval_change_worked_by_hand() -> None:
    # ln 1.2 = 0.18232; each side ±5%: w↓ = ln(100/95) = 0.05129, w↑ = ln(105/100) = 0.04879
    # lo = 0.18232 − hypot(0.05129, 0.04879) = 0.11153 → 1.118; hi = 0.25311 → 1.288
    change = interval_change(100.0, (95.0, 105.0), 120.0, (114.0, 126.0))
    assert change.pct == pytest.approx(20.0)
    assert (change.lo, change.hi) == pytest.approx((1.118, 1.288), abs=1e-3)
    assert change.basis == "within"
    assert classify(change, higher_is_better=False) == "regressed"
    assert interval_change(100.0, None, 120.0, (114.0, 126.0)).basis == "none"


def test_count_change_compares_rates_per_request_and_zero_to_zero_is_no_change() -> None:
    # 10 errors of 400 → 20 of 400: rate ratio (20.5/400)/(10.5/400) = 1.952;
    # se = sqrt(1/10.5 + 1/20.5) = 0.3806 → × 1.96 = 0.7459 → [0.928, 4.108]
    change = count_change(10, 400, 20, 400)
    assert (change.before, change.after) == (0.025, 0.05)
    assert (change.lo, change.hi) == pytest.approx((0.928, 4.108), abs=1e-3)
    assert classify(change, higher_is_better=False) == "unchanged"
    none = count_change(0, 300, 0, 280)
    assert none.ratio == 1.0 and none.pct == 0.0 and (none.lo, none.hi) == (1.0, 1.0)
    assert classify(count_change(0, 400, 40, 400), higher_is_better=False) == "regressed"


def test_repeats_change_uses_the_spread_of_repeats() -> None:
    steady = repeats_change([100.0, 102.0, 98.0], [101.0, 99.0, 100.0])
    slower = repeats_change([100.0, 102.0, 98.0], [120.0, 122.0, 118.0])
    single = repeats_change([100.0], [120.0])
    assert steady is not None and classify(steady, higher_is_better=False) == "unchanged"
    assert slower is not None and classify(slower, higher_is_better=False) == "regressed"
    assert slower.pct == pytest.approx(20.0)
    assert single is not None and single.basis == "none"
    assert repeats_change([], [1.0]) is None


def test_a_prediction_interval_holds_one_run_of_the_same_noise() -> None:
    # baseline runs at 100, 110, 90: sd of logs 0.1003, t(2) 4.303, √(1 + 1/3) 1.1547
    # → ± 0.4984 on the log scale around ln(104 / 99.9...)
    base = [100.0, 110.0, 90.0]
    same = prediction_change(base, 104.0, (102.0, 106.0))
    assert same is not None and same.basis == "prediction"
    assert same.lo is not None and same.hi is not None
    centre = math.log(104.0) - math.log(100.0)
    assert math.log(same.hi) - centre == pytest.approx(0.4984, abs=1e-3)
    assert classify(same, higher_is_better=False) == "unchanged"
    doubled = prediction_change(base, 200.0, (196.0, 204.0))
    assert doubled is not None and classify(doubled, higher_is_better=False) == "regressed"
    # the single run first (a single-run baseline against a run with repeats)
    back = prediction_change(base, 200.0, None, single_is_after=False)
    assert back is not None and back.before == 200.0 and back.after == 100.0


def test_p_value_follows_how_far_the_interval_is_from_no_change() -> None:
    assert p_value(Change(1.0, 1.0, 0.9, 1.1, "within")) == pytest.approx(1.0)
    # centre ln 1.2 = 0.1823, half toward 1 = ln 1.2 − ln 1.0 = 0.1823: z = 1.96 → p = 0.05
    assert p_value(Change(1.0, 1.2, 1.0, 1.44, "within")) == pytest.approx(0.05, abs=1e-3)
    assert p_value(Change(1.0, 1.2, None, None, "none")) is None


def test_direction_of_metrics() -> None:
    assert higher_is_better("throughput.output_tok_s")
    assert higher_is_better("goodput.req_s")
    assert not higher_is_better("ttft_ms.p99")
    assert not higher_is_better("e2e_ms.p50")
