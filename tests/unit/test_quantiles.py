"""Order-statistic confidence intervals and the floors below which a percentile is marked.

Expected ranks are the published distribution-free median intervals (n = 10: x(2)..x(9),
n = 20: x(6)..x(15), n = 100: x(40)..x(61)), and binomial tails worked by hand below.
"""

from __future__ import annotations

from fractions import Fraction
from math import comb

import pytest

from harness.metrics.quantiles import FLOORS, ci_ranks, quantile_ci, too_few
from harness.summary.record import Distribution


def exact_coverage(n: int, q: Fraction, j: int, k: int) -> Fraction:
    """P(j ≤ B ≤ k − 1), B ~ Binomial(n, q), in exact rationals (not the module's floats)."""
    return sum((comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(j, k)), Fraction(0))


def test_median_interval_of_100_values_is_the_40th_to_61st() -> None:
    # P(B ≤ 39) = 0.0176 ≤ 2.5% < P(B ≤ 40) = 0.0284: j = 40; by symmetry k = 61.
    values = [float(v) for v in range(1, 101)]
    assert ci_ranks(100, 0.5) == (40, 61)
    assert quantile_ci(values, 0.5) == (40.0, 61.0)
    assert exact_coverage(100, Fraction(1, 2), 40, 61) == pytest.approx(0.9648, abs=1e-4)


@pytest.mark.parametrize(("n", "ranks"), [(6, (1, 6)), (10, (2, 9)), (20, (6, 15))])
def test_median_ranks_match_the_tables(n: int, ranks: tuple[int, int]) -> None:
    assert ci_ranks(n, 0.5) == ranks


def test_too_few_values_for_any_interval_give_none() -> None:
    # n = 5: even [x(1), x(5)] misses with 2 × 0.5⁵ = 6.25% > 5%.
    assert ci_ranks(5, 0.5) is None
    assert quantile_ci([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) is None
    # p99, n = 298: x(298) misses above with 0.99²⁹⁸ = 5.003%: no interval at all.
    assert ci_ranks(298, 0.99) is None


def test_p99_interval_takes_the_maximum_when_the_upper_tail_runs_out() -> None:
    # n = 299: P(B ≥ 299) = 0.99²⁹⁹ = 4.95% > 2.5%, so x(299) bounds it above and the lower
    # tail gets the 0.05% left: P(B ≤ 288) ≤ 0.05% < P(B ≤ 289).
    assert ci_ranks(299, 0.99) == (289, 299)
    assert exact_coverage(299, Fraction(99, 100), 289, 299) >= Fraction(95, 100)
    # n = 368 is the first with both tails inside 2.5% (0.99³⁶⁸ = 2.47%).
    assert ci_ranks(368, 0.99) == (360, 368)


@pytest.mark.parametrize("n", [6, 7, 13, 50, 99, 299, 400, 701])
@pytest.mark.parametrize("q", [Fraction(1, 2), Fraction(99, 100)])
def test_every_interval_covers_at_least_95_percent_exactly(n: int, q: Fraction) -> None:
    ranks = ci_ranks(n, float(q))
    if ranks is None:
        assert n < 299 if q > Fraction(1, 2) else n < 6
        return
    j, k = ranks
    assert 1 <= j < k <= n
    assert exact_coverage(n, q, j, k) >= Fraction(95, 100)


def test_floors_follow_mlperf_early_stopping() -> None:
    assert FLOORS == {"p50": 14, "p90": 64, "p95": 133, "p99": 662}
    assert too_few(13) == ("p50", "p90", "p95", "p99")
    assert too_few(14) == ("p90", "p95", "p99")
    assert too_few(64) == ("p95", "p99")
    assert too_few(661) == ("p99",)
    assert too_few(662) == ()


def test_distribution_carries_its_intervals_and_marks() -> None:
    d = Distribution.of(float(v) for v in range(100, 0, -1))  # unsorted on the way in
    assert d is not None
    # p99 needs 299 values; p95 takes x(100) above, whose miss is 0.95^100 = 0.6%
    assert d.ci95 == {"p50": (40.0, 61.0), "p90": (84.0, 96.0), "p95": (90.0, 100.0), "p99": None}
    assert d.too_few == ("p95", "p99")
    big = Distribution.of(float(v) for v in range(1, 1001))
    assert big is not None and big.too_few == ()
    lo, hi = big.ci95["p99"] or (0.0, 0.0)
    assert lo <= big.p99 <= hi and hi <= 1000.0
