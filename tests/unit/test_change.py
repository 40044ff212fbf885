"""harness.metrics.change: the change between two measurements and its 95% interval."""

from __future__ import annotations

import random

import pytest

from harness.metrics.change import (
    classify,
    count_change,
    higher_is_better,
    quantile_change,
    repeats_change,
)
from harness.summary.record import Distribution


def _latencies(n: int, scale: float, seed: int) -> Distribution:
    """TTFT-like values: a lognormal around 200 ms, as a loaded server gives."""
    rng = random.Random(seed)
    dist = Distribution.of(scale * rng.lognormvariate(5.3, 0.3) for _ in range(n))
    assert dist is not None
    return dist


def test_count_change_worked_by_hand() -> None:
    # 400 requests each side: log-scale SE = sqrt(2/400) = 0.0707, × 1.96 = 0.1386;
    # ln 0.8 = -0.2231 → exp(-0.3617) = 0.696, exp(-0.0845) = 0.919
    change = count_change(100.0, 400, 80.0, 400)
    assert change is not None
    assert change.pct == pytest.approx(-20.0)
    assert change.lo == pytest.approx(0.696, abs=1e-3)
    assert change.hi == pytest.approx(0.919, abs=1e-3)
    assert change.basis == "count"
    assert classify(change, higher_is_better=True) == "regressed"
    assert classify(change, higher_is_better=False) == "improved"


def test_count_change_with_few_requests_holds_no_change() -> None:
    change = count_change(100.0, 10, 80.0, 10)  # ±88% wide: 20% is within the noise
    assert change is not None and classify(change, higher_is_better=True) == "unchanged"


def test_quantile_change_sees_a_20_percent_slowdown_and_not_noise() -> None:
    base = _latencies(2000, 1.0, seed=1)
    same = _latencies(2000, 1.0, seed=2)  # another draw of the same distribution
    slower = _latencies(2000, 1.2, seed=3)
    unchanged = quantile_change(base, same, "p50")
    regressed = quantile_change(base, slower, "p99")
    assert unchanged is not None and regressed is not None
    assert unchanged.basis == regressed.basis == "quantile"
    assert classify(unchanged, higher_is_better=False) == "unchanged"
    assert classify(regressed, higher_is_better=False) == "regressed"
    assert regressed.lo is not None and regressed.hi is not None
    assert regressed.lo < 1.2 < regressed.hi  # the interval holds the true change


def test_quantile_change_without_an_interval_is_unknown() -> None:
    few = _latencies(5, 1.0, seed=4)  # p50 needs 6 values for an interval, p99 299
    many = _latencies(500, 1.0, seed=5)
    change = quantile_change(few, many, "p99")
    assert change is not None and change.basis == "none" and change.lo is None
    assert classify(change, higher_is_better=False) == "unknown"
    assert quantile_change(many, many, "p42") is None  # no such statistic


def test_repeats_change_uses_the_spread_of_repeats() -> None:
    steady = repeats_change([100.0, 102.0, 98.0], [101.0, 99.0, 100.0])
    slower = repeats_change([100.0, 102.0, 98.0], [120.0, 122.0, 118.0])
    single = repeats_change([100.0], [120.0])
    assert steady is not None and classify(steady, higher_is_better=False) == "unchanged"
    assert slower is not None and classify(slower, higher_is_better=False) == "regressed"
    assert slower.pct == pytest.approx(20.0)
    assert single is not None and single.basis == "none"
    assert repeats_change([], [1.0]) is None


def test_direction_of_metrics() -> None:
    assert higher_is_better("throughput.output_tok_s")
    assert higher_is_better("goodput.req_s")
    assert not higher_is_better("ttft_ms.p99")
    assert not higher_is_better("e2e_ms.p50")
