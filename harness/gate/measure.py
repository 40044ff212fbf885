"""One side of a gate at one target × point: the value a metric path names in a run's summary,
with what its noise can be judged from (the distribution's intervals, the requests behind a
rate, or the per-repeat values), or why it cannot be judged (`problem`).

    m = measure(points_of(summary, "fastapi_batching", "c32"), path)
    m.value, m.interval()     # 262.4, (241.1, 285.6)   (a rate: Poisson on 310 requests)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from harness.gate.spec import DISTRIBUTIONS, MetricPath
from harness.metrics.change import Z975, Change, count_change, quantile_change, repeats_change
from harness.metrics.quantiles import FLOORS
from harness.metrics.repeats import t975
from harness.summary.record import Distribution, PointSummary, RunSummary


@dataclass(frozen=True)
class Measured:
    """A metric's value at one target × point (the mean over repeats when there are several).

    `dist`: the distribution it was read from; `count`: the requests a rate was computed from;
    `repeats`: the per-repeat values (two or more repeats); `problem`: why it cannot be judged
    (then `value` may still be shown)."""

    value: float | None
    dist: Distribution | None = None
    count: int | None = None
    repeats: tuple[float, ...] = ()
    problem: str | None = None

    def interval(self, stat: str) -> tuple[float, float] | None:
        """The 95% interval of `value`: across repeats (t on the mean), the percentile's
        order-statistic interval, or Poisson on `count` for a rate; None without one."""
        if self.value is None:
            return None
        if len(self.repeats) >= 2:
            half = t975(len(self.repeats) - 1) * statistics.stdev(self.repeats)
            half /= math.sqrt(len(self.repeats))
            return self.value - half, self.value + half
        if self.dist is not None:
            return self.dist.ci95.get(stat)
        if self.count and self.value > 0:
            factor = math.exp(Z975 / math.sqrt(self.count))
            return self.value / factor, self.value * factor
        return None


def points_of(summary: RunSummary, target: str, point: str) -> list[PointSummary]:
    """Every repeat of `target` × `point` in `summary`."""
    return [p for p in summary.points if p.target == target and p.point == point]


def measure(points: Sequence[PointSummary], path: MetricPath) -> Measured:
    """`path`'s field and part at these points (every repeat of one target × point)."""
    if not points:
        return Measured(None, problem=f"missing metric: no point {path.target}.{path.point}")
    if len(points) == 1:
        return _one(points[0], path)
    each = [_one(p, path) for p in points]
    values = tuple(m.value for m in each if m.value is not None)
    problem = next((m.problem for m in each if m.problem), None)
    if len(values) < len(each):
        problem = problem or f"missing metric: {path} in some repeats"
    return Measured(statistics.fmean(values) if values else None, repeats=values,
                    problem=problem)


def change_between(before: Measured, after: Measured, stat: str) -> Change | None:
    """after / before with its interval: across repeats, from both percentiles' intervals, or
    from the requests behind two rates."""
    if before.value is None or after.value is None:
        return None
    if len(before.repeats) >= 2 and len(after.repeats) >= 2:
        return repeats_change(before.repeats, after.repeats)
    if before.dist is not None and after.dist is not None:
        return quantile_change(before.dist, after.dist, stat)
    if before.count and after.count:
        return count_change(before.value, before.count, after.value, after.count)
    return Change(before.value, after.value, None, None, "none")


def _one(point: PointSummary, path: MetricPath) -> Measured:
    where = f"{point.target}.{point.point}"
    if "driver_bound" in point.flags and path.field != "requests":  # counts stay facts
        return Measured(None, problem=f"driver_bound: the load driver could not keep up at "
                                      f"{where}, so its figures measure the driver")
    if path.field in DISTRIBUTIONS:
        return _from_distribution(getattr(point, path.field), path, where)
    if path.field == "throughput":
        rate = getattr(point.throughput, path.sub)
        return _present(rate, path, where, count=point.requests.ok)
    if path.field == "goodput":
        if point.goodput is None:
            return Measured(None, problem=f"missing metric: {where} has no goodput (the "
                                          "scenario sets no [slo])")
        if point.goodput.unknown:
            return Measured(None, problem=f"missing metric: goodput at {where}: "
                                          f"{point.goodput.unknown}")
        value = getattr(point.goodput, path.sub)
        count = point.goodput.good_requests if path.sub == "req_s" else None
        return _present(value, path, where, count=count)
    return Measured(float(getattr(point.requests, path.sub)))


def _from_distribution(dist: Distribution | None, path: MetricPath, where: str) -> Measured:
    if dist is None:
        return Measured(None, problem=f"missing metric: {where} has no {path.field} values")
    value = float(getattr(dist, path.sub))
    if path.sub in dist.too_few:
        return Measured(value, dist, problem=(
            f"too_few: {path.field}.{path.sub} at {where} rests on {dist.count} values, "
            f"under the {FLOORS[path.sub]} it needs"))
    return Measured(value, dist)


def _present(value: float | int | None, path: MetricPath, where: str,
             count: int | None) -> Measured:
    if value is None:
        return Measured(None, problem=f"missing metric: {path.field}.{path.sub} at {where} is "
                                      "null (an empty window)")
    return Measured(float(value), count=count)
