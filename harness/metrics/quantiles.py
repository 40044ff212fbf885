"""Percentiles of measured values, how far to trust them, and how many values they need.

    percentile([10.0, 20.0, 30.0, 40.0], 50)   # 25.0 (numpy's linear method)
    quantile_ci(values_1_to_100, 0.5)          # (40.0, 61.0): the 40th and 61st values
    too_few(100)                               # ("p95", "p99")

`quantile_ci` is a distribution-free order-statistic interval: with B ~ Binomial(n, q) the
number of values at or below the true q-quantile ξ, the sorted values x(1) ≤ … ≤ x(n) give
P(x(j) ≤ ξ < x(k)) = P(j ≤ B ≤ k − 1), summed exactly from the binomial probabilities. The ranks
are equal-tailed (at most 2.5% of the probability on either side); where one tail runs out of
ranks (x(1) or x(n) is already the bound), the other takes what is left of the 5%. When even
[x(1), x(n)] covers less than 95% there is no interval: None (p50 needs n ≥ 6, p99 n ≥ 299).

`FLOORS` are the fewest values a percentile needs before it is shown without a mark.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

CONFIDENCE = 0.95

# MLPerf Inference LoadGen's early-stopping floors (SingleStream, no over-latency query;
# loadgen/early_stopping.cc, printed as "Processed at least 64 queries"; reproduced in
# mlcommons/endpoints#417): 64 values for p90, 662 for p99. Both leave about 6.5 values beyond
# the percentile (64 × 0.10 = 6.4, 662 × 0.01 = 6.62); p50 and p95 take the same rule,
# ceil(6.62 / (1 − q)): 14 and 133.
FLOOR_P50 = 14
FLOOR_P90 = 64
FLOOR_P95 = 133
FLOOR_P99 = 662
FLOORS: dict[str, int] = {"p50": FLOOR_P50, "p90": FLOOR_P90, "p95": FLOOR_P95,
                          "p99": FLOOR_P99}


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of already sorted values."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    pos = (len(sorted_values) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def too_few(count: int) -> tuple[str, ...]:
    """The percentiles (of `FLOORS`) whose floor `count` values do not reach."""
    return tuple(name for name, floor in FLOORS.items() if count < floor)


def quantile_ci(sorted_values: Sequence[float], q: float,
                confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The order-statistic interval [x(j), x(k)] for the q-quantile (0 < q < 1) of already
    sorted values, covering it with at least `confidence`; None when no ranks can."""
    ranks = ci_ranks(len(sorted_values), q, confidence)
    if ranks is None:
        return None
    j, k = ranks
    return sorted_values[j - 1], sorted_values[k - 1]


def ci_ranks(n: int, q: float, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks (j, k) with P(j ≤ B ≤ k − 1) ≥ `confidence`, B ~ Binomial(n, q), as
    equal-tailed as the ends allow (see the module docstring); None when none exist.

    x(j) misses below (lies above the quantile) when B ≤ j − 1; x(k) misses above when B ≥ k.
    """
    if n < 1 or not 0 < q < 1:
        return None
    alpha, eps = 1 - confidence, 1e-12
    cdf = _BinomialCdf(n, q)  # cdf(i) = P(B ≤ i)
    least_low, least_high = cdf(0), 1 - cdf(n - 1)  # misses of x(1) and of x(n)
    if least_low + least_high > alpha + eps:
        return None
    low_budget = high_budget = alpha / 2
    if least_high > alpha / 2:
        low_budget, high_budget = alpha - least_high, least_high
    elif least_low > alpha / 2:
        low_budget, high_budget = least_low, alpha - least_low
    j = max(1, cdf.lo)  # below cdf.lo the cdf is 0: every such rank fits
    while j < n and cdf(j) <= low_budget + eps:  # x(j + 1) still misses below little enough
        j += 1
    k = min(n, cdf.hi + 2)  # above cdf.hi it is 1
    while k > 1 and 1 - cdf(k - 2) <= high_budget + eps:  # so does x(k - 1) above
        k -= 1
    return (j, k) if j < k else None


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion `successes` / `n` (independent trials; None
    for n = 0): what 11 passes of 12 say about the share (≈ [0.65, 0.99])."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


class _BinomialCdf:
    """P(B ≤ i) for B ~ Binomial(n, q), computed once over the mean ± 15 standard deviations
    (+ 10); outside it the cdf is taken as 0 or 1 (the mass left out is below 1e-40)."""

    def __init__(self, n: int, q: float) -> None:
        sd = math.sqrt(n * q * (1 - q))
        self.lo = max(0, math.floor(n * q - 15 * sd - 10))
        self.hi = min(n, math.ceil(n * q + 15 * sd + 10))
        log_q, log_1q, log_n = math.log(q), math.log1p(-q), math.lgamma(n + 1)
        total, self.values = 0.0, []
        for i in range(self.lo, self.hi + 1):
            total += math.exp(log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                              + i * log_q + (n - i) * log_1q)
            self.values.append(min(1.0, total))

    def __call__(self, i: int) -> float:
        if i < self.lo:
            return 0.0
        if i > self.hi:
            return 1.0
        return self.values[i - self.lo]
