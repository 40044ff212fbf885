"""How much a metric changed between two measurements, with a 95% interval on the change.

The gate and `compare` ask the same question: is B's value different from A's beyond the noise
of measuring it? The change is the ratio r = B / A (`pct` = 100 · (r − 1)), and its interval
comes from one of three bases, each on the log scale, where independent uncertainties add:

- **quantile**: both values are percentiles with an order-statistic interval
  (`Distribution.ci95`, harness.metrics.quantiles). Each side's half-widths are read from its own,
  asymmetric, interval; the change's bounds are
  log r − √(wB↓² + wA↑²) and log r + √(wB↑² + wA↓²), w↓ = log(x) − log(lo), w↑ = log(hi) − log(x).
- **repeats**: both sides were measured in ≥ 2 repeats: Welch's t-interval on the mean of the
  log values (df by Welch–Satterthwaite). This is the only basis that sees run-to-run drift.
- **count**: a rate computed from n completed requests over a fixed window: standard error of
  log(rate) ≈ 1/√n (Poisson). A closed loop completes requests more regularly than Poisson, so
  this overstates the within-run noise, and it cannot see drift between runs.

    >>> c = count_change(100.0, 400, 80.0, 400)
    >>> round(c.pct, 1), round(c.lo, 3), round(c.hi, 3)
    (-20.0, 0.696, 0.919)
    >>> classify(c, higher_is_better=True)
    'regressed'

A value that is not positive and finite gives no interval (`basis` "none"); a missing value
gives no Change (None), never a silent 0.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.metrics.repeats import t975
from harness.summary.record import Distribution

Basis = Literal["quantile", "repeats", "count", "none"]
Direction = Literal["improved", "regressed", "unchanged", "unknown"]

Z975 = 1.959964  # the normal 97.5% point

# Metric names (the last parts of a gate path, or a summary field) where more is better;
# every other metric (latencies, errors, CPU, memory) is better lower.
_HIGHER_IS_BETTER = ("throughput", "goodput", "output_tok_s", "input_tok_s", "req_s",
                     "fraction", "good_requests", "tokens_per_j", "capacity", "ok")


@dataclass(frozen=True)
class Change:
    """B relative to A: `ratio` = after / before, with its 95% interval [lo, hi] (ratios)."""

    before: float
    after: float
    lo: float | None
    hi: float | None
    basis: Basis

    @property
    def ratio(self) -> float:
        return self.after / self.before if self.before else math.inf

    @property
    def pct(self) -> float:
        """The relative change in percent (+10.0: B is 10% above A)."""
        return 100 * (self.ratio - 1)

    @property
    def pct_interval(self) -> tuple[float, float] | None:
        """[lo, hi] of the relative change in percent; None without an interval."""
        if self.lo is None or self.hi is None:
            return None
        return 100 * (self.lo - 1), 100 * (self.hi - 1)


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of `metric` ("throughput.output_tok_s", "ttft_ms.p99") is good."""
    parts = metric.lower().replace("/", ".").split(".")
    return any(part in _HIGHER_IS_BETTER for part in parts)


def classify(change: Change, higher_is_better: bool) -> Direction:
    """improved / regressed when the interval excludes "no change", unchanged when it holds
    it, unknown without an interval."""
    if change.lo is None or change.hi is None:
        return "unknown"
    if change.lo <= 1 <= change.hi:
        return "unchanged"
    up = change.lo > 1
    return "improved" if up == higher_is_better else "regressed"


def quantile_change(before: Distribution, after: Distribution, stat: str) -> Change | None:
    """The change of percentile `stat` ("p50", "p99", ...) or "mean"/"max" between two
    distributions; the interval needs both sides' `ci95[stat]`."""
    a, b = _stat(before, stat), _stat(after, stat)
    if a is None or b is None:
        return None
    ci_a, ci_b = before.ci95.get(stat), after.ci95.get(stat)
    if ci_a is None or ci_b is None or not _positive(a, b, *ci_a, *ci_b):
        return Change(a, b, None, None, "none")
    log_r = math.log(b) - math.log(a)
    a_down, a_up = math.log(a) - math.log(ci_a[0]), math.log(ci_a[1]) - math.log(a)
    b_down, b_up = math.log(b) - math.log(ci_b[0]), math.log(ci_b[1]) - math.log(b)
    lo = log_r - math.hypot(b_down, a_up)
    hi = log_r + math.hypot(b_up, a_down)
    return Change(a, b, math.exp(lo), math.exp(hi), "quantile")


def repeats_change(before: Sequence[float], after: Sequence[float]) -> Change | None:
    """The change of the mean between two sets of per-repeat values (Welch on log values);
    None when a side has no value."""
    a_vals, b_vals = _finite(before), _finite(after)
    if not a_vals or not b_vals:
        return None
    a, b = statistics.fmean(a_vals), statistics.fmean(b_vals)
    if len(a_vals) < 2 or len(b_vals) < 2 or not _positive(*a_vals, *b_vals):
        return Change(a, b, None, None, "none")
    la, lb = [math.log(v) for v in a_vals], [math.log(v) for v in b_vals]
    va, vb = statistics.variance(la) / len(la), statistics.variance(lb) / len(lb)
    se = math.sqrt(va + vb)
    centre = statistics.fmean(lb) - statistics.fmean(la)
    if se == 0:
        return Change(a, b, math.exp(centre), math.exp(centre), "repeats")
    df = (va + vb) ** 2 / (va**2 / (len(la) - 1) + vb**2 / (len(lb) - 1))
    half = t975(max(1, math.floor(df))) * se
    return Change(a, b, math.exp(centre - half), math.exp(centre + half), "repeats")


def count_change(before: float | None, before_count: int, after: float | None,
                 after_count: int) -> Change | None:
    """The change of a rate measured from `*_count` completed requests on each side."""
    if before is None or after is None:
        return None
    if before_count < 1 or after_count < 1 or not _positive(before, after):
        return Change(before, after, None, None, "none")
    log_r = math.log(after) - math.log(before)
    half = Z975 * math.sqrt(1 / before_count + 1 / after_count)
    return Change(before, after, math.exp(log_r - half), math.exp(log_r + half), "count")


def _stat(dist: Distribution, stat: str) -> float | None:
    value = getattr(dist, stat, None)
    return float(value) if isinstance(value, (int, float)) else None


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def _positive(*values: float) -> bool:
    return all(math.isfinite(v) and v > 0 for v in values)
