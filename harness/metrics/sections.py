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

import bisect
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
    last = k - 1
    for t, value in timed:
        index = 0 if span <= 0 else int((t - start) / span)
        out[last if index > last else 0 if index < 0 else index].append(value)
    return out


@dataclass(frozen=True)
class Cut:
    """Values cut into sections once, for every statistic read from them: each non-empty
    section sorted, and all of them pooled and sorted (`Cut.of`: None with fewer than
    `MIN_SECTIONS` sections holding values)."""

    groups: tuple[list[float], ...]
    pooled: list[float]

    @classmethod
    def of(cls, timed: Iterable[Timed], start: float, end: float,
           k: int = SECTIONS) -> Cut | None:
        groups = tuple(sorted(g) for g in sections_of(timed, start, end, k) if g)
        if len(groups) < MIN_SECTIONS:
            return None
        return cls(groups, sorted(itertools.chain.from_iterable(groups)))

    def share_below(self, x: float) -> tuple[float, float]:
        """(the pooled share of values ≤ x, its batch-means standard error)."""
        below = [bisect.bisect_right(g, x) for g in self.groups]
        total = len(self.pooled)
        share = sum(below) / total
        return share, _ratio_se([b - share * len(g) for b, g in zip(below, self.groups,
                                                                     strict=True)], total)

    def quantile_interval(self, q: float) -> tuple[float, float]:
        """`quantile_interval` on these sections."""
        estimate = percentile(self.pooled, 100 * q)
        step = t975(len(self.groups) - 1) * self.share_below(estimate)[1]
        return (percentile(self.pooled, 100 * max(0.0, q - step)),
                percentile(self.pooled, 100 * min(1.0, q + step)))

    def mean_interval(self) -> tuple[float, float]:
        """`mean_interval` on these sections."""
        total = len(self.pooled)
        sums = [math.fsum(g) for g in self.groups]
        mean = math.fsum(sums) / total
        se = _ratio_se([(g_sum - mean * len(g)) for g_sum, g in zip(sums, self.groups,
                                                                    strict=True)], total)
        half = t975(len(self.groups) - 1) * se
        return mean - half, mean + half

    def design_effect(self) -> float:
        """`design_effect` on these sections."""
        share, se = self.share_below(percentile(self.pooled, 50))
        independent = share * (1 - share) / len(self.pooled)
        if independent <= 0:
            return 1.0
        ratio = se * se / independent
        return ratio if ratio > _NOISE[min(9, len(self.groups) - 1)] else 1.0


def mean_interval(timed: Sequence[Timed], start: float, end: float,
                  k: int = SECTIONS) -> tuple[float, float] | None:
    """The 95% interval of the mean of the values, from the spread of the section means."""
    cut = Cut.of(timed, start, end, k)
    return None if cut is None else cut.mean_interval()


def quantile_interval(timed: Sequence[Timed], q: float, start: float, end: float,
                      k: int = SECTIONS) -> tuple[float, float] | None:
    """The 95% interval of the q-quantile (0 < q < 1), from the spread across sections of the
    share of values at or below the pooled estimate (see the module docstring)."""
    cut = Cut.of(timed, start, end, k)
    return None if cut is None else cut.quantile_interval(q)


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
    cut = Cut.of(timed, start, end, k)
    return None if cut is None else cut.design_effect()


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
    cuts = {n: Cut.of(timed, start, end, n) for n in sorted({k, SECTIONS})}
    made = [c for c in cuts.values() if c is not None]
    ci: dict[str, tuple[float, float] | None] = {}
    for name, q in QUANTILES:
        ci[name] = _hull_of(dist.ci95.get(name), [c.quantile_interval(q) for c in made])
    means = [c.mean_interval() for c in made]
    ci["mean"] = (min(m[0] for m in means), max(m[1] for m in means)) if means else None
    ten = cuts[SECTIONS]
    deff = ten.design_effect() if ten is not None else None
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

    def edges(self) -> list[float]:
        """The sections' bounds: section i is [edges[i], edges[i + 1]) (the last holds `end`)."""
        step = self.length / self.k
        return [self.start + i * step for i in range(self.k)] + [math.nextafter(self.end, 1e300)]

    def amounts(self, amount: Callable[[float, float], float]) -> list[float]:
        """`amount(lo, hi)` of each section [lo, hi) of the window."""
        return [amount(lo, hi) for lo, hi in itertools.pairwise(self.edges())]

    def binned(self, events: Iterable[Timed]) -> list[float]:
        """The amounts of (time, amount) events summed per section, those outside the window
        left out: `amounts` of a sum over events, in one pass."""
        edges = self.edges()
        k = len(edges) - 1
        out = [0.0] * k
        for t, amount in events:
            i = bisect.bisect_right(edges, t) - 1
            if 0 <= i < k:
                out[i] += amount
        return out
