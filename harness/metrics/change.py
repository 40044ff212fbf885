"""How much a metric changed between two measurements, with a 95% interval on the change.

The gate and `compare` ask the same question: is B's value different from A's beyond the noise
of measuring it? The change is the ratio r = B / A (`pct` = 100 · (r − 1)); its interval is
worked out on the log scale, where independent uncertainties add, from what each side knows
about its own noise:

- **within** (`interval_change`): each side is one measurement with its own 95% interval, a
  within-run one (`harness.metrics.sections`: percentiles, means and rates that see values
  move together). The bounds are log r − √(wB↓² + wA↑²) and log r + √(wB↑² + wA↓²), with
  w↓ = log(x) − log(lo), w↑ = log(hi) − log(x). Right for two things of ONE run (an in-run
  ratio): the machine's drift is common to both. Between two runs it misses that drift.
- **repeats** (`repeats_change`): both sides measured in ≥ 2 repeats (or runs): Welch's
  t-interval on the mean of the log values. Run-to-run variation is in it.
- **prediction** (`prediction_change`): one side is k ≥ 2 repeats, the other one run: the
  change lies within mean ± t(k−1) · s · √(1 + 1/k) of the repeats' log values if nothing
  changed (a prediction interval: the new run varies as the repeats did), widened to the
  within-run interval where that is wider.
- **count** (`count_change`): a counter (errors, refusals): the rate per request on each side,
  Poisson on the counts (+½ each, so 0 is not −∞); 0 → 0 is no change.

    >>> c = interval_change(100.0, (95.0, 105.0), 120.0, (114.0, 126.0))
    >>> round(c.pct, 1), round(c.lo, 3), round(c.hi, 3)
    (20.0, 1.118, 1.288)
    >>> classify(c, higher_is_better=False)
    'regressed'

A value that is not positive and finite gives no interval (`basis` "none"); a missing value
gives no Change (None), never a silent 0. `p_value` turns a change into the two-sided p of "no
change", for `compare`'s false-discovery control.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.metrics.repeats import spread, t975

Basis = Literal["within", "repeats", "prediction", "count", "none"]
Direction = Literal["improved", "regressed", "unchanged", "unknown"]
Interval = tuple[float, float]

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
        """after / before; 1 for 0 → 0 (nothing changed), infinite for 0 → more."""
        if self.before:
            return self.after / self.before
        return 1.0 if self.after == 0 else math.inf

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


def interval_change(a: float, a_ci: Interval | None, b: float, b_ci: Interval | None) -> Change:
    """b / a from two independent measurements, each with its own 95% interval (see the module
    docstring: `within`); no interval when either side has none or a value is not positive."""
    if a_ci is None or b_ci is None or not _positive(a, b, *a_ci, *b_ci):
        return Change(a, b, None, None, "none")
    lo, hi = _log_bounds(a, a_ci, b, b_ci)
    return Change(a, b, math.exp(lo), math.exp(hi), "within")


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


def prediction_change(repeats: Sequence[float], single: float, single_ci: Interval | None,
                      single_is_after: bool = True) -> Change | None:
    """One run against k ≥ 2 repeats (a baseline saved from several runs): the prediction
    interval of one more run if nothing changed, hulled with the within-run interval of the
    single run against the repeats' mean (see the module docstring); None without values."""
    values = _finite(repeats)
    if not values or not math.isfinite(single):
        return None
    mean = statistics.fmean(values)
    a, b = (mean, single) if single_is_after else (single, mean)
    if len(values) < 2 or not _positive(*values, single):
        return Change(a, b, None, None, "none")
    logs = [math.log(v) for v in values]
    centre = math.log(b) - math.log(a)
    half = t975(len(logs) - 1) * statistics.stdev(logs) * math.sqrt(1 + 1 / len(logs))
    lo, hi = centre - half, centre + half
    across = spread(values)  # the repeats' mean and its t-interval
    mean_ci = across.interval if across is not None else None
    within = interval_change(mean, mean_ci, single, single_ci) if single_is_after \
        else interval_change(single, single_ci, mean, mean_ci)
    if within.lo is not None and within.hi is not None:
        lo, hi = min(lo, math.log(within.lo)), max(hi, math.log(within.hi))
    return Change(a, b, math.exp(lo), math.exp(hi), "prediction")


def count_change(before: int, before_total: int, after: int, after_total: int) -> Change:
    """A counter's change: the ratio of its rate per request (count / requests counted: the
    Change's `before` and `after`) on each side, Poisson on the counts with ½ added to each;
    0 → 0 is no change (ratio 1)."""
    if before == 0 and after == 0:
        return Change(0.0, 0.0, 1.0, 1.0, "count")
    if before_total < 1 or after_total < 1:
        return Change(float(before), float(after), None, None, "none")
    a, b = before / before_total, after / after_total
    centre = math.log((after + 0.5) / after_total) - math.log((before + 0.5) / before_total)
    half = Z975 * math.sqrt(1 / (before + 0.5) + 1 / (after + 0.5))
    return Change(a, b, math.exp(centre - half), math.exp(centre + half), "count")


def p_value(change: Change) -> float | None:
    """The two-sided p of "no change" implied by the change's 95% interval (normal on the log
    scale, the standard error read from the interval's half toward 1); None without one."""
    if change.lo is None or change.hi is None or change.lo <= 0 or change.ratio <= 0 \
            or not math.isfinite(change.ratio):
        return None
    centre = math.log(change.ratio)
    half = centre - math.log(change.lo) if centre > 0 else math.log(change.hi) - centre
    if half <= 0:
        return 1.0 if centre == 0 else 0.0
    z = abs(centre) / (half / Z975)
    return math.erfc(z / math.sqrt(2))


def _log_bounds(a: float, a_ci: Interval, b: float, b_ci: Interval) -> tuple[float, float]:
    log_r = math.log(b) - math.log(a)
    a_down, a_up = math.log(a) - math.log(a_ci[0]), math.log(a_ci[1]) - math.log(a)
    b_down, b_up = math.log(b) - math.log(b_ci[0]), math.log(b_ci[1]) - math.log(b)
    return log_r - math.hypot(b_down, a_up), log_r + math.hypot(b_up, a_down)


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def _positive(*values: float) -> bool:
    return all(math.isfinite(v) and v > 0 for v in values)
