"""Within-run intervals that see how a run's values move together: sectioning (batch means).

Values measured under load are not independent draws. The token gaps of one decode step are one
number shared by every stream in the batch; a closed loop completes requests in waves; a busy
second slows every request in it. An interval that treats n pooled values as independent is
√(n / effective n) too narrow: with 16 streams sharing each decode step, a "95%" order-statistic
interval of the ITL p50 covers the true value about a quarter of the time
(`scripts/interval_coverage.py`).

Sectioning cuts the measured window into `SECTIONS` equal spans of time, computes the statistic
in each, and reads the noise from how much the sections disagree: correlated values fall in one
section together, so their common movement shows up as a difference between sections instead of
being counted as n independent pieces of evidence.

- a rate (requests/s, tokens/s): the rate of each section; the interval is the overall rate ±
  t(K−1) · sd(section rates) / √K;
- a mean: the batch-means standard error of the ratio estimator (sections of unequal counts);
- a quantile q: the batch-means standard error of F(x̂q), the share of each section's values at
  or below the pooled estimate x̂q, turned back into values through the pooled order statistics:
  [x̂(q − t·se), x̂(q + t·se)]. With independent values se² = q(1 − q)/n and this is the usual
  order-statistic interval; with correlated values se is larger and so is the interval.

A value is placed in the section of the time it was observed at (a token gap at its second
token, a request's TTFT at its first token, its E2E and TPOT at its completion); times outside
the window are clamped to its first or last section (a request the driver drained after the
load's end). Fewer than `MIN_SECTIONS` sections holding values give no interval (None).

    >>> timed = [(t / 10, 20.0 + (t % 7)) for t in range(100)]    # 10 s, one value per 0.1 s
    >>> quantile_interval(timed, 0.5, 0.0, 10.0) is not None
    True
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from harness.metrics.distribution import QUANTILES, Distribution
from harness.metrics.quantiles import percentile, too_few
from harness.metrics.repeats import t975

SECTIONS = 10
"""Sections per measured window: enough degrees of freedom (9) for a t-interval, long enough
sections (0.5 s of a 5-s window) to hold many decode steps each."""
MIN_SECTIONS = 4

Timed = tuple[float, float]
"""(run-clock time the value was observed, the value)."""


def sections_of(timed: Iterable[Timed], start: float, end: float,
                k: int = SECTIONS) -> list[list[float]]:
    """The values in each of `k` equal spans of [start, end] (clamped at both ends)."""
    out: list[list[float]] = [[] for _ in range(k)]
    span = (end - start) / k
    for t, value in timed:
        index = 0 if span <= 0 else int((t - start) / span)
        out[min(k - 1, max(0, index))].append(value)
    return out


def mean_interval(timed: Sequence[Timed], start: float, end: float,
                  k: int = SECTIONS) -> tuple[float, float] | None:
    """The 95% interval of the mean of the values, from the spread of the section means."""
    groups = [g for g in sections_of(timed, start, end, k) if g]
    if len(groups) < MIN_SECTIONS:
        return None
    total = sum(len(g) for g in groups)
    mean = sum(sum(g) for g in groups) / total
    se = _ratio_se([(sum(g) - mean * len(g)) for g in groups], total)
    half = t975(len(groups) - 1) * se
    return mean - half, mean + half


def quantile_interval(timed: Sequence[Timed], q: float, start: float, end: float,
                      k: int = SECTIONS) -> tuple[float, float] | None:
    """The 95% interval of the q-quantile (0 < q < 1), from the spread across sections of the
    share of values at or below the pooled estimate (see the module docstring)."""
    groups = [g for g in sections_of(timed, start, end, k) if g]
    if len(groups) < MIN_SECTIONS:
        return None
    pooled = sorted(v for g in groups for v in g)
    estimate = percentile(pooled, 100 * q)
    total = len(pooled)
    below = [sum(1 for v in g if v <= estimate) for g in groups]
    share = sum(below) / total
    se = _ratio_se([b - share * len(g) for b, g in zip(below, groups, strict=True)], total)
    step = t975(len(groups) - 1) * se
    return (percentile(pooled, 100 * max(0.0, q - step)),
            percentile(pooled, 100 * min(1.0, q + step)))


# χ²(0.95, df) / df for df = 3..9: the largest variance ratio independent values give by chance
# in 19 of 20 windows (F(0.95; df, ∞)); a design effect below it is not told apart from 1.
TAIL = ("p95", "p99")
"""Percentiles whose floor is judged on the effective count (`widened`)."""

_NOISE = {3: 2.605, 4: 2.372, 5: 2.214, 6: 2.099, 7: 2.010, 8: 1.938, 9: 1.880}


def design_effect(timed: Sequence[Timed], start: float, end: float,
                  k: int = SECTIONS) -> float | None:
    """How many times the variance of the share below the median exceeds what independent values
    give: `count / design_effect` is how many independent values the data is worth (16 streams
    sharing every decode step: about 16). 1 when the excess is within what independent values
    show by chance (`_NOISE`); None with too few sections."""
    groups = [g for g in sections_of(timed, start, end, k) if g]
    if len(groups) < MIN_SECTIONS:
        return None
    pooled = sorted(v for g in groups for v in g)
    median = percentile(pooled, 50)
    below = [sum(1 for v in g if v <= median) for g in groups]
    share = sum(below) / len(pooled)
    independent = share * (1 - share) / len(pooled)
    if independent <= 0:
        return 1.0
    se = _ratio_se([b - share * len(g) for b, g in zip(below, groups, strict=True)], len(pooled))
    ratio = se * se / independent
    return ratio if ratio > _NOISE[min(9, len(groups) - 1)] else 1.0


def rate_interval(amounts: Sequence[float], start: float,
                  end: float) -> tuple[float, float] | None:
    """The 95% interval of a rate over [start, end] from what each equal section counted
    (`amounts[i]` in section i, e.g. tokens that arrived in it): overall ± t · sd / √K."""
    k = len(amounts)
    if k < MIN_SECTIONS or end <= start:
        return None
    span = (end - start) / k
    rates = [a / span for a in amounts]
    mean = sum(rates) / k
    sd = math.sqrt(sum((r - mean) ** 2 for r in rates) / (k - 1))
    half = t975(k - 1) * sd / math.sqrt(k)
    return max(0.0, mean - half), mean + half


def hull(a: tuple[float, float] | None,
         b: tuple[float, float] | None) -> tuple[float, float] | None:
    """The smallest interval holding both (None when either is None: no interval at all)."""
    if a is None or b is None:
        return None
    return min(a[0], b[0]), max(a[1], b[1])


def _hull_of(first: tuple[float, float] | None,
             sectioned: Sequence[tuple[float, float] | None]) -> tuple[float, float] | None:
    """The hull of `first` and every sectioned interval there is; None without `first` or
    without any sectioned one."""
    out = [s for s in sectioned if s is not None]
    if first is None or not out:
        return None
    return min(first[0], *(s[0] for s in out)), max(first[1], *(s[1] for s in out))


def _ratio_se(deviations: Sequence[float], total: int) -> float:
    """Batch-means standard error of a ratio estimator Σy/Σn from per-section deviations
    y_k − R·n_k: √(K/(K−1) · Σ dev²) / Σn."""
    k = len(deviations)
    return math.sqrt(k / (k - 1) * sum(d * d for d in deviations)) / total



def sections_for(window_s: float, span_s: float | None) -> int:
    """How many sections a window is cut into: `SECTIONS`, fewer when the values' own span (a
    request's duration: its token gaps and its TPOT move with it) would reach across several,
    never fewer than `MIN_SECTIONS` (so a window shorter than 4 requests still gets one)."""
    if not span_s or span_s <= 0 or window_s <= 0:
        return SECTIONS
    return max(MIN_SECTIONS, min(SECTIONS, int(window_s / span_s)))


def widened(dist: Distribution | None, timed: Sequence[Timed], start: float, end: float,
            k: int = SECTIONS) -> Distribution | None:
    """`dist` with each percentile's interval the hull of its order-statistic interval and its
    sectioned ones, with `k` sections and with `SECTIONS` (None where the order statistics or
    every sectioning give none: no interval is better than a narrow one), the mean's sectioned
    interval under `ci95["mean"]`, and the tail percentiles' `too_few` judged on the effective
    count (count / design effect: 3,200 token gaps of 16 streams sharing 200 steps are worth about
    200 independent values, too few for a p99). p50 and p90 keep their count's floors: their
    hulled intervals cover (scripts/interval_coverage.py), and a design effect read from nearly
    equal values (a deterministic server's TTFT) would refuse a figure known to a fraction of a
    percent."""
    if dist is None:
        return None
    cuts = sorted({k, SECTIONS})
    ci: dict[str, tuple[float, float] | None] = {}
    for name, q in QUANTILES:
        ci[name] = _hull_of(dist.ci95.get(name),
                            [quantile_interval(timed, q, start, end, cut) for cut in cuts])
    means = [m for cut in cuts if (m := mean_interval(timed, start, end, cut)) is not None]
    ci["mean"] = (min(m[0] for m in means), max(m[1] for m in means)) if means else None
    deff = design_effect(timed, start, end)
    effective = dist.count / deff if deff is not None else None
    few = dist.too_few
    if effective is not None:  # the tail needs independent tail events: clustered ones count less
        tail = [name for name in too_few(math.floor(effective)) if name in TAIL]
        few = tuple(name for name, _ in QUANTILES if name in {*dist.too_few, *tail})
    return replace(dist, ci95=ci, effective_count=effective, too_few=few)


@dataclass(frozen=True)
class Window:
    """The measured window [start, end] and how many sections its intervals cut it into: as
    many as fit requests of `span_s` (the median ok request's duration), 4 to 10."""

    start: float
    end: float
    span_s: float | None = None

    @property
    def length(self) -> float:
        return self.end - self.start

    @property
    def k(self) -> int:
        return sections_for(self.length, self.span_s)

    def distribution(self, timed: Sequence[Timed]) -> Distribution | None:
        """The values' distribution, its intervals widened by sectioning (values at times)."""
        return widened(Distribution.of(v for _, v in timed), timed, self.start, self.end, self.k)

    def amounts(self, amount: Callable[[float, float], float]) -> list[float]:
        """`amount(lo, hi)` of each section [lo, hi) of the window (the last one holds `end`)."""
        step = self.length / self.k
        edges = [self.start + i * step for i in range(self.k)] + [math.nextafter(self.end, 1e300)]
        return [amount(lo, hi) for lo, hi in itertools.pairwise(edges)]
