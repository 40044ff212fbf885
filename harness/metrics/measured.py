"""One metric at one target × point, with what its noise can be judged from, and the change
between two such measurements: the one reading the gate and `compare` share.

    m = measure(points_of(summary, "fastapi_batching", "c32"), "throughput", "output_tok_s")
    m.value, m.interval()      # 262.4, (251.0, 273.8): sectioned, within this run
    change, problem = change_between(base, m, same_run=False)

What a value's interval is (`Measured.interval`), per kind of metric:

- a percentile or mean of a distribution: its stored `ci95` (order statistics ∪ sectioning);
  `max` has none (one value: gate a percentile), nor a percentile marked `too_few`;
- a rate (`throughput.*`, `goodput.req_s`) and `goodput.fraction`: their stored `ci95`;
- a counter (`requests.*`, `goodput.good_requests`): exact — it is a count of this run's own
  requests, a fact, not an estimate (`basis` "exact");
- with ≥ 2 repeats: the t-interval of the repeats' mean.

Between two measurements (`change_between`): counters by `count_change`; repeats on both sides
by Welch; repeats on one side by a prediction interval; one run each by their within-run
intervals when both are of one run (`same_run`, an in-run ratio), else only with a run-to-run
`Noise` figure (a saved baseline's spread): without one the change is refused, because a
within-run interval cannot see how far the machine drifts between runs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from harness.metrics.change import (
    Change,
    Interval,
    count_change,
    interval_change,
    prediction_change,
    repeats_change,
)
from harness.metrics.quantiles import FLOORS
from harness.metrics.repeats import spread, t975
from harness.summary.record import DISTRIBUTIONS, Distribution, PointSummary, RunSummary

COUNTERS = {"requests": ("ok", "http_error", "refused", "timeout", "truncated", "conn_error",
                         "abandoned", "total"), "goodput": ("good_requests",)}
NO_NOISE = ("run-to-run noise unknown: one run on each side and no spread to judge a change "
            "between runs by; save the baseline from 3 or more runs (`patternbench baseline "
            "save RUN RUN RUN`) or run with `repeats = 3`")


@dataclass(frozen=True)
class Measured:
    """A metric's value at one target × point (the mean over repeats when there are several).

    `ci`: its within-run 95% interval (one run); `repeats`: the per-repeat values (two or more);
    `counter`: (count, requests counted) of a counter; `problem`: why it cannot be judged (then
    `value` may still be shown)."""

    value: float | None
    ci: Interval | None = None
    repeats: tuple[float, ...] = ()
    counter: tuple[int, int] | None = None
    problem: str | None = None

    def interval(self) -> Interval | None:
        """The 95% interval of `value`: across repeats (t on the mean), else its own."""
        across = spread(self.repeats)
        if across is not None and across.interval is not None:  # two or more repeats
            return across.interval
        if self.counter is not None and self.value is not None:
            return self.value, self.value
        return self.ci

    @property
    def basis(self) -> str:
        if self.interval() is None:
            return "none"
        if len(self.repeats) >= 2:
            return "repeats"
        return "exact" if self.counter is not None else "within"


@dataclass(frozen=True)
class Noise:
    """How much one run's value of a metric moves between runs: the standard deviation of its
    log over `k` runs of a saved baseline (`harness.gate.baseline`)."""

    sd_log: float
    k: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Noise | None:
        logs = [math.log(v) for v in values if v > 0 and math.isfinite(v)]
        return cls(statistics.stdev(logs), len(logs)) if len(logs) >= 2 else None


def run_to_run(summary: RunSummary, target: str, point: str, field: str,
               sub: str) -> Noise | None:
    """How `field`.`sub` at `target` × `point` moved across the summary's runs (a saved
    baseline's repeats); None with fewer than two values."""
    return Noise.of(measure(points_of(summary, target, point), field, sub).repeats)


def points_of(summary: RunSummary, target: str, point: str) -> list[PointSummary]:
    """Every repeat of `target` × `point` in `summary`."""
    return [p for p in summary.points if p.target == target and p.point == point]


def measure(points: Sequence[PointSummary], field: str, sub: str) -> Measured:
    """`field`.`sub` at these points (every repeat of one target × point)."""
    if not points:
        return Measured(None, problem="missing metric: no such point")
    if len(points) == 1:
        return _one(points[0], field, sub)
    each = [_one(p, field, sub) for p in points]
    values = tuple(m.value for m in each if m.value is not None)
    # a repeat's own interval is not needed: the repeats' spread is the noise
    problem = next((m.problem for m in each if m.problem
                    and not m.problem.startswith("no interval:")), None)
    if len(values) < len(each):
        problem = problem or f"missing metric: {field}.{sub} in some repeats"
    counts = [m.counter for m in each if m.counter is not None]
    counter = ((sum(c for c, _ in counts), sum(n for _, n in counts))  # the repeats' requests
               if len(counts) == len(each) else None)
    return Measured(statistics.fmean(values) if values else None, repeats=values,
                    counter=counter, problem=problem)


def change_between(before: Measured, after: Measured, *, same_run: bool,
                   noise: Noise | None = None) -> tuple[Change | None, str | None]:
    """after / before with its 95% interval (see the module docstring), or why it cannot be
    judged. `same_run`: both sides come from one run (an in-run ratio): drift cancels."""
    if before.value is None or after.value is None:
        return None, "missing metric"
    if before.counter is not None and after.counter is not None and not (
            len(before.repeats) >= 2 and len(after.repeats) >= 2):
        return count_change(*before.counter, *after.counter), None
    if len(before.repeats) >= 2 and len(after.repeats) >= 2:
        return repeats_change(before.repeats, after.repeats), None
    if len(before.repeats) >= 2:
        return prediction_change(before.repeats, after.value, after.ci), None
    if len(after.repeats) >= 2:
        return prediction_change(after.repeats, before.value, before.ci,
                                 single_is_after=False), None
    within = interval_change(before.value, before.ci, after.value, after.ci)
    if within.lo is None:
        side = "no interval on one side" if before.ci is None or after.ci is None else \
            "a value or its interval reaches 0: no ratio can be bounded"
        return None, side
    if same_run:
        return within, None
    if noise is None:
        return None, NO_NOISE
    return _with_noise(within, noise), None


def _with_noise(within: Change, noise: Noise) -> Change:
    """Two single runs: the within-run interval, widened to log r ± t(k−1) · s · √2 (each run
    moves by s between runs; the baseline's k runs measured s)."""
    assert within.lo is not None and within.hi is not None
    centre = math.log(within.ratio)
    half = t975(noise.k - 1) * noise.sd_log * math.sqrt(2)
    lo, hi = min(math.log(within.lo), centre - half), max(math.log(within.hi), centre + half)
    return Change(within.before, within.after, math.exp(lo), math.exp(hi), "prediction")


def _one(point: PointSummary, field: str, sub: str) -> Measured:
    where = f"{point.target}.{point.point}"
    if "driver_bound" in point.flags and field != "requests":  # counts stay facts
        return Measured(None, problem=f"driver_bound: the load driver could not keep up at "
                                      f"{where}, so its figures measure the driver")
    if sub in COUNTERS.get(field, ()):
        return _counter(point, field, sub, where)
    if field in DISTRIBUTIONS:
        return _from_distribution(getattr(point, field), field, sub, where)
    if field == "throughput":
        rate = getattr(point.throughput, sub)
        return _present(rate, point.throughput.ci95.get(sub), f"{field}.{sub}", where)
    good = point.goodput
    if good is None:
        return Measured(None, problem=f"missing metric: {where} has no goodput (the scenario "
                                      "sets no [slo])")
    if good.unknown:
        return Measured(None, problem=f"missing metric: goodput at {where}: {good.unknown}")
    return _present(getattr(good, sub), good.ci95.get(sub), f"goodput.{sub}", where)


def _counter(point: PointSummary, field: str, sub: str, where: str) -> Measured:
    if field == "goodput":
        if point.goodput is None or point.goodput.unknown:
            return Measured(None, problem=f"missing metric: {where} has no goodput")
        count = point.goodput.good_requests
    else:
        count = int(getattr(point.requests, sub))
    return Measured(float(count), counter=(count, point.requests.total))


def _from_distribution(dist: Distribution | None, field: str, sub: str, where: str) -> Measured:
    if dist is None:
        return Measured(None, problem=f"missing metric: {where} has no {field} values")
    value = float(getattr(dist, sub))
    if sub == "max":
        return Measured(value, problem=f"no interval: {field}.max at {where} is one value (the "
                                       "largest); gate a percentile, e.g. p99")
    if sub in dist.too_few:
        count = dist.count if dist.effective_count is None else math.floor(dist.effective_count)
        worth = "" if dist.effective_count is None else f" (worth {count} independent values)"
        return Measured(value, problem=(
            f"too_few: {field}.{sub} at {where} rests on {dist.count} values{worth}, under the "
            f"{FLOORS[sub]} it needs"))
    return _present(value, dist.ci95.get(sub), f"{field}.{sub}", where)


def _present(value: float | int | None, ci: Interval | None, name: str,
             where: str) -> Measured:
    if value is None:
        return Measured(None, problem=f"missing metric: {name} at {where} is null (an empty "
                                      "window)")
    if ci is None:
        return Measured(float(value), problem=f"no interval: {name} at {where} (too few values "
                                              "or sections in its window to judge its noise)")
    return Measured(float(value), ci=ci)
