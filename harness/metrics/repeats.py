"""Across repeats: the mean of a per-repeat value and its 95% Student-t interval.

A scenario with `repeats = N` runs every target × driver × point N times (`harness.run.runner`,
interleaved A B C A B C). Each repeat gives one value of a metric (say TTFT p50); the repeats are
treated as independent draws, and the interval is mean ± t(0.975, N−1) · s / √N, with s the
sample standard deviation (AIPerf reports the same t-interval over its repeats):

    >>> spread([100.0, 110.0, 120.0])
    Spread(n=3, mean=110.0, lo=85.15..., hi=134.84...)

Fewer than two values give no interval (`lo`/`hi` None); no value gives None.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.summary.record import PointSummary

# t(0.975, df) for df = 1..30; beyond that the normal 1.96 is within 2%.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    """The two-sided 95% Student-t critical value for `df` >= 1 degrees of freedom."""
    if df < 1:
        raise ValueError("a t-interval needs at least 1 degree of freedom")
    return _T975[df - 1] if df <= len(_T975) else 1.96


@dataclass(frozen=True)
class Spread:
    """`n` per-repeat values: their mean and 95% t-interval [lo, hi] (None below 2 values)."""

    n: int
    mean: float
    lo: float | None
    hi: float | None

    @property
    def interval(self) -> tuple[float, float] | None:
        """(lo, hi), or None below 2 values."""
        return None if self.lo is None or self.hi is None else (self.lo, self.hi)

    @property
    def half_width(self) -> float | None:
        return None if self.lo is None or self.hi is None else (self.hi - self.lo) / 2


def spread(values: Iterable[float | None]) -> Spread | None:
    """Mean and t-interval of the finite values; None when there is none."""
    data = [v for v in values if v is not None and math.isfinite(v)]
    if not data:
        return None
    mean = statistics.fmean(data)
    if len(data) < 2:
        return Spread(n=1, mean=mean, lo=None, hi=None)
    half = t975(len(data) - 1) * statistics.stdev(data) / math.sqrt(len(data))
    return Spread(n=len(data), mean=mean, lo=mean - half, hi=mean + half)


Metric = Callable[[PointSummary], float | None]


def by_point(points: Iterable[PointSummary], metric: Metric) -> dict[tuple[str, str], Spread]:
    """`metric` across the repeats of each (target, point) that ran more than once."""
    groups: dict[tuple[str, str], dict[int, float | None]] = {}
    for p in points:
        groups.setdefault((p.target, p.point), {})[p.repeat] = metric(p)
    out: dict[tuple[str, str], Spread] = {}
    for key, values in groups.items():
        if len(values) > 1:
            result = spread(values.values())
            if result is not None:
                out[key] = result
    return out
